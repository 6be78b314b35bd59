"""Interruptible waiting: an overall deadline plus a cancel hook.

Every sleep in the client (retry backoff, poll interval, waiting for the next
SSE event) goes through ``Waiter.sleep``, and every blocking HTTP call through
``Waiter.run``, so that pressing Cancel is noticed within ``CHECK_INTERVAL``
seconds, whatever the client is doing: a call stalled on a silent server is
abandoned rather than waited out (its read timeout may be minutes).
"""

from __future__ import annotations

import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Optional, TypeVar

from .errors import CancelledError, FalTimeoutError

CHECK_INTERVAL = 0.25  # the longest the user waits for Cancel to be noticed

CancelHook = Optional[Callable[[], bool]]
T = TypeVar("T")
# Told that its call is being abandoned; returns False to refuse (the waiter then keeps waiting
# for the answer, e.g. a submit that already went out: its reply names the job to cancel).
AbortHook = Optional[Callable[[], bool]]


class Waiter:
    def __init__(self, should_cancel: CancelHook = None, timeout: float | None = None):
        self.should_cancel = should_cancel
        self.started = time.monotonic()
        self.deadline = None if timeout is None else self.started + timeout
        self.timeout = timeout
        # Set by anyone who wants the current sleep to end early (e.g. an SSE event).
        self.wake = threading.Event()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def extend(self, seconds: float) -> None:
        """Move the deadline back: for time spent not on this edit (waiting for a batch slot)."""
        if self.deadline is not None:
            self.deadline += seconds

    def cancelled(self) -> bool:
        return bool(self.should_cancel and self.should_cancel())

    def fired(self) -> bool:
        """True once ``check`` would raise (cancelled, or past the deadline)."""
        remaining = self.remaining()
        return self.cancelled() or (remaining is not None and remaining <= 0)

    def check(self, request_id: str | None = None) -> None:
        """Raise if the user cancelled or the deadline passed."""
        if self.cancelled():
            raise CancelledError("Cancelled by the user.", request_id=request_id, by_user=True)
        remaining = self.remaining()
        if remaining is not None and remaining <= 0:
            raise FalTimeoutError(
                f"The edit did not finish within {self.timeout:g} s. Raise the timeout, or fetch the "
                "result later by its request id.", request_id=request_id)

    def sleep(self, seconds: float, request_id: str | None = None) -> bool:
        """Sleep up to ``seconds``; returns True when woken early by ``wake``.

        Raises CancelledError / FalTimeoutError as soon as either happens.
        """
        end = time.monotonic() + max(0.0, seconds)
        while True:
            self.check(request_id)
            now = time.monotonic()
            if now >= end:
                return False
            step = min(CHECK_INTERVAL, end - now)
            remaining = self.remaining()
            if remaining is not None:
                step = min(step, max(remaining, 0.0))
            if self.wake.wait(step):
                self.wake.clear()
                return True

    def _step(self) -> float:
        remaining = self.remaining()
        return CHECK_INTERVAL if remaining is None else max(0.0, min(CHECK_INTERVAL, remaining))

    def result(self, future: "Future[T]", request_id: str | None = None) -> T:
        """Wait for ``future`` (e.g. another thread's identical upload), checking as ``sleep`` does."""
        while True:
            self.check(request_id)
            try:
                return future.result(timeout=self._step())
            except FutureTimeout:
                continue

    def run(self, call: Callable[[], T], request_id: str | None = None, *, abort: AbortHook = None,
            on_abandon: Callable[[T], None] | None = None) -> T:
        """Run the blocking ``call`` so that cancel and the deadline interrupt it.

        The call runs on its own short-lived daemon thread while this one checks every
        ``CHECK_INTERVAL``. To give up, ``abort`` is called (it should make the call
        return at once, e.g. by shutting its socket down) and the error is raised; a
        result that still arrives goes to ``on_abandon`` (to close a response). With
        nothing to interrupt for (no hook, no deadline) the call runs inline.
        """
        if self.should_cancel is None and self.deadline is None:
            return call()
        self.check(request_id)
        future: "Future[T]" = Future()
        abandoned = threading.Lock()  # held once abandoned; makes "done or abandoned" race-free
        state = {"abandoned": False}

        def body() -> None:
            try:
                value = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                future.set_exception(exc)
                return
            with abandoned:
                late = state["abandoned"]
                if not late:
                    future.set_result(value)
            if late and on_abandon is not None:
                on_abandon(value)

        threading.Thread(target=body, name="fal-call", daemon=True).start()
        insisting = False
        while True:
            try:
                return future.result(timeout=CHECK_INTERVAL if insisting else self._step())
            except FutureTimeout:
                pass
            if insisting:
                continue
            try:
                self.check(request_id)
            except (CancelledError, FalTimeoutError):
                if abort is not None and not abort():
                    insisting = True  # this call may not be abandoned; its answer decides
                    continue
                with abandoned:
                    state["abandoned"] = True
                    finished = future.done()
                if finished and on_abandon is not None and future.exception() is None:
                    on_abandon(future.result())
                raise


class BodyWatch:
    """Breaks the read of a streamed body (a download) once its waiter fires.

    The reading thread is blocked in the socket, so a watcher thread polls the
    waiters every CHECK_INTERVAL and aborts a fired one's call (shutting its
    socket down): the read fails at once and the caller's next check raises
    Cancelled/Timeout. It calls the cancel hook from its own thread. It runs only
    while bodies are being read, and forgets a call once its connection went
    back to the pool (body read or response closed) or its response is gone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[weakref.ref, Any, Waiter]] = []  # (response, its call, waiter)
        self._running = False

    def add(self, resp: Any, waiter: Waiter) -> None:
        """Watch ``resp``'s call (``resp.fal_call``: ``.conn`` while it holds one, ``.abort()``)."""
        state = getattr(resp, "fal_call", None)
        if state is None or (waiter.should_cancel is None and waiter.deadline is None):
            return
        with self._lock:
            self._items.append((weakref.ref(resp), state, waiter))
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="fal-body-watch", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(CHECK_INTERVAL)
            with self._lock:
                items = list(self._items)
            done = []
            for item in items:
                ref, state, waiter = item
                if ref() is None or state.conn is None:
                    done.append(item)
                elif waiter.fired():
                    state.abort()
                    done.append(item)
            with self._lock:
                self._items = [item for item in self._items if not any(item is d for d in done)]
                if not self._items:
                    self._running = False
                    return
