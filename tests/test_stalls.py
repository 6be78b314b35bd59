"""Cancel and the overall timeout while an HTTP call is stalled on a silent server.

Each stall lasts 30 s (far beyond every assertion), so a test passes only if the
client abandons the stalled call: Cancel must reach fal within a second of the
press, a timeout must fire within a second of the deadline, and the abandoned
call's thread must end at once (its socket is shut down), not at its read timeout.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
import types

import pytest
import requests

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import CancelledError, FalTimeoutError
from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from comfyui_fal_qwen_edit.nodes.fal.base.waiting import Waiter

from conftest import gradient
from test_queue import ENDPOINT, arguments

STALL = 30.0
LATENCY = 1.0  # the brief: noticed within ~250 ms; one second leaves room for a loaded machine
CALL_THREADS = ("fal-call", "fal-sse-reader")


@pytest.fixture
def server(fake_fal):
    """fake_fal whose "hang" faults are released at teardown (stop() ends the "stall" ones)."""
    yield fake_fal
    for fault in fake_fal.faults:
        fault.release()


def wait_until(condition, timeout: float = 5.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        threading.Event().wait(0.005)


def calls_alive() -> int:
    return sum(t.name in CALL_THREADS for t in threading.enumerate())


class Press:
    """Presses Cancel (sets the flag) as soon as ``condition`` holds, and notes when."""

    def __init__(self, condition):
        self.flag = threading.Event()
        self.pressed: float | None = None
        self._thread = threading.Thread(target=self._run, args=(condition,), daemon=True)
        self._thread.start()

    def _run(self, condition) -> None:
        try:
            wait_until(condition, timeout=10.0)
        except AssertionError:
            return
        self.pressed = time.monotonic()
        self.flag.set()


# where → (use_sse, job run time, fault, extra wait settings)
SCENARIOS = {
    "status": lambda: (False, STALL, Fault("status", "stall", delay=STALL, times=None), {}),
    "stream open": lambda: (True, STALL, Fault("stream", "hang", delay=STALL, times=None), {}),
    "stream read": lambda: (True, STALL, Fault("stream", "stall", delay=STALL, times=None),
                            {"stream_idle_check": 60.0}),
    "result": lambda: (True, 0.0, Fault("result", "stall", delay=STALL), {}),
}


def stalled_job(server, make_client, where):
    use_sse, run_time, fault, wait = SCENARIOS[where]()
    server.run_time = run_time
    server.add_fault(fault)
    client = make_client(server, use_sse=use_sse, **wait)
    return client, client.queue.submit(ENDPOINT, arguments()), fault


@pytest.mark.parametrize("where", list(SCENARIOS))
def test_cancel_during_a_stalled_call_reaches_fal_within_a_second(where, server, make_client):
    baseline = calls_alive()
    client, handle, fault = stalled_job(server, make_client, where)
    press = Press(lambda: fault.fired >= 1)
    if where == "result":  # the job is done: fal answers ALREADY_COMPLETED, and the paid result comes back
        assert client.queue.wait(handle, should_cancel=press.flag.is_set)["images"]
    else:
        with pytest.raises(CancelledError) as info:
            client.queue.wait(handle, should_cancel=press.flag.is_set)
        assert info.value.by_user is True and info.value.fal_answer == "CANCELLATION_REQUESTED"
        assert handle.request_id in str(info.value)
    raised = time.monotonic()
    assert press.pressed is not None and raised - press.pressed < LATENCY
    [(request_id, seen_at)] = server.cancel_requests
    assert request_id == handle.request_id and seen_at - press.pressed < LATENCY
    # The abandoned call's socket was shut down: its thread ends now, not in 30 s.
    wait_until(lambda: calls_alive() <= baseline, timeout=2.0, what="abandoned call threads to end")


@pytest.mark.parametrize("where", list(SCENARIOS))
def test_timeout_during_a_stalled_call_fires_on_time(where, server, make_client):
    client, handle, fault = stalled_job(server, make_client, where)
    started = time.monotonic()
    with pytest.raises(FalTimeoutError) as info:
        client.queue.wait(handle, timeout=1.0)
    late = time.monotonic() - started - 1.0
    assert fault.fired >= 1  # the deadline did fall inside the stall
    assert -0.05 < late < LATENCY
    assert handle.request_id in str(info.value)
    assert not server.cancel_requests  # a timeout leaves the job alone


def test_cancel_during_retry_backoff(server, make_client):
    server.run_time = STALL
    fault = server.add_fault(Fault("status", "status", code=429, headers={"Retry-After": "30"}))
    client = make_client(server, use_sse=False)
    handle = client.queue.submit(ENDPOINT, arguments())
    press = Press(lambda: fault.fired >= 1)
    with pytest.raises(CancelledError) as info:
        client.queue.wait(handle, should_cancel=press.flag.is_set)
    assert time.monotonic() - press.pressed < LATENCY
    assert [rid for rid, _ in server.cancel_requests] == [handle.request_id]
    assert info.value.fal_answer == "CANCELLATION_REQUESTED"


@pytest.mark.parametrize("stop", ["cancel", "timeout"])
def test_stalled_upload_is_abandoned(stop, server, make_client):
    baseline = calls_alive()
    fault = server.add_fault(Fault("upload", "stall", delay=STALL))
    client = make_client(server)
    press = Press(lambda: fault.fired >= 1)
    waiter = Waiter(press.flag.is_set) if stop == "cancel" else Waiter(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(CancelledError if stop == "cancel" else FalTimeoutError):
        client.uploader.url_for(encode_png(gradient(8, 8)), waiter=waiter)
    since = press.pressed if stop == "cancel" else started + 1.0
    assert fault.fired == 1 and time.monotonic() - since < LATENCY
    assert not server.uploads and server.submissions == 0
    wait_until(lambda: calls_alive() <= baseline, timeout=2.0, what="the upload thread to end")


def test_waiting_for_an_identical_upload_honours_cancel(server, make_client):
    fault = server.add_fault(Fault("upload", "stall", delay=STALL))
    client = make_client(server)
    png = encode_png(gradient(8, 8, seed=3))
    first: dict = {}
    owner_cancel = threading.Event()
    uploading = threading.Thread(target=lambda: first.update(
        result=_catch(lambda: client.uploader.url_for(png, waiter=Waiter(owner_cancel.is_set)))))
    uploading.start()
    wait_until(lambda: fault.fired >= 1, what="the first upload to stall")
    press = Press(lambda: True)
    with pytest.raises(CancelledError):
        client.uploader.url_for(png, waiter=Waiter(press.flag.is_set))
    assert time.monotonic() - press.pressed < LATENCY
    # The owner's cancel does not fail a waiter that still wants the URL: it uploads itself.
    owner_cancel.set()
    url = client.uploader.url_for(png, waiter=Waiter(timeout=10.0))
    uploading.join(5.0)
    assert isinstance(first["result"], CancelledError)
    assert url.startswith(server.url) and len(server.uploads) == 1


def _catch(call):
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - handed to the test thread
        return exc


def test_submit_that_went_out_is_waited_for_then_cancelled(server, make_client):
    """A sent submit is never abandoned: its answer names the job, which is then cancelled."""
    server.run_time = STALL
    fault = server.add_fault(Fault("submit", "hang", delay=1.0))
    client = make_client(server)
    press = Press(lambda: fault.fired >= 1)
    handle = client.queue.submit(ENDPOINT, arguments(), waiter=Waiter(press.flag.is_set))
    assert press.flag.is_set() and server.submissions == 1
    with pytest.raises(CancelledError) as info:
        client.queue.wait(handle, should_cancel=press.flag.is_set)
    assert info.value.fal_answer == "CANCELLATION_REQUESTED"
    assert server.jobs[handle.request_id].cancelled


class SilentServer:
    """Accepts connections and never answers: a TLS handshake or a request left hanging."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        self.received = b""
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn) -> None:
        try:
            while chunk := conn.recv(65536):
                self.received += chunk
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # close() alone leaves a blocked recv, and the peer, waiting
            except OSError:
                pass
            conn.close()


def test_submit_stuck_in_the_tls_handshake_is_abandoned_unsent(make_client):
    silent = SilentServer()
    baseline = calls_alive()
    try:
        client = make_client(types.SimpleNamespace(url=silent.url))
        press = Press(lambda: silent.received)
        with pytest.raises(CancelledError):
            client.queue.submit(ENDPOINT, arguments(), waiter=Waiter(press.flag.is_set))
        assert time.monotonic() - press.pressed < LATENCY
        assert silent.received[:1] == b"\x16"  # only a TLS ClientHello ever went out
    finally:
        silent.close()
    wait_until(lambda: calls_alive() <= baseline, timeout=5.0, what="the handshake thread to end")


def test_streamed_download_body_stall_is_broken_by_cancel(make_client, server):
    """Headers, then half a body, then silence: the body read is broken, not waited out."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/out.png"

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        conn.recv(1)  # until the client goes away
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    client = make_client(server)
    cancel = threading.Event()
    resp = client.transport.request("GET", url, what="Download", waiter=Waiter(cancel.is_set), ok=(200,),
                                    stream=True)
    cancel.set()
    pressed = time.monotonic()
    with pytest.raises(requests.RequestException):  # downloads.py retries this, and its waiter then raises
        b"".join(resp.iter_content(1 << 20))
    assert time.monotonic() - pressed < LATENCY
    resp.close()
    listener.close()


def test_measured_latencies_are_well_under_a_second(server, make_client, capsys):
    """Medians over a few runs (printed for the record): cancel and timeout during a status stall."""
    cancels, timeouts = [], []
    server.run_time = STALL
    fault = server.add_fault(Fault("status", "stall", delay=STALL, times=None))
    client = make_client(server, use_sse=False)
    for _ in range(3):
        handle = client.queue.submit(ENDPOINT, arguments())
        seen = fault.fired
        press = Press(lambda: fault.fired > seen)
        with pytest.raises(CancelledError):
            client.queue.wait(handle, should_cancel=press.flag.is_set)
        cancels.append(time.monotonic() - press.pressed)
        handle = client.queue.submit(ENDPOINT, arguments())
        started = time.monotonic()
        with pytest.raises(FalTimeoutError):
            client.queue.wait(handle, timeout=0.5)
        timeouts.append(time.monotonic() - started - 0.5)
    with capsys.disabled():
        print(f"\nstall latencies: cancel median {statistics.median(cancels) * 1000:.0f} ms, "
              f"timeout median {statistics.median(timeouts) * 1000:.0f} ms past the deadline")
    assert statistics.median(cancels) < 0.4 and statistics.median(timeouts) < 0.4
