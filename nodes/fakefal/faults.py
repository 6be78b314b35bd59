"""Fault injection: which request misbehaves, and the raw misbehaviours
(TCP reset, decompression-bomb PNG) that need more than a status code."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

ROUTES = frozenset({"submit", "status", "stream", "result", "cancel",
                    "token", "upload", "initiate", "put_upload", "files", "platform_requests"})
KINDS = frozenset({"status", "reset", "reset_after", "stall", "drop", "malformed",
                   "flap", "not_image", "bomb", "hang", "hang_after"})
# "hang_after": serve the request (a submit makes its job) and hold the answer ``delay`` seconds:
# a client killed meanwhile leaves a job fal took and an answer it never read.
# "hang": hold the request ``delay`` seconds before anything is sent back, then serve it
# normally. Unlike "stall" it works on every route, the SSE stream included (a stream whose
# response headers never come). It is applied inside FaultBook.take, so the handler needs
# no special case; Fault.release() or FaultBook.stop_event ends it early.
_HANG_STEP = 0.05


@dataclass(eq=False)
class Fault:
    route: str
    kind: str
    code: int | None = None
    times: int | None = 1          # None: forever
    skip: int = 0                  # let this many matching requests through first
    headers: dict | None = None
    body: Any = None
    delay: float = 0.0
    fired: int = field(default=0, init=False)   # how often it has been applied

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"unknown fault route {self.route!r}; one of {sorted(ROUTES)}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.kind == "status" and self.code is None:
            raise ValueError('a "status" fault needs a code')
        # Private counters so the caller's settings stay readable afterwards.
        self._skip_left = self.skip
        self._flap_fails_next = True
        self._released = threading.Event()

    def release(self) -> None:
        """End every current and future hang of this fault at once (test teardown)."""
        self._released.set()

    def hold(self, stop: threading.Event | None) -> None:
        """Block for ``delay`` unless released or the server stops first."""
        deadline = time.monotonic() + self.delay
        while not self._released.is_set() and not (stop is not None and stop.is_set()):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._released.wait(min(left, _HANG_STEP))

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultBook:
    """Faults in the order they were added, plus optional random "chaos"; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        self._chaos: tuple[float, list[Fault], random.Random] | None = None
        self.chaos_fired: list[tuple[str, str, int | None]] = []  # (route, kind, code) applied at random
        # The server's stop event, when it hands it over: cuts "hang" faults short on stop().
        self.stop_event: threading.Event | None = None

    def set_chaos(self, probability: float, templates: list[Fault], seed: int = 0) -> None:
        """From now on each request gets, with ``probability``, a copy of a random template
        for its route (soak tests: faults nobody scheduled)."""
        with self._lock:
            self._chaos = (probability, list(templates), random.Random(seed)) if probability > 0 else None

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def take(self, route: str) -> Fault | None:
        """The fault to apply to this request, if any (a "hang" has been served when this returns)."""
        fault = self._pick(route)
        if fault is not None and fault.kind == "hang":
            fault.hold(self.stop_event)  # outside the lock: other requests go on meanwhile
        return fault

    def release(self) -> None:
        """End every hang now and from now on (test teardown)."""
        with self._lock:
            faults = list(self.faults)
        for fault in faults:
            fault.release()

    def _pick(self, route: str) -> Fault | None:
        """The fault that takes this request, if any.

        Each live fault for the route sees the request in turn: one still
        skipping counts it and passes it on; the first armed one takes it.
        A flap fault takes every other request (counting only the failures
        against ``times``) and lets the ones in between through untouched.
        """
        with self._lock:
            for fault in self.faults:
                if fault.route != route or fault.spent:
                    continue
                if fault._skip_left > 0:
                    fault._skip_left -= 1
                    continue
                if fault.kind == "flap":
                    fails = fault._flap_fails_next
                    fault._flap_fails_next = not fails
                    if not fails:
                        return None
                fault.fired += 1
                return fault
            return self._chaos_for(route)

    def _chaos_for(self, route: str) -> Fault | None:
        if self._chaos is None:
            return None
        probability, templates, rng = self._chaos
        candidates = [t for t in templates if t.route == route]
        if not candidates or rng.random() >= probability:
            return None
        template = rng.choice(candidates)
        self.chaos_fired.append((template.route, template.kind, template.code))
        fault = Fault(template.route, template.kind, template.code, 1, 0, template.headers, template.body,
                      template.delay)
        fault._flap_fails_next = True
        fault.fired = 1
        return fault


def hard_reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0, so the peer gets an RST rather than a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = 40000, rows: int = 4) -> bytes:
    """A ~300-byte PNG whose header claims side x side RGB pixels.

    Only a few zero rows are actually present: enough for the header to look
    real, while anything that tries to decode it in full would need ~4.8 GB.
    """
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    raw = b"\x00" * ((1 + 3 * side) * rows)                    # filter byte 0 + zero pixels
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b""))


BOMB_PNG = bomb_png()
MALFORMED_JSON = b'{"status": '
NOT_IMAGE_HTML = b"<html>not an image</html>"
