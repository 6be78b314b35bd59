"""What a status or result answer says about a job: queued, running, done, failed or cancelled.

One reading for every server shape, so that the ways of waiting (wait_ways.py)
agree on what an answer means:

* fal's ``/status``: 202 while ``IN_QUEUE`` / ``IN_PROGRESS``, 200 once
  ``COMPLETED`` (fal's Inference API reference); a failed run is ``COMPLETED``
  with ``error`` / ``error_type``.
* fal's result URL: 200 with the outputs; 400 "Request is still in progress"
  while the job runs; 400/500 with the job's error as ``detail``.
* task-style gateways: the result URL answers 202 (or 200) with the status JSON
  (``{"status": "IN_QUEUE", "queue_position": …}``) while the job runs, and
  some status schemas name ``FAILED`` / ``ERROR`` / ``CANCELED`` besides fal's
  three states (see ../shared/FAL_PROTOCOL.md §1b).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"

STATUS_NAMES = {
    "IN_QUEUE": QUEUED, "QUEUED": QUEUED, "PENDING": QUEUED,
    "IN_PROGRESS": RUNNING, "RUNNING": RUNNING, "PROCESSING": RUNNING,
    "COMPLETED": DONE, "SUCCEEDED": DONE, "SUCCESS": DONE,
    "FAILED": FAILED, "ERROR": FAILED,
    "CANCELED": CANCELLED, "CANCELLED": CANCELLED,
}
# Keys of a status answer; anything else in a result body is the endpoint's output.
STATUS_KEYS = frozenset({"status", "request_id", "queue_position", "logs", "metrics", "response_url",
                         "status_url", "cancel_url", "error", "error_type", "detail"})
RUNNING_WORDS = ("progress", "in queue", "queued", "not completed", "not ready", "pending")


@dataclass
class JobState:
    phase: str                       # QUEUED, RUNNING, DONE, FAILED or CANCELLED
    status: dict[str, Any]           # the status JSON as received (queue position, logs) or {}
    outputs: dict[str, Any] | None = None  # the endpoint's output, when this answer carried it
    error: str | None = None         # the server's words for a failed or cancelled job

    @property
    def over(self) -> bool:
        return self.phase in (DONE, FAILED, CANCELLED)

    @property
    def fal_status(self) -> str:
        """The status name for progress displays (fal's names where the server used others)."""
        named = self.status.get("status")
        if isinstance(named, str) and named:
            return named.upper()
        return {QUEUED: "IN_QUEUE", RUNNING: "IN_PROGRESS"}.get(self.phase, "COMPLETED")


def is_status_body(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("status"), str)


def from_status(body: dict[str, Any]) -> JobState:
    """A status answer (``/status``, an SSE event, or a status JSON on the result URL)."""
    name = str(body.get("status", "")).upper()
    phase = STATUS_NAMES.get(name, RUNNING)  # an unknown state name: keep waiting, the deadline still holds
    error = body.get("error")
    if error not in (None, "", [], {}) and phase in (DONE, RUNNING, QUEUED):
        phase = CANCELLED if body.get("error_type") == "request_cancelled" else FAILED
    if phase == FAILED and error in (None, "", [], {}):
        error = body.get("detail") or f"the server reported {name}"
    if phase == CANCELLED and error in (None, "", [], {}):
        error = f"the server reported {name}"
    return JobState(phase, body, error=None if error is None else text(error))


def from_result(code: int, body: Any) -> JobState:
    """A successful (2xx) answer of the result URL: outputs, or the status of a job still running."""
    if isinstance(body, dict):
        outputs = {k: v for k, v in body.items() if k not in STATUS_KEYS}
        if is_status_body(body) and not outputs:
            state = from_status(body)
            if state.phase == DONE:
                state.phase = RUNNING  # "COMPLETED" but no outputs yet: the next answer will carry them
            return state
        if not outputs and body.get("error") not in (None, "", [], {}):
            return from_status({"status": "FAILED", **body})
    if code == 202:
        return JobState(RUNNING, body if isinstance(body, dict) else {})
    return JobState(DONE, {}, outputs=body if isinstance(body, dict) else {"output": body})


def from_result_refusal(code: int, detail: Any) -> JobState | None:
    """A 400/500 of the result URL that speaks about the job itself, or None when it does not."""
    words = text(detail).lower()
    if code == 400 and any(word in words for word in RUNNING_WORDS):
        return JobState(RUNNING, detail if is_status_body(detail) else {})
    if is_status_body(detail):
        return from_status(detail)
    if code in (400, 500) and detail not in (None, "", [], {}):
        phase = CANCELLED if "cancel" in words else FAILED
        return JobState(phase, {}, error=text(detail))
    return None


def text(detail: Any) -> str:
    if isinstance(detail, (dict, list)):
        return json.dumps(detail, ensure_ascii=False)[:500]  # a server's words as written, not \uXXXX escapes
    return str(detail)
