"""Fetching output images: concurrently, size-capped, http(s) and data URIs only.

Output URLs live on fal's CDN; the key is never sent there (Transport only
attaches it to the configured hosts). ``sync_mode`` results carry data URIs,
decoded in place.

Every URL here was named by a workflow (Load Image from URL) or by a server's answer, so each
is judged by wire/address_guard.py: no loopback, private, link-local or cloud metadata address
unless this machine allows it, checked on the resolved address and again on every redirect,
which is followed here one hop at a time (at most ``MAX_REDIRECTS``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence
from urllib.parse import urljoin, urlsplit

import numpy as np
import requests

from ..base.phases import phase
from ..base.errors import DownloadError, HTTPStatusError, ImageDecodeError, OutputGoneError, TransportError
from .images import MAX_PIXELS, decode_pixels
from ..wire.trusted.address_guard import AddressGuard, download_guard
from ..wire.transport import Transport
from ..base.waiting import Waiter

MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)


def describe(url: str) -> str:
    """A short, safe name for a URL in messages (no query string, no data payload)."""
    if url.startswith("data:"):
        return f"inline image ({url[5:url.find(';')] if ';' in url else 'data'})"
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def fetch_bytes(transport: Transport, url: str, *, waiter: Waiter | None = None,
                max_bytes: int = MAX_DOWNLOAD_BYTES, request_id: str | None = None,
                guard: AddressGuard | None = None) -> bytes:
    """The bytes at ``url``; ``guard``: the batch's address guard (one is made for this URL if None)."""
    if url.startswith("data:"):
        return _data_uri_bytes(url, max_bytes)
    _check_scheme(url, request_id)
    waiter = waiter or Waiter()
    guard = guard or download_guard(transport.config)
    for attempt in range(3):
        try:
            return _fetch_once(transport, url, waiter, max_bytes, request_id, guard)
        except _Truncated:
            if attempt == 2:
                raise DownloadError(f"Download of {describe(url)} broke off three times.",
                                    request_id=request_id) from None
            waiter.sleep(transport.retry.backoff(attempt + 1), request_id)
    raise AssertionError("unreachable")


class _Truncated(Exception):
    pass


def _check_scheme(url: str, request_id: str | None) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"Refusing to fetch {describe(url)}: only http(s) and data: URLs are allowed.",
                            request_id=request_id)


def _get(transport: Transport, url: str, waiter: Waiter, request_id: str | None,
         guard: AddressGuard):
    """The final answer for ``url``, its redirects followed by hand: each hop's scheme and address
    judged before it is sent (requests would follow them unjudged)."""
    for _ in range(MAX_REDIRECTS + 1):
        try:
            guard.check(url)
            resp = transport.request("GET", url, what=f"Download of {describe(url)}", waiter=waiter,
                                     request_id=request_id, ok=(200, *REDIRECTS), stream=True,
                                     allow_redirects=False, guard=guard)
        except DownloadError as exc:  # refused by the guard (before sending, or at the connection)
            raise DownloadError(str(exc), request_id=request_id) from None  # with the job it belongs to
        if resp.status_code not in REDIRECTS:
            return url, resp
        location = resp.headers.get("Location", "")
        resp.close()
        if not location:
            raise DownloadError(f"Download of {describe(url)}: HTTP {resp.status_code} without a Location.",
                                request_id=request_id)
        url = urljoin(url, location)
        _check_scheme(url, request_id)
    raise DownloadError(f"Download of {describe(url)}: more than {MAX_REDIRECTS} redirects.", request_id=request_id)


def _fetch_once(transport: Transport, url: str, waiter: Waiter, max_bytes: int,
                request_id: str | None, guard: AddressGuard) -> bytes:
    try:
        url, resp = _get(transport, url, waiter, request_id, guard)
    except HTTPStatusError as exc:
        if exc.status in (403, 404, 410):
            raise OutputGoneError(f"Download of {describe(url)} failed with HTTP {exc.status}: the output URL "
                                  "has expired or was removed. Run the edit again to make new images.",
                                  request_id=request_id) from None
        raise DownloadError(f"Download of {describe(url)} failed with HTTP {exc.status}.",
                            request_id=request_id) from None
    except TransportError as exc:
        raise DownloadError(str(exc), request_id=request_id) from None
    with resp:
        declared = int(resp.headers.get("Content-Length") or 0)
        if declared > max_bytes:
            raise DownloadError(f"{describe(url)} is {declared:,} bytes, above the {max_bytes:,}-byte cap.",
                                request_id=request_id)
        chunks, size = [], 0
        try:
            for chunk in resp.iter_content(chunk_size=1 << 20):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"{describe(url)} is larger than the {max_bytes:,}-byte cap.",
                                        request_id=request_id)
                chunks.append(chunk)
        except requests.RequestException:
            raise _Truncated() from None
    if declared and size < declared:
        raise _Truncated()
    return b"".join(chunks)


def _data_uri_bytes(url: str, max_bytes: int) -> bytes:
    header, _, payload = url.partition(",")
    if ";base64" not in header:
        raise DownloadError("Inline image is not base64-encoded; cannot decode it.")
    if len(payload) * 3 // 4 > max_bytes:
        raise DownloadError(f"Inline image is above the {max_bytes:,}-byte cap.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DownloadError("Inline image has broken base64 data.") from None


def download_all(transport: Transport, urls: Sequence[str], *, waiter: Waiter | None = None,
                 request_id: str | None = None, max_workers: int = 4) -> list[bytes]:
    """Fetch every URL concurrently; results keep the input order."""
    waiter = waiter or Waiter()
    guard = download_guard(transport.config)  # this machine's settings read once for the batch
    return _each(urls, lambda url: fetch_bytes(transport, url, waiter=waiter, request_id=request_id, guard=guard),
                 max_workers)


def download_decoded(transport: Transport, urls: Sequence[str], *, waiter: Waiter | None = None,
                     request_id: str | None = None, max_workers: int = 4,
                     on_bytes: Callable[[list[bytes]], None] | None = None) -> tuple[list[bytes], list[np.ndarray]]:
    """Fetch and decode every URL: each one is decoded as soon as it is in, while the others still
    download (on a thin downlink the last bytes, not the decoding, end the wait). ``on_bytes`` is
    called with every URL's bytes, in order, once the last one is in (before it is decoded)."""
    waiter = waiter or Waiter()
    guard = download_guard(transport.config)
    blobs: dict[str, bytes] = {}
    lock = threading.Lock()

    def one(url: str) -> tuple[bytes, np.ndarray]:
        with phase("download"):
            blob = fetch_bytes(transport, url, waiter=waiter, request_id=request_id, guard=guard)
        with lock:
            blobs[url] = blob
            complete = len(blobs) == len(set(urls))
        if complete and on_bytes is not None:
            on_bytes([blobs[u] for u in urls])
        with phase("decode"):
            return blob, decode_all([blob], [url], request_id=request_id)[0]

    pairs = _each(urls, one, max_workers)
    return [blob for blob, _ in pairs], [pixels for _, pixels in pairs]


def _each(urls: Sequence[str], work, max_workers: int) -> list:
    if len(urls) <= 1:
        return [work(url) for url in urls]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(urls)), thread_name_prefix="fal-dl") as pool:
        return list(pool.map(work, urls))


def decode_all(blobs: Sequence[bytes], sources: Sequence[str], *, request_id: str | None = None,
               max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    decoded = []
    for blob, source in zip(blobs, sources):
        try:
            decoded.append(decode_pixels(blob, source=describe(source), max_pixels=max_pixels))
        except ImageDecodeError as exc:
            raise ImageDecodeError(str(exc), request_id=request_id) from None
    return decoded


def download_images(transport: Transport, urls: Sequence[str], *, waiter: Waiter | None = None,
                    request_id: str | None = None, max_pixels: int = MAX_PIXELS) -> list[np.ndarray]:
    """Download and decode every URL (the Load Image from URL node): uint8 pixels each."""
    blobs = download_all(transport, urls, waiter=waiter, request_id=request_id)
    return decode_all(blobs, urls, request_id=request_id, max_pixels=max_pixels)
