"""Fault injection: which request misbehaves, and the raw misbehaviours
(TCP reset, decompression-bomb PNG) that need more than a status code."""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

ROUTES = frozenset({"submit", "status", "stream", "result", "cancel",
                    "token", "upload", "initiate", "put_upload", "files"})
KINDS = frozenset({"status", "reset", "reset_after", "stall", "drop", "malformed",
                   "flap", "not_image", "bomb"})


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

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times


class FaultBook:
    """Faults in the order they were added; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def take(self, route: str) -> Fault | None:
        """The fault to apply to this request, if any.

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
            return None


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
