"""Batch mode's job slots: at most ``concurrency`` of one batch's jobs on fal at once."""

from __future__ import annotations

import threading
import time

from ..base.errors import CancelledError
from ..base.waiting import CHECK_INTERVAL, Waiter


class JobSlots:
    """At most ``limit`` of one batch's jobs on fal at once (batch mode's ``concurrency``).

    A slot is taken just before a submit and given back as soon as the job's
    result JSON is in, so the next frame's job starts while this one's outputs
    download and decode; frames waiting for a slot are already encoded and
    uploaded. Each edit holds a ``ticket``, so giving back twice is harmless.
    A ticket is ``settled`` once its edit has a slot or has ended."""

    def __init__(self, limit: int):
        self._free = threading.Semaphore(max(1, limit))

    def ticket(self) -> SlotTicket:
        return SlotTicket(self._free)


class SlotTicket:
    def __init__(self, free: threading.Semaphore):
        self._free = free
        self._held = False
        self._lock = threading.Lock()
        self.settled = threading.Event()

    def take(self, waiter: Waiter) -> None:
        """Block until a slot is free. Cancel ends the wait (nothing is submitted yet); the
        time spent waiting does not count against the edit's timeout, which is for its job."""
        if self._held:
            return
        began = time.monotonic()
        while not self._free.acquire(timeout=CHECK_INTERVAL):
            if waiter.cancelled():
                raise CancelledError("Cancelled by the user.", by_user=True)
        self._held = True
        self.settled.set()
        waiter.extend(time.monotonic() - began)

    def give_back(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._free.release()
        self.settled.set()
