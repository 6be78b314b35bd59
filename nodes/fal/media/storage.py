"""Turning image bytes into URLs fal can read: fal storage uploads or data URIs.

fal storage (what fal-client does): get a short-lived CDN token from
``{rest}/storage/auth/token?storage_type=fal-cdn-v3``, then ``POST
{base_url}/files/upload``. When the token route is missing, fall back to
``/storage/upload/initiate`` + ``PUT``. Through fal's server proxy, only the
initiate route is on the proxy's allow-list (``@fal-ai/server-proxy`` 1.2.1,
``libs/proxy/src/config.ts``: ``rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3``),
so the upload goes as fal-js does it: initiate through the proxy, then ``PUT``
the bytes straight to the presigned URL it returns (``libs/client/src/storage.ts``).

Uploads expire: as fal-client 1.0.3 does (``client.py``, ``_normalize_upload_lifecycle``), the CDN
upload and the initiate request carry ``X-Fal-Object-Lifecycle`` and
``X-Fal-Object-Lifecycle-Preference`` with ``{"expiration_duration_seconds": N}`` (the
connection's ``upload_expiry``; none for "never").

The same bytes are uploaded once per process: a content hash maps to the URL
already returned (the most recent ``REMEMBERED_UPLOADS`` of them), handed out
again only in the first quarter of its life (at most ``UPLOAD_REUSE_SECONDS``),
so a job that gets it still has three quarters of it left to start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from datetime import datetime

from ..wire.config import UPLOAD_EXPIRIES
from ..base.json_text import DataUri
from ..base.errors import CancelledError, FalError, FalTimeoutError, HTTPStatusError
from ..wire.transport import Transport, json_body
from ..base.waiting import Waiter

log = logging.getLogger("fal_qwen_edit")

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
# A ComfyUI session can see thousands of distinct inputs: remember a bounded number of URLs,
# and not for ever, so a URL fal's storage has since dropped is not handed out again all day.
REMEMBERED_UPLOADS = 4096
UPLOAD_REUSE_SECONDS = 6 * 3600.0


def data_uri(data: bytes, content_type: str) -> DataUri:
    """Inline bytes; a DataUri goes into the submit's JSON and its fingerprint as it is (base/json_text.py)."""
    return DataUri.of(data, content_type)


class Uploader:
    """Uploads bytes to fal storage, or inlines them as data URIs (gateway mode)."""

    def __init__(self, transport: Transport):
        if transport.config is None:  # a keyless transport (for fetching URLs) has nowhere to upload to
            raise ValueError("Uploader needs a transport with a connection's settings")
        self.transport = transport
        self.config = transport.config
        # sha256 of the bytes → (URL, uploaded at), or the Future of the upload under way
        self._urls: OrderedDict[str, tuple[str, float] | Future[str]] = OrderedDict()
        self._token: tuple[str, str, float] | None = None  # (authorization, base_url, expiry)
        self._lock = threading.Lock()
        self.uploads = 0  # real uploads made (cache hits excluded), for tests and the CLI
        expiry = UPLOAD_EXPIRIES[self.config.upload_expiry]
        self.lifecycle = {} if expiry is None else dict.fromkeys(
            ("X-Fal-Object-Lifecycle", "X-Fal-Object-Lifecycle-Preference"),
            json.dumps({"expiration_duration_seconds": expiry}))
        self.reuse_seconds = UPLOAD_REUSE_SECONDS if expiry is None else min(UPLOAD_REUSE_SECONDS, expiry / 4)

    def url_for(self, data: bytes, content_type: str = "image/png", *, waiter: Waiter | None = None,
                digest: str | None = None) -> str:
        """``digest``: the sha256 hex of ``data`` when the caller has it already."""
        if not self.config.uses_storage:
            return data_uri(data, content_type)
        waiter = waiter or Waiter()
        digest = digest or hashlib.sha256(data).hexdigest()
        while True:
            with self._lock:
                pending = self._urls.get(digest)
                if isinstance(pending, tuple):
                    url, uploaded_at = pending
                    if time.monotonic() - uploaded_at < self.reuse_seconds:
                        self._urls.move_to_end(digest)
                        return url
                    pending = None
                if pending is None:  # concurrent callers with the same bytes wait for this one upload
                    upload: Future[str] = Future()
                    self._urls[digest] = upload
                    break
            try:
                # Our own Cancel and deadline still count while another thread uploads.
                return waiter.result(pending)
            except (CancelledError, FalTimeoutError):
                if waiter.fired():
                    raise
                # The uploading thread's edit was cancelled or timed out, not ours: upload it here.
        try:
            url = self._upload(data, content_type, digest, waiter)
        except BaseException as exc:
            with self._lock:
                del self._urls[digest]  # a failed upload is not remembered
            upload.set_exception(exc)
            raise
        upload.set_result(url)  # for the callers waiting on it now
        with self._lock:
            self.uploads += 1
            self._urls[digest] = (url, time.monotonic())  # a plain pair: a Future weighs ~1.5 KB
            self._urls.move_to_end(digest)
            while len(self._urls) > REMEMBERED_UPLOADS:
                oldest = next(iter(self._urls))
                if not isinstance(self._urls[oldest], tuple):
                    break  # the oldest is still uploading; it is trimmed next time
                del self._urls[oldest]
        return url

    def _upload(self, data: bytes, content_type: str, digest: str, waiter: Waiter) -> str:
        file_name = f"{digest[:16]}.{EXTENSIONS.get(content_type, 'bin')}"
        if self.config.mode == "proxy":
            return self._upload_initiate(data, content_type, file_name, waiter, "fal-cdn-v3")
        token = self._cdn_token(waiter)
        if token is not None:
            authorization, base_url = token
            resp = self.transport.request(
                "POST", f"{base_url}/files/upload", what="Upload to fal storage", waiter=waiter,
                auth=False, data=data,
                headers={"Authorization": authorization, "Content-Type": content_type,
                         "X-Fal-File-Name": file_name, **self.lifecycle})
            return _url_from(json_body(resp, "Upload to fal storage"), "access_url")
        return self._upload_initiate(data, content_type, file_name, waiter)

    def _cdn_token(self, waiter: Waiter) -> tuple[str, str] | None:
        with self._lock:
            if self._token and self._token[2] > time.time() + 60:
                return self._token[0], self._token[1]
        try:
            resp = self.transport.request(
                "POST", f"{self.config.rest_base}/storage/auth/token", what="fal storage token",
                params={"storage_type": "fal-cdn-v3"}, json={}, waiter=waiter)
        except HTTPStatusError as exc:
            if exc.status in (404, 405):
                return None  # older storage API only: use initiate + PUT
            raise
        body = json_body(resp, "fal storage token")
        try:
            authorization = f"{body.get('token_type', 'Bearer')} {body['token']}"
            base_url = body["base_url"].rstrip("/")
        except (KeyError, TypeError, AttributeError):
            raise FalError("fal storage token: the reply had no token/base_url.") from None
        expiry = _parse_time(body.get("expires_at")) or time.time() + 300
        with self._lock:
            self._token = (authorization, base_url, expiry)
        return authorization, base_url

    def _upload_initiate(self, data: bytes, content_type: str, file_name: str, waiter: Waiter,
                         storage_type: str = "gcs") -> str:
        resp = self.transport.request(
            "POST", f"{self.config.rest_base}/storage/upload/initiate", what="fal storage upload",
            params={"storage_type": storage_type}, json={"file_name": file_name, "content_type": content_type},
            headers=dict(self.lifecycle), waiter=waiter)
        body = json_body(resp, "fal storage upload")
        upload_url = _url_from(body, "upload_url")
        file_url = _url_from(body, "file_url")
        self.transport.request("PUT", upload_url, what="fal storage upload", waiter=waiter, auth=False,
                               data=data, headers={"Content-Type": content_type})
        return file_url


def _url_from(body: object, key: str) -> str:
    url = body.get(key) if isinstance(body, dict) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise FalError(f"fal storage: the reply had no usable {key}.")
    return url


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
