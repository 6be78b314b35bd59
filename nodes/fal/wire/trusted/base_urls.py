"""What a base URL of a queue, gateway or proxy may look like: http(s), no credentials in it, plain
http only to this machine (a key must not cross a network in clear)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ...base.errors import ConfigError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> None:
    parts = urlsplit(url)
    if "@" in parts.netloc:  # user:password@ would go into logs, --check and the way memory: refused unechoed
        raise ConfigError("A base or proxy URL must not contain credentials (user:password@); put the token "
                          "in the environment or config.ini.")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Base URL {url!r} must be an http(s) URL like https://queue.fal.run.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"Refusing to send a key over plain http to {parts.hostname}: use https:// "
            "(plain http is only allowed for 127.0.0.1/localhost test servers).")
