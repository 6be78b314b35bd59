"""Fake fal storage and CDN: token + upload (fal-cdn-v3), initiate + PUT
(the older signed-URL flow), and plain GETs of stored files.

Job outputs are served only on the CDN origin (``fake.cdn_url``), as fal
serves them from fal.media and never from the queue host; uploaded inputs
stay reachable on the queue origin too, where their URLs point."""

from __future__ import annotations

import datetime
import json
import mimetypes
import secrets
import threading
import uuid
from typing import Mapping

from ..edit import decode_data_uri
from ..wire import NOT_FOUND, UNAUTHORIZED, Reply, authorized, detail, json_reply

_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif",
        "application/octet-stream": "bin"}


def extension(content_type: str, file_name: str | None = None) -> str:
    if file_name and "." in file_name:
        ext = file_name.rsplit(".", 1)[1].lower()
        if ext.isalnum() and len(ext) <= 8:
            return ext
    base = content_type.split(";", 1)[0].strip().lower()
    guessed = mimetypes.guess_extension(base) or ""
    return _EXT.get(base) or guessed.lstrip(".") or "bin"


class Storage:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, tuple[bytes, str]] = {}        # name -> (bytes, content type)
        self.tokens: set[str] = set()
        self.pending: dict[str, tuple[str, str]] = {}        # upload id -> (file name, content type)
        self.uploads: list[tuple[str, int]] = []             # (route, size) of every stored upload
        self.outputs: set[str] = set()                        # names of job outputs (CDN origin only)

    def forget(self) -> None:
        with self._lock:
            for store in (self.files, self.pending, self.uploads, self.outputs):  # tokens stay valid
                store.clear()

    def put(self, name: str, data: bytes, content_type: str, output: bool = False) -> None:
        with self._lock:
            self.files[name] = (data, content_type)
            if output:
                self.outputs.add(name)

    def is_output(self, name: str) -> bool:
        with self._lock:
            return name in self.outputs

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self.files.get(name)

    def new_token(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        return token

    def token_ok(self, headers: Mapping[str, str]) -> bool:
        with self._lock:
            tokens = list(self.tokens)
        return any(authorized(headers, "Bearer", t) for t in tokens)

    def record(self, route: str, size: int) -> None:
        with self._lock:
            self.uploads.append((route, size))

    def initiate(self, file_name: str, content_type: str) -> tuple[str, str]:
        upload_id = uuid.uuid4().hex
        name = f"{upload_id}.{extension(content_type, file_name)}"
        with self._lock:
            self.pending[upload_id] = (name, content_type)
        return upload_id, name

    def finish_upload(self, upload_id: str) -> tuple[str, str] | None:
        with self._lock:
            return self.pending.pop(upload_id, None)


def load_input(base_urls: tuple[str, ...], storage: Storage, url: str) -> bytes:
    """Bytes of one ``image_urls`` entry: a data URI or a file of this server
    (on any of ``base_urls``)."""
    if url.startswith("data:"):
        return decode_data_uri(url)
    for base_url in base_urls:
        prefix = base_url + "/files/"
        if base_url and url.startswith(prefix):
            found = storage.get(url[len(prefix):].split("?", 1)[0])
            if found is not None:
                return found[0]
    raise LookupError(url)


# -- routes: each takes the server and the request parts, returns a Reply ------

def token_route(fake, headers, body: bytes) -> Reply:
    if not fake.storage_v3:
        return NOT_FOUND
    if not authorized(headers, "Key", fake.key):
        return UNAUTHORIZED
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    return json_reply(200, {"token": fake.storage.new_token(), "token_type": "Bearer",
                            "base_url": fake.url + "/cdn", "expires_at": expires.isoformat()})


def upload_route(fake, headers, body: bytes) -> Reply:
    if not fake.storage.token_ok(headers):
        return UNAUTHORIZED
    content_type = headers.get("Content-Type") or "application/octet-stream"
    name = f"{uuid.uuid4().hex}.{extension(content_type, headers.get('X-Fal-File-Name'))}"
    fake.storage.put(name, body, content_type)
    fake.storage.record("upload", len(body))
    return json_reply(200, {"access_url": f"{fake.url}/files/{name}", "content_type": content_type})


def initiate_route(fake, headers, body: bytes) -> Reply:
    if not authorized(headers, "Key", fake.key):
        return UNAUTHORIZED
    try:
        spec = json.loads(body or b"null")
        file_name = spec.get("file_name") or "upload.bin"
        content_type = spec.get("content_type") or "application/octet-stream"
    except (ValueError, AttributeError):
        return json_reply(422, {"detail": [{"loc": ["body"], "msg": "expected {file_name, content_type}",
                                            "type": "value_error"}]})
    upload_id, name = fake.storage.initiate(str(file_name), str(content_type))
    return json_reply(200, {"upload_url": f"{fake.url}/upload/{upload_id}",
                            "file_url": f"{fake.url}/files/{name}"})


def put_upload_route(fake, headers, body: bytes, upload_id: str) -> Reply:
    # A signed URL: the id itself is the credential, as with GCS.
    pending = fake.storage.finish_upload(upload_id)
    if pending is None:
        return NOT_FOUND
    name, content_type = pending
    fake.storage.put(name, body, headers.get("Content-Type") or content_type)
    fake.storage.record("put_upload", len(body))
    return Reply(200, b"", "text/plain")


def files_route(fake, name: str, role: str = "cdn") -> Reply:
    found = fake.storage.get(name)
    # An output fetched from the queue origin means the client built its URL
    # instead of using the one in the result: fal would answer 404 there too.
    if found is None or (role != "cdn" and fake.storage.is_output(name)):
        return detail(404, "File not found")
    data, content_type = found
    return Reply(200, data, content_type)
