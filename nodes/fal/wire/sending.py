"""Knowing whether a request went out: the line between "cost nothing" and "maybe billed".

Whether a submit reached the server is not guessed from an exception's type:
the connection classes below note the first byte of the request handed to the
socket (the TLS handshake and a proxy's CONNECT do not count), so a TLS, proxy
or connect failure is known to have cost nothing. They also let a waiter
abandon a stalled call at once (its socket is shut down), and keep a submit
off a keep-alive connection that has been idle long enough for the server to
be closing it.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .trust import share_context

SUBMIT_REUSE_IDLE = 2.0  # seconds a pooled connection may have been idle and still carry a submit
# Bytes of a file-like body handed to the socket at a time (urllib3's default is 16 KB). A gateway's
# submit is ~7 MB of data URIs; at 16 KB a block its Python calls took ~7 ms more (bench overhead
# section). A block still goes out well within the socket timeout: 2 s at 1 Mbit/s.
SEND_BLOCK = 256 * 1024

# The mixins below are only ever combined with urllib3's classes; the checker reads them as
# subclasses of those so that super() calls and the connection's attributes are checked.
if TYPE_CHECKING:
    _ConnectionBase = HTTPConnection
    _PoolBase = HTTPConnectionPool
else:
    _ConnectionBase = _PoolBase = object


class _CallState:
    """What one HTTP call did on the wire, shared by its thread and the one waiting for it."""

    def __init__(self, submit: bool = False, guard: Any = None) -> None:
        self.lock = threading.Lock()
        self.submit = submit
        self.guard = guard     # a download's AddressGuard (address_guard.py), else None
        self.conn: _Tracked | None = None  # the connection while this call holds it
        self.sent = False      # a byte of the request reached the socket
        self.aborted = False
        self.used = False      # a tracked connection served the call (so ``sent`` can be trusted)

    def use(self, conn: _Tracked, sending: bool) -> None:
        with self.lock:
            if self.aborted:  # abandoned: never send anything more
                raise ConnectionAbortedError("call abandoned")
            self.conn, conn._fal_state, self.used = conn, self, True
            self.sent = self.sent or sending

    def release(self, conn: _Tracked) -> None:
        """The pool takes the connection back: from now on it may serve another call."""
        with self.lock:
            if self.conn is conn:
                self.conn = None
            conn._fal_state = None

    def abort(self, unsent_only: bool = False) -> bool:
        """Stop the call now; with ``unsent_only``, only if nothing was sent (else False)."""
        with self.lock:  # held while shutting down, so the pool cannot hand the socket on meanwhile
            if unsent_only and self.sent:
                return False
            self.aborted = True
            _shutdown(getattr(self.conn, "sock", None))
        return True


_local = threading.local()


def _shutdown(sock: socket.socket | None) -> None:
    """Wake a thread blocked on ``sock`` (close() alone does not on Linux). The plain socket
    method is used on TLS sockets too, so the SSL object stays intact for its reader."""
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


class _Tracked(_ConnectionBase):
    """Mixed into urllib3's connections: reports them to the current call's _CallState."""

    _fal_connecting = False
    _fal_state: _CallState | None = None

    def connect(self) -> None:
        state = getattr(_local, "state", None)
        if state is not None:
            state.use(self, sending=False)
        self._fal_connecting = True  # a proxy CONNECT sent from here is not the request
        try:
            super().connect()
        finally:
            self._fal_connecting = False

    def _new_conn(self):
        """The socket, connected to an address the call's guard judged (a download a workflow or a
        server's answer named), so a name cannot resolve to a public address for the check and a
        private one for the connection. Without a guard, or through a proxy (which resolves the
        name itself; the guard judged the pack's own resolution before sending), as urllib3 does."""
        guard = getattr(getattr(_local, "state", None), "guard", None)
        if guard is None or getattr(self, "proxy", None) is not None or getattr(self, "_tunnel_host", None):
            return super()._new_conn()
        addresses = guard.addresses_for(self._dns_host, self.port)  # raises DownloadError when refused
        if addresses is None:
            return super()._new_conn()  # a host configured on this machine: not judged
        name, failure = self._dns_host, None
        try:
            for address in addresses:  # as create_connection would try each, but only judged ones
                self._dns_host = address  # the TCP target only: TLS and Host still use the name (restored below)
                try:
                    return super()._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    failure = exc
        finally:
            self._dns_host = name
        raise failure

    def send(self, data) -> None:
        state = getattr(_local, "state", None)
        if state is not None and not self._fal_connecting:
            if self.sock is None and self.auto_open:
                self.connect()  # http.client would connect lazily here; that is not sending
            state.use(self, sending=True)
        super().send(data)


class _TrackedHTTPConnection(_Tracked, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _ReleasingPool(_PoolBase):
    def _put_conn(self, conn) -> None:
        state = getattr(conn, "_fal_state", None)
        if state is not None:
            state.release(conn)
        if conn is not None:
            conn._fal_idle_since = time.monotonic()
        super()._put_conn(conn)

    def _get_conn(self, timeout=None):
        conn = super()._get_conn(timeout)
        state = getattr(_local, "state", None)
        idle_since = getattr(conn, "_fal_idle_since", None)
        if state is not None and state.submit and idle_since is not None \
                and time.monotonic() - idle_since > SUBMIT_REUSE_IDLE:
            # A keep-alive connection the server may be closing right now would fail *after*
            # the POST went out: "maybe billed". Servers keep idle connections for 5 s or more,
            # so only one used moments ago carries a submit; otherwise it reconnects.
            conn.close()
        return conn


class _TrackedHTTPPool(_ReleasingPool, HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(_ReleasingPool, HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection

    def _new_conn(self):
        connection = super()._new_conn()
        share_context(connection)  # see trust.py: not 15 ms of CA parsing per new connection
        return connection


_POOLS = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


class _TrackingAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **{"blocksize": SEND_BLOCK, **kwargs})
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kwargs: Any):
        manager = super().proxy_manager_for(proxy, **{"blocksize": SEND_BLOCK, **kwargs})
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def _never_connected(exc: requests.RequestException, state: _CallState | None = None) -> bool:
    """True when the request certainly never reached the server."""
    if state is not None and state.used:
        return not state.sent  # a tracked connection saw the call: no guessing needed
    # Untracked (e.g. a SOCKS proxy): judge by the failure, counting only connect-phase kinds.
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ProxyError)):
        return True
    if isinstance(exc, requests.exceptions.SSLError):
        return _is_handshake_failure(exc)
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
        name = type(reason).__name__
        return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
    return False


def _is_handshake_failure(exc: BaseException | None) -> bool:
    """A certificate the client refused can only fail the handshake; other TLS errors may
    come from reading a reply, after the request went out."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ssl.SSLCertVerificationError) or type(exc).__name__ == "CertificateError":
            return True
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        exc = getattr(exc, "reason", None) or inner or exc.__cause__ or exc.__context__
    return False
