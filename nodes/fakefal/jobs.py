"""One queued request and its time-based life.

A job never "runs": its whole timeline (queue positions, log lines,
completion) is fixed at submit time from the server's latency settings, and
every status answer is computed from ``time.monotonic()``. That keeps the fake
deterministic, lets SSE wait for the exact instant of the next change, and
lets tests compare arrival times with ``job.completed_at``.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field
from typing import Any

from .schemas import schema_for


START_DEADLINE_TEXT = "Request timed out before it started (X-Fal-Request-Timeout)"


def iso8601(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, tz=datetime.timezone.utc).isoformat()


@dataclass(eq=False)
class Job:
    request_id: str
    endpoint: str
    app: str                      # "owner/app": the queue path uses only these two segments
    arguments: dict
    submitted_at: float           # time.monotonic() at submit
    submitted_wall: float         # time.time() at submit, only to stamp log lines
    queue_time: float
    run_time: float
    queue_positions: int
    log_lines: tuple
    queue_base: str               # host the returned URLs name (srv.url or https://queue.fal.run)
    nsfw: bool = False
    fail_text: str | None = None
    size_rule: str = "per input"  # see FakeFal.size_rule
    # fal's guards, from the submit's headers: X-Fal-Request-Timeout (seconds to start), X-Fal-Store-IO, priority.
    start_deadline: float | None = None
    store_io: bool = True
    priority: str = "normal"
    cancelled: bool = False
    cancelled_at: float | None = None
    result_fetches: int = 0
    status_calls: int = 0
    stream_calls: int = 0
    result: dict | None = None    # filled by the edit thread
    error: str | None = None      # set by the edit thread when the job fails
    ready: threading.Event = field(default_factory=threading.Event)
    # Bumped on cancel so SSE writers blocked on the server condition notice a
    # change that is not on the precomputed schedule.
    version: int = 0

    def __post_init__(self) -> None:
        self.started_at = self.submitted_at + self.queue_time
        # Scheduled completion; a cancel moves it to the cancel instant.
        self.completed_at = self.started_at + self.run_time
        if self.start_deadline is not None and self.dropped:  # dropped needs a deadline; said for the checker
            # Past its start deadline in the queue, fal drops it: it never starts, and its outcome
            # (nothing ran) is known at once. The deadline passes at submit + X-Fal-Request-Timeout.
            self.started_at = self.completed_at = self.submitted_at + self.start_deadline
            self.log_lines = ()
            self.ready.set()
        n = self.queue_positions
        step = self.queue_time / n if n > 0 and self.queue_time > 0 else 0.0
        # Positions and logs are derived by counting these precomputed instants,
        # so a waiter that wakes exactly at one always sees the change (no
        # floating-point disagreement between "when" and "what").
        self._queue_steps = [self.submitted_at + i * step for i in range(1, n)] if step else []
        count = len(self.log_lines)
        self._log_times = [self.started_at + i * self.run_time / count for i in range(count)]

    @property
    def size_budget(self) -> tuple[int, int] | None:
        """The endpoint's stated output pixels (schemas.py), where fal derives the size within them."""
        return schema_for(self.endpoint).output_pixels

    @property
    def dropped(self) -> bool:
        """Whether fal drops it before it starts: its queue wait is longer than its start deadline."""
        return self.start_deadline is not None and self.queue_time > self.start_deadline

    def ran(self, t: float) -> bool:
        """Whether a runner had started it by ``t`` (what fal bills: a dropped job never runs)."""
        if self.dropped or t < self.started_at:
            return False
        return not (self.cancelled and self.cancelled_at is not None and self.cancelled_at < self.started_at)

    # -- URLs -----------------------------------------------------------------
    @property
    def response_url(self) -> str:
        return f"{self.queue_base}/{self.app}/requests/{self.request_id}"

    def urls(self) -> dict:
        base = self.response_url
        return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}

    # -- timeline -------------------------------------------------------------
    def done(self, t: float) -> bool:
        return t >= self.completed_at

    def position_at(self, t: float) -> int:
        if self.queue_positions <= 0 or self.queue_time <= 0:
            return 0
        passed = sum(1 for s in self._queue_steps if s <= t)
        return max(0, self.queue_positions - 1 - passed)

    def logs_at(self, t: float) -> list[dict]:
        limit = min(t, self.completed_at)
        return [
            {"message": line, "level": "INFO", "source": "user",
             "timestamp": iso8601(self.submitted_wall + (lt - self.submitted_at))}
            for line, lt in zip(self.log_lines, self._log_times) if lt <= limit
        ]

    def next_change_after(self, t: float) -> float | None:
        """The next instant at which the status changes, or None once done."""
        if self.done(t):
            return None
        later = [c for c in self._queue_steps + self._log_times if t < c < self.completed_at]
        return min(later, default=self.completed_at)

    def status(self, t: float, with_logs: bool) -> dict[str, Any]:
        """The status body at time ``t``. For a done, uncancelled job the
        caller must have waited on ``ready`` so ``error`` is known."""
        logs = self.logs_at(t) if with_logs else None
        body: dict[str, Any] = {"request_id": self.request_id, **self.urls()}
        if not self.done(t):
            if t < self.started_at:
                return {"status": "IN_QUEUE", "queue_position": self.position_at(t), "logs": logs, **body}
            return {"status": "IN_PROGRESS", "logs": logs, **body}
        body = {"status": "COMPLETED", "logs": logs, **body}
        if self.cancelled:
            body.update(metrics={}, error="Request was cancelled", error_type="request_cancelled")
            return body
        if self.dropped:  # fal's words for it are UNCONFIRMED; its result URL answers the 504 (queue_api.py)
            body.update(metrics={}, error=START_DEADLINE_TEXT, error_type="startup_timeout")
            return body
        body["metrics"] = {"inference_time": self.run_time}
        if self.error is not None:
            body.update(error=self.error, error_type="job_failed")
        elif not self.ready.is_set():
            body.update(error="Internal error: outputs not ready", error_type="job_failed")
        return body
