"""The fake's stand-in for fal's server proxy (``@fal-ai/server-proxy`` 1.2.1, fal-js
``libs/proxy/src/index.ts`` and ``config.ts``), in front of the fake fal.

Every call arrives at ``proxy_path`` with the real fal URL in ``x-fal-target-url``:

* a missing target, or one outside the default allow-list (``fal.run/**``,
  ``queue.fal.run/**``, and exactly ``rest.fal.ai/storage/upload/initiate`` or
  ``complete-multipart`` with ``?storage_type=fal-cdn-v3``) → 400 "Invalid request";
* with ``proxy_token`` set, the fake plays an app that checks its own Bearer
  token and then sends fal its key (401 "Unauthorized" without it); unset, it is
  the stock proxy, which forwards an incoming Authorization header to fal
  verbatim and adds ``Key $FAL_KEY`` only when there is none;
* the answer (status, headers, body, SSE stream) passes through unchanged, as
  the Next.js app-router adapter does.

A call straight to a fal API path of this server is answered 404: through a
proxy the client never reaches fal's hosts itself.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from ..wire import Reply, authorized, json_reply

TARGET_HEADER = "x-fal-target-url"
_ALLOWED_HOSTS = ("fal.run", "queue.fal.run")
_ALLOWED_EXACT = ("rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3",
                  "rest.fal.ai/storage/upload/complete-multipart?storage_type=fal-cdn-v3")
INVALID = json_reply(400, "Invalid request")
UNAUTHORIZED = json_reply(401, "Unauthorized")
_SCHEME = re.compile(r"^https?://", re.IGNORECASE)


def allowed(target: str) -> bool:
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname in _ALLOWED_HOSTS:
        return True
    return _SCHEME.sub("", target) in _ALLOWED_EXACT


def unwrap(fake, headers) -> tuple[str, dict, dict, Reply | None]:
    """(target path, target query, headers as fal receives them, or a rejection Reply)."""
    target = headers.get(TARGET_HEADER) or ""
    if not target or not allowed(target):
        return "", {}, {}, INVALID
    incoming = headers.get("Authorization")
    if fake.proxy_token is not None:
        if not authorized(headers, "Bearer", fake.proxy_token):
            return "", {}, {}, UNAUTHORIZED
        incoming = None  # the app checked its own token; fal gets the app's key
    upstream = {name: value for name, value in headers.items() if name.lower().startswith("x-fal-")}
    upstream["Content-Type"] = "application/json"
    upstream["Authorization"] = incoming or f"Key {fake.proxy_fal_key}"
    parts = urlsplit(target)
    return parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), upstream, None
