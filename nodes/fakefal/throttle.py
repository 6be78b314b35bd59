"""A token bucket: the fake's stand-in for a home uplink or downlink.

Every byte the fake reads from a request body (the uplink) or writes in a
reply body (the downlink) first takes a token; tokens come back at ``rate``
bytes per second, shared by all connections, as one physical link is. The
server reads in small pieces and keeps its socket's receive buffer small, so
a client sending faster than the rate finds its own socket full and waits:
real TCP backpressure, not a pause added after the fact.
"""

from __future__ import annotations

import threading
import time

PIECE = 16 * 1024          # bytes read or written per token grant
RECEIVE_BUFFER = 64 * 1024  # SO_RCVBUF of a throttled connection
# Tokens kept while nobody takes them: two pieces, so the time a reader's sleep overshoots (a fraction of a
# millisecond, every piece) counts toward the next piece, as on a real link that never stopped. With one
# piece the overshoot was lost each time: 5.11 MB at 20 Mbit/s took 2.15 s instead of 2.04 s.
BURST = 2 * PIECE


class TokenBucket:
    def __init__(self, megabits_per_second: float, burst: int = BURST):
        self.rate = megabits_per_second * 1e6 / 8  # bytes per second
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, count: int, stop: threading.Event | None = None) -> None:
        """Block until ``count`` bytes may pass (``count`` ≤ burst keeps the link smooth)."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= count:
                    self._tokens -= count
                    return
                wait = (count - self._tokens) / self.rate
            if stop is not None and stop.wait(wait):
                return
            if stop is None:
                time.sleep(wait)

    def give_back(self, count: int) -> None:
        """Return tokens taken for bytes that did not pass (a read that found fewer in the socket)."""
        if count > 0:
            with self._lock:
                self._tokens = min(self.burst, self._tokens + count)
