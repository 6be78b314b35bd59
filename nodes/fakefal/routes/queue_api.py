"""Queue routes: submit, status, result, cancel. (The SSE stream lives in
``handler.py`` because it writes to the socket as it goes.)"""

from __future__ import annotations

import json
import time

from ..schemas import validate
from .platform_api import billable_units
from ..wire import Reply, detail, json_reply

# How long a result or final status may wait for the edit thread. Outputs of
# tiny test images are ready in milliseconds; this only bounds a stuck thread.
READY_TIMEOUT = 60.0


def wants_logs(query: dict) -> bool:
    return str(query.get("logs", "")).lower() in ("1", "true", "yes")


START_DEADLINE_HEADER, START_DEADLINE_TYPE_HEADER = "X-Fal-Request-Timeout", "X-Fal-Request-Timeout-Type"
CANCEL_NOT_FOUND = json_reply(404, {"status": "NOT_FOUND", "detail": "Request not found"})


def guards_of(headers) -> dict | str:
    """fal's guard headers on a submit (fal's "common parameters" docs) as Job fields, or the
    error text of a bad one (fal: 400 ``bad_request``, "e.g., invalid timeout header")."""
    guards: dict = {}
    headers = {name.lower(): value for name, value in headers.items()}  # through the proxy: a plain dict
    deadline = headers.get(START_DEADLINE_HEADER.lower())
    if deadline is not None:
        try:
            guards["start_deadline"] = float(deadline)
        except ValueError:
            return f"Invalid {START_DEADLINE_HEADER} header"
        if not guards["start_deadline"] > 0.1:  # the docs' minimum
            return f"{START_DEADLINE_HEADER} must be more than 0.1 seconds"
    if str(headers.get("x-fal-store-io", "1")).strip().lower() in ("0", "false", "no"):
        guards["store_io"] = False
    priority = headers.get("x-fal-queue-priority")
    if priority is not None:
        if priority not in ("normal", "low"):
            return "X-Fal-Queue-Priority must be normal or low"
        guards["priority"] = priority
    return guards


def _held(fake, url: str) -> bytes | None:
    """An input's bytes when the fake holds them (a data URI, its own storage), else None: an outside URL
    is not fetched at the submit (the job's download fails later, as at fal)."""
    try:
        return fake._load_input(url)
    except (LookupError, ValueError):
        return None


def submit(fake, endpoint: str, body: bytes, headers=None) -> Reply:
    try:
        arguments = json.loads(body or b"null")
    except ValueError:
        return json_reply(422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON body",
                                            "type": "value_error.jsondecode"}]})
    errors = validate(endpoint, arguments, load=lambda url: _held(fake, url))
    if errors:
        return json_reply(422, {"detail": errors})
    guards = guards_of(headers or {})
    if isinstance(guards, str):
        return json_reply(400, {"detail": guards, "error_type": "bad_request"})
    job = fake._create_job(endpoint, arguments, guards)
    return json_reply(200, {"status": "IN_QUEUE", "request_id": job.request_id, **job.urls(),
                            "logs": None, "metrics": {},
                            "queue_position": job.position_at(job.submitted_at)},
                      headers={"x-fal-request-id": job.request_id})


def status(fake, job, query: dict) -> Reply:
    """fal's Inference API reference: 202 while IN_QUEUE / IN_PROGRESS, 200 once COMPLETED."""
    with fake._cond:
        job.status_calls += 1
    body, _, _ = fake._snapshot(job, wants_logs(query))
    return json_reply(200 if body["status"] == "COMPLETED" else 202, body)


def result(fake, job) -> Reply:
    with fake._cond:
        job.result_fetches += 1
        cancelled, done = job.cancelled, job.done(time.monotonic())
    task_style = fake.mode == "gateway_task"
    if cancelled:
        if task_style:
            return json_reply(200, {"status": "CANCELED", "request_id": job.request_id})
        return detail(400, "Request was cancelled")
    if not done:
        if task_style:  # the status JSON, as task-style gateways answer while a job runs
            body, _, _ = fake._snapshot(job, with_logs=True)
            return json_reply(fake.task_code, body)
        return detail(400, "Request is still in progress")
    if job.dropped:
        # Its start deadline passed in the queue: the request's answer is fal's 504 with
        # X-Fal-Request-Timeout-Type: user (fal's "common parameters" docs), gateways relaying it.
        return json_reply(504, {"detail": "Request timed out before it started", "error_type": "startup_timeout"},
                          headers={START_DEADLINE_TYPE_HEADER: "user", "x-fal-request-id": job.request_id,
                                   "X-Fal-Error-Type": "startup_timeout"})
    job.ready.wait(READY_TIMEOUT)
    error = job.error if job.error is not None else (
        None if job.result is not None else "Internal error: outputs not ready")
    if error is not None:
        if task_style:
            return json_reply(200, {"status": "FAILED", "error": error, "request_id": job.request_id})
        return json_reply(500, {"detail": error, "error_type": "job_failed"})
    unit = fake.price_units.get(job.endpoint, "megapixels")
    units = {"X-Fal-Billable-Units": str(billable_units(job.result, unit))} if fake.billable_units else {}
    return json_reply(200, job.result, units)


def cancel(fake, job) -> Reply:
    now = time.monotonic()
    with fake._cond:
        if job.cancelled or job.done(now):
            return json_reply(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        job.cancelled_at = now
        job.completed_at = now      # COMPLETED (with the cancel error) from this moment
        job.version += 1
        fake._cond.notify_all()     # wake SSE writers waiting for the old schedule
    return json_reply(202, {"status": "CANCELLATION_REQUESTED"})
