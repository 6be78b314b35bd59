"""Per-phase breakdown of one edit from the pipeline's optional timing hook (nodes/fal/base/phases.py).

The pack's phases run on several threads at once (three inputs are resized, encoded and uploaded
side by side), so their spans overlap. Each moment of the edit is counted once: for the first phase
in ``PHASES`` some thread was in then; a moment in none of them is bookkeeping (validation, journal,
result cache, history, ledger), split by the ``bookkeeping: …`` spans, the rest of it "other".
The phases then add up to the edit's wall time.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
from typing import Iterator

from comfyui_fal_qwen_edit.nodes.fal.base import phases

PHASES = phases.PHASES
Interval = tuple[float, float]


def _merged(intervals: list[Interval]) -> list[Interval]:
    out: list[list[float]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


def _length(merged: list[Interval]) -> float:
    return sum(b - a for a, b in merged)


def _overlap(a: list[Interval], b: list[Interval]) -> float:
    """Total length of the intersection of two merged interval lists."""
    i = j = 0
    total = 0.0
    while i < len(a) and j < len(b):
        low, high = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if high > low:
            total += high - low
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def attribute(spans: list[tuple[str, float, float]], start: float, end: float) -> dict[str, float]:
    """Seconds per phase within [start, end], each moment counted once (see the module's docstring)."""
    clipped: dict[str, list[Interval]] = {}
    for name, a, b in spans:
        a, b = max(a, start), min(b, end)
        if b > a:
            clipped.setdefault(name, []).append((a, b))
    order = list(PHASES) + sorted(name for name in clipped if name not in PHASES)
    covered: list[Interval] = []
    out: dict[str, float] = {}
    for name in order:
        mine = _merged(clipped.get(name, []))
        out[name] = _length(mine) - _overlap(mine, covered)
        covered = _merged(covered + mine)
    out["bookkeeping: other"] = (end - start) - _length(covered)
    out["bookkeeping"] = sum(v for k, v in out.items() if k.startswith("bookkeeping:"))
    return out


class PhaseClock:
    """Collects the pipeline's spans while ``on()`` is active; one edit at a time."""

    def __init__(self) -> None:
        self._spans: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def __call__(self, name: str, start: float, end: float) -> None:
        with self._lock:
            self._spans.append((name, start, end))

    def take(self) -> list[tuple[str, float, float]]:
        with self._lock:
            spans, self._spans = self._spans, []
        return spans

    @contextlib.contextmanager
    def on(self) -> Iterator["PhaseClock"]:
        phases.listen(self)
        try:
            yield self
        finally:
            phases.listen(None)


def columns() -> list[str]:
    """The breakdown's columns in print order."""
    return ["resize", "encode", "data URI or upload", "body and fingerprint", "submit", "wait", "download",
            "decode", "bookkeeping"]


def add_rows(report, section: str, client: str, rows: list[dict[str, float]], run_time: float) -> None:
    """One figure per phase (ms; "wait" beyond the job's own run time), bookkeeping's parts in its note."""
    for name in columns():
        values = [row.get(name, 0.0) - (run_time if name == "wait" else 0.0) for row in rows]
        note = ""
        if name == "bookkeeping":
            detail = sorted({k for row in rows for k in row if k.startswith("bookkeeping:")})
            note = ", ".join(f"{k.split(': ', 1)[1]} {statistics.median(r.get(k, 0.0) for r in rows) * 1e3:.1f}"
                             for k in detail) + " ms (medians)"
        label = f"wait beyond the job's {run_time:g} s" if name == "wait" else name
        report.add(section, f"phases {client}: {label}", "ms", values, scale=1e3, note=note)
