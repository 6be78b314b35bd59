"""Where an edit's time goes: an optional hook that times its phases, for the bench (bench/speed.py).

Off by default: ``phase(name)`` then hands back one shared do-nothing context, so the pipeline pays
a global read and a call per phase, nothing more. ``listen(sink)`` turns it on for the whole process:
every phase, on whichever thread runs it (inputs are resized, encoded and uploaded on worker threads),
calls ``sink(name, start, end)`` with its ``time.perf_counter()`` span. Meant for edits run one at a
time; the sink sorts out overlapping spans (the bench counts each moment once).

Phases (``PHASES``, in the order a moment is attributed when several run at once): decode, download,
encode, resize (the uint8 conversion, the downscale and the pixel hash), body and fingerprint, data
URI or upload, submit, wait. Anything else on the way is bookkeeping: validation, the journal, the
result cache, the history, the spending ledger (``bookkeeping: …`` spans name the larger parts).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Callable, ContextManager

Sink = Callable[[str, float, float], None]

PHASES = ("decode", "download", "encode", "resize", "body and fingerprint", "data URI or upload", "submit",
          "wait")

_sink: Sink | None = None
_OFF = nullcontext()


def listen(sink: Sink | None) -> None:
    """Send every phase's span to ``sink`` from now on; None turns the timing off again."""
    global _sink
    _sink = sink


class _Span:
    __slots__ = ("name", "sink", "start")

    def __init__(self, name: str, sink: Sink):
        self.name, self.sink, self.start = name, sink, 0.0

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.sink(self.name, self.start, time.perf_counter())


def phase(name: str) -> ContextManager[None]:
    sink = _sink
    return _OFF if sink is None else _Span(name, sink)
