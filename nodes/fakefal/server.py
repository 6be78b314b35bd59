"""``FakeFal``: settings, shared state, and the server's life (start, stop,
self-stop after ``max_lifetime``)."""

from __future__ import annotations

import json
import shutil
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import traceback
import uuid
from http.server import ThreadingHTTPServer

from .edit import run_edit
from .faults import Fault, FaultBook
from .handler import Handler
from .jobs import Job
from .routes.platform_api import PRICE_UNITS, UNIT_PRICES
from .routes.storage import Storage, load_input
from .throttle import RECEIVE_BUFFER, TokenBucket
from .wire import authorized

GATEWAY_QUEUE_BASE = "https://queue.fal.run"
# The shapes of server the fake can be (../shared/FAL_PROTOCOL.md §1b):
#   fal                  Key auth; /status answers 202 while queued or running, 200 once COMPLETED;
#                        SSE stream; the result URL answers 400 "still in progress" while running.
#   gateway              a reseller re-exposing all of that under its base URL, with Bearer auth;
#                        its submit reply still names queue.fal.run URLs.
#   gateway_result_only  Bearer; submit + result only (no /status, no stream); result as fal's.
#   gateway_task         Bearer; submit + result only; the result URL answers ``task_code`` (202,
#                        or 200) with the status JSON while running, and FAILED / CANCELED states.
#   proxy                fal's server proxy in front of fal (proxy.py): every call to ``proxy_path``
#                        with x-fal-target-url; the proxy holds the key.
MODES = ("fal", "gateway", "gateway_result_only", "gateway_task", "proxy")
STATUS_LESS = ("gateway_result_only", "gateway_task")
_READY_TIMEOUT = 60.0


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True        # a stuck handler must never keep a test process alive
    block_on_close = False
    request_queue_size = 128     # benchmarks open many connections at once

    def __init__(self, fake: "FakeFal", port: int, ssl_context: ssl.SSLContext | None,
                 role: str = "queue"):
        self.fake = fake
        self.ssl_context = ssl_context
        self.role = role  # "queue" (queue + storage) or "cdn" (output files only)
        super().__init__(("127.0.0.1", port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call getfqdn(), a reverse DNS lookup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.socket.getsockname()[:2]  # = server_address, host as a str

    def get_request(self):
        sock, addr = super().get_request()
        if self.fake.uplink is not None:  # a small receive buffer: the client feels the throttle at once
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        if self.ssl_context is not None:
            # Handshake later, in the connection's own thread (Handler.setup).
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return  # clients hanging up or failing TLS is normal here
        self.fake._note_error(traceback.format_exc())


class FakeFal:
    """Fake fal queue + storage + CDN on 127.0.0.1.

    Output files are served from a second listening port, ``cdn_url``, because
    real fal serves them from another host (fal.media) and the client decides by
    origin (scheme, host, port) whether to attach the key: on one shared origin
    a key sent along with a download would go unnoticed.

    Inspect ``submissions``, ``runs`` (jobs a runner started: what fal bills), ``requests``,
    ``jobs``, ``cancel_requests``, ``uploads`` and ``errors``; inject trouble with ``add_fault``, ``nsfw``
    and ``fail_job``. Use as a context manager or call ``start``/``stop``.
    """

    def __init__(self, key: str = "test-key", mode: str = "fal", queue_time: float = 0.0,
                 run_time: float = 0.0, queue_positions: int = 0,
                 logs=("loading model", "denoising"), sse: bool = True, storage_v3: bool = True,
                 tls: bool = False, keepalive_interval: float | None = None,
                 max_lifetime: float = 900.0, port: int = 0, cdn_port: int = 0,
                 proxy_token: str | None = None, proxy_fal_key: str | None = None,
                 uplink_mbps: float | None = None, downlink_mbps: float | None = None,
                 size_rule: str = "per input"):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        # Plain attributes: tests may change them between requests. Job
        # timing settings are read at submit time, the rest per request.
        self.key, self.mode = key, mode
        self.queue_time, self.run_time, self.queue_positions = queue_time, run_time, queue_positions
        self.logs, self.sse, self.storage_v3 = tuple(logs), sse, storage_v3
        self.tls, self.keepalive_interval, self.max_lifetime = tls, keepalive_interval, max_lifetime
        self.port, self.cdn_port = port, cdn_port  # 0: any free port (a fixed one lets a test start it late)
        self.relay = None          # routes/relay.Relay: a reseller's relay software in front (gateway modes)
        self.sse_chunked = False   # True: frame the stream with chunked transfer encoding
        self.cancel_offered = True  # False: PUT …/cancel answers 404, as on many gateways
        self.task_code = 202       # gateway_task: the result URL's code while the job runs (202 or 200)
        self.proxy_path = "/api/fal/proxy"  # @fal-ai/server-proxy's default route
        self.proxy_token = proxy_token      # proxy mode: a Bearer token the proxy checks itself
        self.proxy_fal_key = key if proxy_fal_key is None else proxy_fal_key  # the key the proxy adds
        # Request bodies in, reply bodies out, through a shared token bucket each (throttle.py).
        self.uplink = TokenBucket(uplink_mbps) if uplink_mbps else None
        self.downlink = TokenBucket(downlink_mbps) if downlink_mbps else None
        # Output size when a request has no image_size: "per input" (each output the size of the input it
        # inverts: handy for pixel checks) or "pipeline" (what fal documents per endpoint, see edit.py).
        self.size_rule = size_rule
        self.nsfw = False
        self.fail_job: str | None = None
        # How long fal keeps a job's result when its submit said X-Fal-Store-IO: 0 (fal's docs: 1 hour,
        # 6 minutes for results of 10 KB or more); after that its request answers 404 like an unknown one
        # (fal's answer for an expired one is UNCONFIRMED). Tests shorten them.
        self.store_io_retention, self.store_io_retention_large = 3600.0, 360.0
        self._closed_socket: socket.socket | None = None

        self._cond = threading.Condition()   # guards everything below; SSE waits on it
        self.submissions = 0
        self.requests: list = []
        self.jobs: dict[str, Job] = {}
        self.cancel_requests: list[tuple[str, float]] = []
        # the Platform API: calls, its prices and their units ("image" where listed, else megapixels)
        self.platform_calls, self.unit_prices, self.price_units = 0, dict(UNIT_PRICES), dict(PRICE_UNITS)
        self.billable_units = True           # X-Fal-Billable-Units on results, as fal sends it
        self.errors: list[str] = []          # tracebacks of fake-server bugs, for tests to assert on
        self.storage = Storage()
        self._faults = FaultBook()
        self._conns: set = set()

        self.url = ""
        self.cdn_url = ""
        self.cert_path: str | None = None
        self._tls_dir: str | None = None
        self._httpd: _HTTPServer | None = None
        self._cdn_httpd: _HTTPServer | None = None
        self._stopping = False
        self._stop_event = threading.Event()      # set when stop begins (cuts stalls short)
        self._faults.stop_event = self._stop_event  # ...and "hang" faults
        self._stopped_event = threading.Event()   # set when stop has finished
        self._timer: threading.Timer | None = None

    # -- life -------------------------------------------------------------------
    def start(self) -> "FakeFal":
        if self._httpd is not None:
            return self
        context = None
        try:
            if self.tls:
                from .tls import make_self_signed
                self._tls_dir = tempfile.mkdtemp(prefix="fakefal-tls-")
                self.cert_path, key_path = make_self_signed(self._tls_dir)
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.cert_path, key_path)
            self._httpd = _HTTPServer(self, self.port, context)
            self._cdn_httpd = _HTTPServer(self, self.cdn_port, context, role="cdn")
        except BaseException:
            if self._httpd is not None:
                self._httpd.server_close()
                self._httpd = None
            self._remove_tls_dir()
            raise
        scheme = "https" if self.tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self.cdn_url = f"{scheme}://127.0.0.1:{self._cdn_httpd.server_address[1]}"
        for httpd in (self._httpd, self._cdn_httpd):
            threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                             name=f"fakefal-{httpd.role}-{httpd.server_address[1]}", daemon=True).start()
        # Self-stop so a test that forgets stop() (or crashes) cannot leave a
        # server behind for long.
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._cond:
            if self._httpd is None or self._cdn_httpd is None or self._stopping:  # start() sets both or neither
                return
            self._stopping = True
            self._cond.notify_all()          # SSE writers end their streams
        self._stop_event.set()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        for httpd in (self._httpd, self._cdn_httpd):
            httpd.shutdown()                 # waits for the accept loop to exit
            httpd.server_close()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:                   # idle keep-alive connections, open streams
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._remove_tls_dir()
        if self._closed_socket is not None:
            self._closed_socket.close()
        self._stopped_event.set()

    @property
    def stopped(self) -> bool:
        return self._stopped_event.is_set()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped_event.wait(timeout)

    def __enter__(self) -> "FakeFal":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _remove_tls_dir(self) -> None:
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    # -- public helpers -----------------------------------------------------------
    def add_fault(self, fault: Fault) -> Fault:
        return self._faults.add(fault)

    def set_chaos(self, probability: float, templates: list[Fault], seed: int = 0) -> None:
        self._faults.set_chaos(probability, templates, seed)

    @property
    def chaos_fired(self) -> list[tuple[str, str, int | None]]:
        return list(self._faults.chaos_fired)

    @property
    def faults(self) -> list[Fault]:
        return list(self._faults.faults)

    @property
    def runs(self) -> int:
        """How many jobs a runner has started by now (a job dropped at its start deadline never is)."""
        now = time.monotonic()
        with self._cond:
            return sum(job.ran(now) for job in self.jobs.values())

    @property
    def unreachable_url(self) -> str:
        """A 127.0.0.1 URL nothing answers on, the stand-in for an unreachable ``queue.fal.run``: its
        port is bound but never listening, so every connection is refused at once (and no other
        server can take the port while this one runs). Give it as ``FAL_QUEUE_BASE`` and this
        server's ``url`` as ``FAL_QUEUE_BACKUP_BASE``: the fake then plays fal's backup host, and
        the URLs it returns name it, as fal's do on ``queue.falrun.com``."""
        with self._cond:
            if self._closed_socket is None:
                self._closed_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._closed_socket.bind(("127.0.0.1", 0))
            port = self._closed_socket.getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"

    @property
    def uploads(self) -> list[tuple[str, int]]:
        return self.storage.uploads

    def forget(self) -> None:
        """Drop jobs, recorded requests and stored files (benchmarks and soaks between rounds).

        Every recorded submit keeps its body, data URIs included: without this a
        long run grows by megabytes per edit, and the client's own memory use
        could not be told apart from the fake's.
        """
        with self._cond:
            self.requests.clear()
            self.jobs.clear()
            self.cancel_requests.clear()
        self.storage.forget()

    # -- used by the handler --------------------------------------------------------
    def _track(self, conn, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)

    def origin_of(self, role: str) -> str:
        return self.cdn_url if role == "cdn" else self.url

    def _record(self, request) -> None:
        with self._cond:
            self.requests.append(request)

    def _record_cancel(self, request_id: str) -> None:
        with self._cond:
            self.cancel_requests.append((request_id, time.monotonic()))

    def _note_error(self, text: str) -> None:
        with self._cond:
            self.errors.append(text)

    @property
    def proxy_url(self) -> str:
        return self.url + self.proxy_path

    def offers(self, route: str) -> bool:
        """Whether this shape of server has the route at all (else it answers 404)."""
        if route in ("status", "stream"):
            return self.mode not in STATUS_LESS and (route == "status" or self.sse)
        if route == "cancel":
            return self.cancel_offered
        if route.startswith("platform_"):
            return self.mode == "fal"  # api.fal.ai: only fal itself has it
        return True

    def _queue_auth_ok(self, headers) -> bool:
        # Through the proxy, fal sees the Authorization the proxy sent (see proxy.unwrap).
        return authorized(headers, "Key" if self.mode in ("fal", "proxy") else "Bearer", self.key)

    def _job_for(self, owner: str, app: str, request_id: str) -> Job | None:
        with self._cond:
            job = self.jobs.get(request_id)
        if job is None or job.app != f"{owner}/{app}" or self._expired(job):
            return None
        return job

    def _expired(self, job: Job) -> bool:
        """A job submitted with X-Fal-Store-IO: 0 whose result has outlived fal's short retention."""
        now = time.monotonic()
        if job.store_io or not job.done(now):
            return False
        large = job.result is not None and len(json.dumps(job.result)) >= 10 * 1024
        return now > job.completed_at + (self.store_io_retention_large if large else self.store_io_retention)

    def seed_job(self, endpoint: str, arguments: dict) -> Job:
        """A job fal holds that the client never submitted (another machine): not in ``submissions``."""
        job = self._create_job(endpoint, arguments, counted=False)
        job.ready.wait(30)
        return job

    def _create_job(self, endpoint: str, arguments: dict, guards: dict | None = None, counted: bool = True) -> Job:
        """``guards``: what the submit's fal headers asked for (queue_api.guards_of)."""
        owner_app = "/".join(endpoint.split("/")[:2])
        base = self.url if self.mode == "fal" else GATEWAY_QUEUE_BASE
        job = Job(request_id=str(uuid.uuid4()), endpoint=endpoint, app=owner_app,
                  arguments=arguments, submitted_at=time.monotonic(), submitted_wall=time.time(),
                  queue_time=float(self.queue_time), run_time=float(self.run_time),
                  queue_positions=int(self.queue_positions), log_lines=_lora_lines(arguments) + tuple(self.logs),
                  queue_base=base, nsfw=bool(self.nsfw), fail_text=self.fail_job, size_rule=self.size_rule,
                  **(guards or {}))
        with self._cond:
            self.jobs[job.request_id] = job
            self.submissions += counted
        if job.dropped:
            return job  # it never runs: no outputs to compute
        # Outputs are computed now, so they are ready when the timeline says COMPLETED.
        threading.Thread(target=run_edit, name=f"fakefal-edit-{job.request_id[:8]}", daemon=True,
                         args=(job, self._load_input, self._store_output)).start()
        return job

    def _load_input(self, url: str) -> bytes:
        # An input may be an earlier output (chained edits), so both origins count.
        return load_input((self.url, self.cdn_url), self.storage, url)

    def _store_output(self, name: str, data: bytes, content_type: str) -> str:
        self.storage.put(name, data, content_type, output=True)
        return f"{self.cdn_url}/files/{name}"

    def _snapshot(self, job: Job, with_logs: bool) -> tuple[dict, float | None, int]:
        """(status body, next scheduled change, job version), consistent with each other."""
        waited = False
        while True:
            with self._cond:
                now = time.monotonic()
                # A done job's success or failure is known only once its outputs are.
                if waited or not job.done(now) or job.cancelled or job.ready.is_set():
                    return job.status(now, with_logs), job.next_change_after(now), job.version
            job.ready.wait(_READY_TIMEOUT)
            waited = True

    def _wait_change(self, job: Job, version: int, next_change: float | None, ping_at: float | None) -> str:
        """Block until the next scheduled change or a cancel ("change"), the
        keepalive deadline ("ping") or stop() ("stop"). Timed condition waits
        wake at the scheduled instant itself, not on a polling tick."""
        with self._cond:
            while True:
                if self._stopping:
                    return "stop"
                now = time.monotonic()
                if job.version != version or (next_change is not None and now >= next_change):
                    return "change"
                if ping_at is not None and now >= ping_at:
                    return "ping"
                deadlines = [d for d in (next_change, ping_at) if d is not None]
                self._cond.wait(min(deadlines) - now if deadlines else None)


def _lora_lines(arguments: dict) -> tuple[str, ...]:
    """The LoRAs a job got, echoed as its first log lines, so tests see what reached the endpoint."""
    return tuple(f"loading LoRA {lora.get('path')} (scale {lora.get('scale', 1.0)})"
                 for lora in arguments.get("loras") or [] if isinstance(lora, dict))
