"""Where each call goes, and which credentials ride on it, for the three connection modes.

* fal direct: every URL as it is; ``Authorization: Key …`` only to fal's API
  hosts (queue and REST), never to the CDN that serves outputs.
* gateway: the submit reply still names ``queue.fal.run`` URLs, where the
  gateway's token is not valid, so status/result/cancel URLs are re-routed
  through the gateway's base with the same path (``through_base``);
  ``Authorization: Bearer …`` only to the base.
* proxy (fal's server proxy, ``@fal-ai/server-proxy`` 1.2.1): a call to a fal
  API URL is sent to the proxy URL instead, with the real URL, query included,
  in ``x-fal-target-url`` (fal-js ``libs/client/src/middleware.ts``,
  ``withProxy``). The proxy adds the key. The client sends no Authorization at
  all unless the user set a token for a proxy that checks its own: the stock
  proxy forwards an incoming Authorization header to fal verbatim and adds
  ``Key $FAL_KEY`` only when there is none (``libs/proxy/src/config.ts``,
  ``fallbackToFalKey``). Everything else (a presigned upload URL, output
  downloads) goes direct, as fal-js does.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import urlencode, urlsplit

TARGET_URL_HEADER = "x-fal-target-url"


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def through_base(url: str, base: str) -> str:
    """``url`` re-rooted on ``base`` (same path and query) unless it already lives there."""
    if origin(url) == origin(base) and url.startswith(base):
        return url
    parts = urlsplit(url)
    return base + parts.path + (f"?{parts.query}" if parts.query else "")


def with_query(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def route_call(config: Any, url: str, headers: Mapping[str, str] | None, params: Mapping[str, Any] | None,
               auth: bool = True) -> tuple[str, dict[str, str], Mapping[str, Any] | None]:
    """(URL to send to, headers, query params) for one call to ``url``.

    ``config`` is a FalConfig, or None for keyless fetches of arbitrary URLs."""
    headers = dict(headers or {})
    if config is None:
        return url, headers, params
    if config.mode == "proxy" and config.is_api_url(url):
        # The proxy forwards to the target as given, so the query must be part of it.
        headers[TARGET_URL_HEADER] = with_query(url, params)
        url, params = config.proxy_url, None
    if auth and config.may_send_key_to(url):
        headers.update(config.auth_header())
    return url, headers, params
