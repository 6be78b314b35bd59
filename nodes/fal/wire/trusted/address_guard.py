"""Where a download may connect: judged after name resolution, for every hop, on the address used.

A download is a GET the pack makes because a workflow (Load Image from URL) or a server's answer
(the output URLs of a result) named a URL. Aimed at ``http://169.254.169.254/…``, an admin page on
``localhost`` or a LAN host, it would make this machine fetch what only it can reach (server-side
request forgery). So the host's name is resolved once, every address it resolves to is judged
(host_trust.may_receive: one refused address refuses the host), and the connection is then made
to one of those judged addresses (sending.py's ``_new_conn``), never to a second answer of the
name server: a name that answers "public" to the check and "127.0.0.1" to the connection
(DNS rebinding) reaches nothing. Redirects are followed by the caller one hop at a time
(downloads.py), and each hop goes through ``check`` again.

Limits, said here so nobody counts on more: through an HTTP(S) proxy from the environment
(``HTTPS_PROXY``), the proxy resolves and connects, so only the pack's own resolution before the
request is judged; a pooled keep-alive connection opened earlier by an unguarded call (a queue
call) to the same host and port is reused as it is.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Mapping
from urllib.parse import urlsplit

from ...base.errors import DownloadError
from ..config import FalConfig, _read_config_file, config_file_candidates
from .host_trust import Trust, may_receive, read_trust
from .saved_keys import read_saved


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (module level: tests replace it)."""
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if sockaddr[0] not in found:
            found.append(sockaddr[0])
    return found


class AddressGuard:
    """The judge of one download batch: resolves each host once and remembers the judged answer."""

    def __init__(self, trust: Trust):
        self.trust = trust
        self._resolved: dict[tuple[str, int], list[str]] = {}
        self._lock = threading.Lock()

    def _exempt(self, host: str) -> bool:
        host = host.rstrip(".").lower()
        return host in self.trust.server_hosts or host in self.trust.download_hosts

    def _addresses(self, host: str, port: int) -> list[str]:
        with self._lock:
            known = self._resolved.get((host, port))
        if known is None:
            known = resolve(host, port)  # OSError (no such name) goes to the caller
            if not known:
                raise socket.gaierror(f"{host} resolved to no address")
            with self._lock:
                known = self._resolved.setdefault((host, port), known)
        return known

    def _judge(self, url: str, addresses: list[str]) -> None:
        refusal = may_receive(url, self.trust, purpose="download", addresses=addresses)
        if refusal is not None:
            raise DownloadError(refusal.message)

    def check(self, url: str) -> None:
        """Before a hop is sent: raise DownloadError when its host resolves to a refused address. A name
        that does not resolve now is left to the connection (retried, and judged when it resolves)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if not host or self._exempt(host):
            return
        try:
            addresses = self._addresses(host, parts.port or (443 if parts.scheme == "https" else 80))
        except OSError:
            return
        self._judge(url, addresses)

    def addresses_for(self, host: str, port: int) -> list[str] | None:
        """For a new connection to ``host:port``: the judged addresses to connect to (the ones ``check``
        saw), or None for a host configured on this machine (connect as usual)."""
        if self._exempt(host):
            return None
        addresses = self._addresses(host, port)
        self._judge(f"{'https' if port == 443 else 'http'}://{_bracketed(host)}:{port}/", addresses)
        return addresses


def download_guard(config: FalConfig | None = None, environ: Mapping[str, str] | None = None) -> AddressGuard:
    """The guard for downloads through a client with ``config`` (its hosts are this machine's choice:
    a workflow's base URL passed host_trust before it got there), or through the keyless transport."""
    env = os.environ if environ is None else environ
    parser, file_path = _read_config_file(env)
    servers = () if config is None else (config.queue_base, config.rest_base, config.api_base, config.proxy_url,
                                         config.queue_backup_base)
    trust = read_trust(env, lambda section, option: parser.get(section, option, fallback="").strip(),
                       file_path or str(config_file_candidates(env)[0]), servers, saved=read_saved(env))
    return AddressGuard(trust)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
