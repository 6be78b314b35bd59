"""fal's backup hosts: a connection to ``queue.fal.run`` that cannot be made goes to ``queue.falrun.com``.

As fal-client 1.0.3 does (``client.py``: ``_BACKUP_DOMAINS``, ``BackupDomainTransport``,
``_limit_connect_timeout``):

* only a connection that was never made moves to the other host: refused, timed out while
  connecting, or a name that does not resolve. A call that reached the server (a reply, a
  reset after the request went out) is never replayed there, so a submit is sent twice only
  when not a byte of it left the first time (sending.py tells);
* the connect timeout to either host is capped at 5 s, so an unreachable host is given up
  quickly (other hosts, e.g. the CDN, keep their own);
* URLs fal returns on the backup host are followed there; when that host cannot be reached
  in turn, the primary is tried (fal-client stops there; a journalled job resumed later
  may find the backup down and the primary back).

Only fal direct has a backup: a gateway is its own host, and fal's server proxy admits
only ``queue.fal.run`` and ``fal.run`` (its 1.2.1 allow-list rejects ``falrun.com``).
``FAL_QUEUE_BACKUP_BASE`` moves the backup (tests point it at a second fake port); set but
empty, it turns the fallback off; a moved ``FAL_QUEUE_BASE`` has none unless it is given.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import requests
from urllib3.exceptions import ConnectTimeoutError

BACKUP_DOMAINS = {"fal.run": "falrun.com", "queue.fal.run": "queue.falrun.com"}
BACKUP_CONNECT_TIMEOUT = 5.0


def default_backup(queue_base: str) -> str:
    """fal's backup for a queue base on one of its own hosts, else "" (none)."""
    parts = urlsplit(queue_base)
    host = BACKUP_DOMAINS.get((parts.hostname or "").lower())
    if host is None or parts.scheme != "https" or parts.port not in (None, 443):
        return ""
    return urlunsplit(("https", host, parts.path, "", ""))


def on_origin(url: str, base: str) -> str:
    """``url`` with the scheme and host of ``base``: path and query kept, as fal-client's
    ``url.copy_with(host=...)``."""
    parts, target = urlsplit(url), urlsplit(base)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def connect_failed(exc: BaseException) -> bool:
    """The connection was never made: refused, a connect timeout, or a name that did not resolve
    (fal-client's ``httpx.ConnectError`` / ``httpx.ConnectTimeout``). Errors of a proxy or of TLS
    are not: the other host goes the same way."""
    if isinstance(exc, (requests.exceptions.ProxyError, requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        return isinstance(reason, ConnectTimeoutError)  # NewConnectionError and NameResolutionError too
    return False


def capped(timeout: float | tuple | None, default: tuple[float, float]) -> tuple[float, float | None]:
    """(connect, read) with the connect part at most BACKUP_CONNECT_TIMEOUT."""
    if timeout is None:
        timeout = default
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return (BACKUP_CONNECT_TIMEOUT if connect is None else min(connect, BACKUP_CONNECT_TIMEOUT)), read
