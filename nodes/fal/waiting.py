"""Interruptible waiting: an overall deadline plus a cancel hook.

Every sleep in the client (retry backoff, poll interval, waiting for the next
SSE event) goes through ``Waiter.sleep`` so that pressing Cancel is noticed
within ``CHECK_INTERVAL`` seconds, whatever the client is doing.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from .errors import CancelledError, FalTimeoutError

CHECK_INTERVAL = 0.25  # the longest the user waits for Cancel to be noticed

CancelHook = Optional[Callable[[], bool]]


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

    def cancelled(self) -> bool:
        return bool(self.should_cancel and self.should_cancel())

    def check(self, request_id: str | None = None) -> None:
        """Raise if the user cancelled or the deadline passed."""
        if self.cancelled():
            raise CancelledError("Cancelled by the user.", request_id=request_id)
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
