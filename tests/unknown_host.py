"""A host nobody configured: an HTTP server on 127.0.0.1 that records every request it gets.

Issue 24's tests point a shared workflow's settings (a Connection node's base_url, a manifest line,
a redirect, an output URL) at it and count what arrived: for a refused host, nothing at all.
``answers`` maps a path to (status, headers, body) so it can serve an image or redirect elsewhere;
any other request gets 200 ``{}``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class UnknownHost:
    def __init__(self, answers: dict[str, tuple[int, dict[str, str], bytes]] | None = None):
        self.answers = dict(answers or {})
        self.requests: list[Seen] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                host.requests.append(Seen(self.command, self.path, dict(self.headers.items()), body))
                status, headers, payload = host.answers.get(self.path.split("?")[0],
                                                            (200, {"Content-Type": "application/json"}, b"{}"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.named_url = f"http://localhost:{self.port}"  # the same server under a name
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "UnknownHost":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
