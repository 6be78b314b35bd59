"""What the batch shows while it runs, and its summary at the end.

On a terminal: one bar redrawn in place (items done / failed / running, spend so
far, rate, ETA) with failures and notices printed above it. Anywhere else (a log
file, CI): plain lines, one per item as it ends (with its request id, so a paid
job can be found from the log alone) and a progress line every 30 s. Both go to
stderr; the summary's JSON goes to stdout.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from .results import CANCELLED, DONE, FAILED

PLAIN_EVERY = 30.0   # seconds between progress lines when not on a terminal
REDRAW_EVERY = 0.2   # the bar's fastest redraw


@dataclass
class Tally:
    """This run's counts; updated by the scheduler under its lock."""

    total: int                      # items this run set out to run
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0                # submitted (or resumed) and not ended yet
    cost_usd: float = 0.0           # estimates of the jobs this run submitted and saw end
    started: float = field(default_factory=time.monotonic)

    @property
    def ended(self) -> int:
        return self.done + self.failed + self.cancelled

    def rate_per_min(self) -> float | None:
        elapsed = time.monotonic() - self.started
        return self.ended / elapsed * 60 if self.ended and elapsed > 0 else None

    def eta_s(self) -> float | None:
        rate = self.rate_per_min()
        return (self.total - self.ended) / rate * 60 if rate else None

    def line(self) -> str:
        rate, eta = self.rate_per_min(), self.eta_s()
        parts = [f"{self.ended}/{self.total}", f"done {self.done}", f"failed {self.failed}",
                 f"running {self.running}", f"${self.cost_usd:.2f}"]
        if self.cancelled:
            parts.insert(3, f"cancelled {self.cancelled}")
        if rate is not None:
            parts += [f"{rate:.1f}/min", f"ETA {_clock(eta)}"]
        return "  ".join(parts)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def item_line(tally: Tally, record: dict[str, Any]) -> str:
    where = f"[{tally.ended:>{len(str(tally.total))}}/{tally.total}] {record['status']:<9} " \
            f"line {record['line']} {record['name']}"
    request = f"  request {record['request_id']}" if record.get("request_id") else ""
    if record["status"] == DONE:
        cost = record.get("cost_usd", 0)
        shown = "price unknown" if cost is None else f"${cost:.3f}"
        return f"{where}{request}  {shown}  {', '.join(record.get('files', []))}"
    return f"{where}{request}: {record.get('error', '')}"


class Display:
    """Plain lines (not a terminal); see TerminalBar for the bar."""

    def __init__(self, tally: Tally, stream: IO[str]):
        self.tally, self.stream = tally, stream
        self._lock = threading.Lock()
        self._last = time.monotonic()

    @staticmethod
    def for_stream(tally: Tally, stream: IO[str] | None = None) -> "Display":
        stream = stream or sys.stderr
        return TerminalBar(tally, stream) if getattr(stream, "isatty", lambda: False)() else Display(tally, stream)

    def note(self, text: str) -> None:
        with self._lock:
            self._write(text + "\n")

    def ended(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._write(item_line(self.tally, record) + "\n")

    def tick(self) -> None:
        if time.monotonic() - self._last >= PLAIN_EVERY:
            with self._lock:
                self._write(f"progress: {self.tally.line()}\n")

    def close(self) -> None:
        pass

    def _write(self, text: str) -> None:
        self._last = time.monotonic()
        self.stream.write(text)
        self.stream.flush()


class TerminalBar(Display):
    def __init__(self, tally: Tally, stream: IO[str]):
        super().__init__(tally, stream)
        self._drawn = 0.0

    def note(self, text: str) -> None:
        with self._lock:
            self._write("\r\x1b[K" + text + "\n")
            self._draw()

    def ended(self, record: dict[str, Any]) -> None:
        with self._lock:
            if record["status"] in (FAILED, CANCELLED):
                self._write("\r\x1b[K" + item_line(self.tally, record) + "\n")
            self._draw()

    def tick(self) -> None:
        with self._lock:
            self._draw()

    def close(self) -> None:
        with self._lock:
            self._draw(force=True)
            self._write("\n")

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < REDRAW_EVERY:
            return
        self._drawn = now
        text = self.tally.line()
        width = shutil.get_terminal_size((100, 20)).columns
        room = max(10, min(40, width - len(text) - 4))
        filled = room * self.tally.ended // self.tally.total if self.tally.total else room
        self._write(f"\r\x1b[K[{'#' * filled}{'-' * (room - filled)}] {text}"[:width + 8])
