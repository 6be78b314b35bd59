"""Values that cross the wire: the recorded request, the reply every route
returns, and the shared auth check."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str             # without the query string
    query: dict
    headers: dict         # as received (original case); see header() for lookups
    body: bytes
    t: float              # time.monotonic() when the body had been read
    # The listener it arrived on: srv.url (queue, storage) or srv.cdn_url (output
    # files), so tests can check what each origin was sent, the key above all.
    origin: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), default)


@dataclass
class Reply:
    code: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)


def json_reply(code: int, obj: Any, headers: dict | None = None) -> Reply:
    return Reply(code, json.dumps(obj).encode("utf-8"), "application/json", dict(headers or {}))


def detail(code: int, text: str) -> Reply:
    return json_reply(code, {"detail": text})


NOT_FOUND = detail(404, "Not Found")
# Never echo what was received: a wrong key must not end up in a log via us.
UNAUTHORIZED = detail(401, "Invalid authorization")


def authorized(headers: Mapping[str, str], scheme: str, secret: str) -> bool:
    got = headers.get("Authorization") or ""
    want = f"{scheme} {secret}"
    return hmac.compare_digest(got.encode("utf-8", "replace"), want.encode("utf-8"))
