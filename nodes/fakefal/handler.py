"""HTTP plumbing: read a request exactly, record it, route it, apply faults,
write the reply (or misbehave), and serve the SSE status stream."""

from __future__ import annotations

import json
import re
import ssl
import time
import traceback
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .routes import platform_api, proxy, queue_api, storage
from .faults import BOMB_PNG, MALFORMED_JSON, NOT_IMAGE_HTML, Fault, hard_reset
from .throttle import PIECE
from .wire import NOT_FOUND, UNAUTHORIZED, RecordedRequest, Reply, json_reply

if TYPE_CHECKING:
    class _Server(ThreadingHTTPServer):
        """What server.py's _HTTPServer gives its handlers (not imported: server.py imports this module)."""
        fake: Any  # the FakeFal
        role: str  # "queue" or "cdn"

_REQUESTS = re.compile(r"^/([^/]+)/([^/]+)/requests/([^/]+)(/status/stream|/status|/cancel)?/?$")
_SUFFIX = {("GET", None): "result", ("GET", "/status"): "status",
           ("GET", "/status/stream"): "stream", ("PUT", "/cancel"): "cancel"}
_PLATFORM = {"/v1/models/requests/by-endpoint": "platform_requests", "/v1/models/pricing": "platform_pricing"}
_QUEUE_ROUTES = frozenset({"submit", "status", "stream", "result", "cancel", *_PLATFORM.values()})
_HANDSHAKE_TIMEOUT = 10.0


def resolve(method: str, path: str) -> tuple[str | None, tuple]:
    """(route name, params) for a request; (None, ()) for anything unknown."""
    if method == "POST" and path == "/storage/auth/token":
        return "token", ()
    if method == "POST" and path == "/storage/upload/initiate":
        return "initiate", ()
    if method == "POST" and path == "/cdn/files/upload":
        return "upload", ()
    if method == "PUT" and path.startswith("/upload/") and path.count("/") == 2:
        return "put_upload", (path[len("/upload/"):],)
    if method == "GET" and path in _PLATFORM:
        return _PLATFORM[path], ()
    if method == "GET" and path.startswith("/files/") and path.count("/") == 2:
        return "files", (path[len("/files/"):],)
    m = _REQUESTS.match(path)
    if m:
        route = _SUFFIX.get((method, m.group(4)))
        return (route, m.groups()[:3]) if route else (None, ())
    segments = [s for s in path.strip("/").split("/") if s]
    if method == "POST" and len(segments) >= 2:
        return "submit", ("/".join(segments),)
    return None, ()


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: the client under test uses a pooled requests.Session.
    protocol_version = "HTTP/1.1"
    server_version = "FakeFal/1.0"
    # Headers and body go out in separate writes; with Nagle on, the second
    # waits for the client's delayed ACK (~40 ms) on every keep-alive reply.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    @property
    def fake(self) -> Any:
        return self.server.fake

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # The listening socket defers the handshake to this thread so one
            # slow client cannot block accept() for everyone.
            self.request.settimeout(_HANDSHAKE_TIMEOUT)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()
        self.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass  # the socket may already be reset or gone
        self.fake._track(self.connection, False)

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        pass  # tests read srv.requests instead of stderr noise

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # -- request in -------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self._read_exactly(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self._read_exactly(length)

    def _read_exactly(self, n: int) -> bytes:
        uplink = self.fake.uplink
        if uplink is None:
            data = self.rfile.read(n)
        else:  # a piece at a time, each after its tokens: the client's socket fills and it waits
            pieces, left = [], n
            while left:
                wanted = min(left, PIECE)
                uplink.take(wanted, self.fake._stop_event)
                piece = self.rfile.read1(wanted)
                if not piece:
                    break
                uplink.give_back(wanted - len(piece))  # what the socket did not hold yet did not pass
                pieces.append(piece)
                left -= len(piece)
            data = b"".join(pieces)
        if len(data) != n:
            raise ConnectionError("client closed mid-body")
        return data

    def _dispatch(self) -> None:
        try:
            self._handle()
        except OSError:
            # The client went away mid-reply (or stop() shut the socket down):
            # nothing left to tell it, and the connection is unusable.
            self.close_connection = True

    def _handle(self) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return self._send(json_reply(400, {"detail": "Bad request body"}))
        role = self.server.role
        fake._record(RecordedRequest(self.command, path, query, dict(self.headers.items()),
                                     body, time.monotonic(), fake.origin_of(role)))
        headers: Message | dict[str, str] = self.headers  # the proxy hands on fal's own as a dict
        through_proxy = fake.mode == "proxy" and role == "queue" and path == fake.proxy_path
        if through_proxy:
            path, query, headers, rejection = proxy.unwrap(fake, self.headers)
            if rejection is not None:
                return self._send(rejection)
        route, params = resolve(self.command, path)
        if fake.mode == "proxy" and not through_proxy and route not in (None, "files", "put_upload"):
            route, params = None, ()  # fal's API is only reachable through the proxy
        if role == "cdn" and route != "files":
            route, params = None, ()  # the CDN host knows nothing of queues or uploads
        if route == "cancel":
            fake._record_cancel(params[2])  # every cancel asked for, even one a fault or a 404 answers
        if route is not None and not fake.offers(route):
            route, params = None, ()  # this shape of server has no such route: a plain 404
        relay = fake.relay if role == "queue" else None  # routes/relay.py: a reseller's relay in front of fal
        if relay is not None:
            early = relay.before(fake, self.command, path, headers, body, route)
            if early is not None:
                return self._send(early)
        fault = fake._faults.take(route) if route else None
        if fault is not None and self._fault_before(fault, route):
            return
        if route == "stream":
            return self._stream(params, query, fault, headers)
        try:
            reply = self._process(route, params, query, body, headers)
        except Exception:  # noqa: BLE001 - report the bug to the client and keep serving
            fake._note_error(traceback.format_exc())
            reply = json_reply(500, {"detail": "fake server error"})
        if relay is not None and route == "submit":
            reply = relay.after(reply)
        if fault is not None and fault.kind == "reset_after":
            return self._reset()
        if fault is not None and fault.kind == "hang_after":
            fault.hold(fake._stop_event)
        self._send(reply, partial=fault is not None and fault.kind == "drop")

    # -- faults -------------------------------------------------------------------
    def _fault_before(self, fault: Fault, route: str | None) -> bool:
        """Apply the part of a fault that comes before processing; True if the
        request is fully handled."""
        kind, extra = fault.kind, fault.headers or {}
        if kind == "reset":
            self._reset()
        elif kind == "status":
            assert fault.code is not None  # Fault() refuses a "status" fault without a code
            body = fault.body if fault.body is not None else {"detail": f"injected {fault.code}"}
            raw = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            self._send(Reply(fault.code, raw, "application/json", dict(extra)))
        elif kind == "flap":
            self._send(Reply(503, b'{"detail": "flap"}', "application/json", dict(extra)))
        elif kind == "malformed":
            self._send(Reply(200, MALFORMED_JSON, "application/json", dict(extra)))
        elif kind == "not_image":
            self._send(Reply(200, NOT_IMAGE_HTML, "text/html", dict(extra)))
        elif kind == "bomb":
            self._send(Reply(200, BOMB_PNG, "image/png", dict(extra)))
        elif kind == "stall" and route != "stream":
            self.fake._stop_event.wait(fault.delay)  # the configured latency; stop() cuts it short
            return False
        else:
            return False  # drop / reset_after / stream stall act later
        return True

    def _reset(self) -> None:
        self.close_connection = True
        try:
            self.rfile.close()  # drop the makefile reference so close() is immediate
        except OSError:
            pass
        hard_reset(self.connection)

    # -- routing ------------------------------------------------------------------
    def _query_all(self, name: str) -> list[str]:
        """Every value of a query parameter given more than once (the Platform API's endpoint_id)."""
        return [value for key, value in parse_qsl(urlsplit(self.path).query) if key == name]

    def _process(self, route, params, query, body, headers) -> Reply:
        fake = self.fake
        if route is None:
            return NOT_FOUND
        if route in _QUEUE_ROUTES and not fake._queue_auth_ok(headers):
            return UNAUTHORIZED
        if route == "submit":
            return queue_api.submit(fake, params[0], body, headers)
        if route in ("platform_requests", "platform_pricing"):
            endpoints = [e for value in self._query_all("endpoint_id") for e in value.split(",") if e]
            if route == "platform_requests":
                return platform_api.requests_by_endpoint(fake, query, endpoints)
            return platform_api.pricing(fake, endpoints)
        if route in ("status", "result", "cancel"):
            job = fake._job_for(*params)
            if job is None:  # fal's cancel names its answer: 404 NOT_FOUND
                return queue_api.CANCEL_NOT_FOUND if route == "cancel" else NOT_FOUND
            if route == "status":
                return queue_api.status(fake, job, query)
            return queue_api.result(fake, job) if route == "result" else queue_api.cancel(fake, job)
        if route == "token":
            return storage.token_route(fake, headers, body)
        if route == "upload":
            return storage.upload_route(fake, headers, body)
        if route == "initiate":
            return storage.initiate_route(fake, headers, body)
        if route == "put_upload":
            return storage.put_upload_route(fake, headers, body, params[0])
        return storage.files_route(fake, params[0], self.server.role)

    # -- reply out ----------------------------------------------------------------
    def _send(self, reply: Reply, partial: bool = False) -> None:
        self.send_response(reply.code)
        for name, value in reply.headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Type", reply.content_type)
        # Always a Content-Length (even when partial: that is the point of
        # "drop"), so keep-alive framing stays correct.
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if partial:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            return self._reset()
        downlink = self.fake.downlink
        if downlink is None:
            self.wfile.write(reply.body)
            return
        view = memoryview(reply.body)
        for start in range(0, len(view), PIECE):
            downlink.take(min(PIECE, len(view) - start), self.fake._stop_event)
            self.wfile.write(view[start:start + PIECE])

    # -- SSE ----------------------------------------------------------------------
    def _stream(self, params, query, fault: Fault | None, headers) -> None:
        fake = self.fake
        if not fake._queue_auth_ok(headers):
            return self._send(UNAUTHORIZED)
        job = fake._job_for(*params)
        if job is None:
            return self._send(NOT_FOUND)
        with fake._cond:
            job.stream_calls += 1
        if fault is not None and fault.kind == "reset_after":
            return self._reset()
        chunked = bool(fake.sse_chunked)
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._stream_events(job, queue_api.wants_logs(query), fault, chunked)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")  # a clean end of the body
        except (OSError, ValueError):
            pass  # client went away (or stop() shut the socket): end quietly

    def _write_event(self, data: bytes, chunked: bool) -> None:
        # One write per event: wfile is unbuffered, so it leaves at once.
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

    def _stream_events(self, job, with_logs: bool, fault: Fault | None, chunked: bool) -> None:
        fake = self.fake
        keepalive = fake.keepalive_interval
        last = None
        while True:
            status, next_change, version = fake._snapshot(job, with_logs)
            if status != last:
                self._write_event(b"data: " + json.dumps(status).encode() + b"\n\n", chunked)
                last, last_write = status, time.monotonic()
            if fault is not None and fault.kind in ("drop", "stall"):
                if fault.kind == "stall":
                    fake._stop_event.wait(fault.delay)  # silence, no keepalives
                return
            if status["status"] == "COMPLETED":
                return
            while True:  # wait for the next change, a ping deadline, a cancel or stop
                ping_at = last_write + keepalive if keepalive else None
                woke = fake._wait_change(job, version, next_change, ping_at)
                if woke != "ping":
                    break
                self._write_event(b": ping\n\n", chunked)
                last_write = time.monotonic()
            if woke == "stop":
                return
