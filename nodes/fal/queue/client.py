"""fal queue client: submit → wait → result, and cancel.

Works for any fal endpoint id, directly against fal (``Key`` auth), through a
gateway that re-exposes fal under its own base URL (``Bearer`` auth), or through
fal's server proxy (routing.py). A gateway's submit reply still names
``queue.fal.run`` URLs, where its token is not valid, so every status/result/
cancel URL whose host is not the configured base is re-routed through the base
with the same path; fal direct follows the URLs fal returns on its backup host there
(../wire/backup.py). How the wait itself goes (stream, status or result polling,
whichever the server offers) is wait_ways.py; what an answer means, job_state.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

import requests

from ..wire.config import FalConfig
from ..base.errors import (CancelledError, FalError, HTTPStatusError, JobFailedError, JobUnknownError,
                     StartDeadlineError, SubmitUncertainError, ValidationError, gateway_error)
from ..base.server_words import is_error_body, where_billed, words_of
from .job_state import CANCELLED, DONE, FAILED, JobState, from_result, from_result_refusal, is_status_body
from ..wire.routing import through_base
from ..wire.transport import Transport, json_body
from .wait_ways import NOT_OFFERED_CODES, JobWait, NotOffered, Progress, ProgressCallback, Reporter  # noqa: F401
from .way_memory import WayMemory
from ..base.waiting import CancelHook, Waiter

log = logging.getLogger("fal_qwen_edit")

ENDPOINT_ID = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
NO_CANCEL = "NOT_OFFERED"  # our name for a server without a cancel route (not one of fal's answers)
# fal's answers to a cancel (fal's queue docs: 202, 400, 404).
CANCEL_REQUESTED, ALREADY_COMPLETED, NOT_FOUND = "CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"
UNLESS_DROPPED_TIMEOUT = 15.0  # seconds for the one GET that tells a dropped job from a failed one
PAID_RESULT_TIMEOUT = 60.0  # seconds to wait for the result of a job that completed before its cancel


@dataclass
class RequestHandle:
    endpoint: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: Optional[int] = None


@dataclass
class WaitSettings:
    use_sse: bool = True
    poll_initial: float = 0.1   # first poll interval; grows so long jobs cost few requests
    poll_growth: float = 1.5
    poll_max: float = 0.5       # ≤ 2 status requests per second in the worst case
    stream_idle_check: float = 2.0  # a silent stream is double-checked with one status GET
    stream_reconnects: int = 2  # a stream that worked and then broke is reopened this often


def app_path(endpoint: str) -> str:
    """The queue path of an endpoint uses only its first two segments."""
    return "/".join(endpoint.split("/")[:2])


def check_endpoint(endpoint: str) -> str:
    endpoint = endpoint.strip().strip("/")
    if not ENDPOINT_ID.match(endpoint) or ".." in endpoint:
        raise FalError(f"Endpoint id {endpoint!r} is not valid: use the form 'owner/app' or "
                       "'owner/app/path', e.g. 'fal-ai/qwen-image-edit-plus'.")
    return endpoint


class QueueClient:
    def __init__(self, config: FalConfig, transport: Transport | None = None,
                 wait_settings: WaitSettings | None = None, ways: WayMemory | None = None):
        self.config = config
        self.transport = transport or Transport(config)
        self.settings = wait_settings or WaitSettings()
        self.ways = ways or WayMemory()
        # fal's X-Fal-Billable-Units of each result read, by request id: what the job was billed for
        # (the pipeline takes it into the job history and the ledger).
        self.billable_units: dict[str, float] = {}

    def handle_for(self, endpoint: str, request_id: str) -> RequestHandle:
        """A handle for a request id known from earlier (resume, result by id)."""
        endpoint = check_endpoint(endpoint)
        if not re.fullmatch(r"[A-Za-z0-9_-]{6,128}", request_id or ""):
            raise FalError(f"{request_id!r} does not look like a fal request id.")
        base = f"{self.config.queue_base}/{app_path(endpoint)}/requests/{quote(request_id)}"
        return RequestHandle(endpoint, request_id, base + "/status", base, base + "/cancel")

    def way_key(self, endpoint: str) -> str:
        """Which server and app a remembered way of waiting belongs to."""
        return f"{self.config.connection_id} {app_path(endpoint)}"

    # ---------------------------------------------------------------- calls
    def submit(self, endpoint: str, arguments: dict[str, Any], *, webhook_url: str | None = None,
               extra_headers: dict[str, str] | None = None, waiter: Waiter | None = None) -> RequestHandle:
        endpoint = check_endpoint(endpoint)
        url = f"{self.config.queue_base}/{endpoint}"
        params = {"fal_webhook": webhook_url} if webhook_url else None
        what = f"Submit to {endpoint}"
        # stream=True: the headers (with x-fal-request-id) are in hand before the body is read, so a
        # reply that breaks off mid-body still tells us which paid job exists.
        # The transport sends a submit only on a connection used moments ago, or a new one: a stale
        # keep-alive connection would fail after the POST went out ("maybe billed").
        resp = self.transport.request("POST", url, what=what, submit=True, json=arguments,
                                      params=params, headers=extra_headers, waiter=waiter, stream=True)
        header_id = resp.headers.get("x-fal-request-id")
        try:
            data = json.loads(resp.content)
            if self.config.mode == "gateway" and not header_id and is_error_body(data):
                # An error in the gateway's words at HTTP 200 ({"code": 402, "msg": "余额不足…"}), naming
                # no job: a refusal, not a lost answer (a "request_id" beside it is the gateway's log id).
                raise gateway_error(what, resp.status_code, words_of(data, ""), None, self.config.key_source,
                                    self.transport.host(), submit=True, detail=data, endpoint=endpoint)
            request_id = data["request_id"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            if header_id:
                log.warning("fal: the submit reply broke off (%s); continuing with request %s from its "
                            "header", type(exc).__name__, header_id)
                return self.handle_for(endpoint, header_id)
            raise SubmitUncertainError(
                f"{what}: the server accepted the submit but its reply was unreadable; the job may be "
                f"running and billed. Check {where_billed(self.config.mode, self.config.queue_base)} before "
                "running it again.") from None
        finally:
            resp.close()
        fallback = self.handle_for(endpoint, request_id)
        handle = RequestHandle(
            endpoint, request_id,
            status_url=self._ours(data.get("status_url") or fallback.status_url),
            response_url=self._ours(data.get("response_url") or fallback.response_url),
            cancel_url=self._ours(data.get("cancel_url") or fallback.cancel_url),
            queue_position=data.get("queue_position"))
        log.info("fal: submitted %s as request %s", endpoint, request_id)
        return handle

    def _ours(self, url: str) -> str:
        """A URL of the submit's reply as this client calls it: on fal's backup host it is followed
        there; any other host is re-rooted on the configured base (a gateway's reply names fal's)."""
        return url if self.config.on_backup(url) else through_base(url, self.config.queue_base)

    def status(self, handle: RequestHandle, *, logs: bool = True, waiter: Waiter | None = None) -> dict:
        """The status JSON. NotOffered when the server has no status route for it (404/405/501,
        or an answer that is not a status JSON): the result URL is then the way to wait."""
        what = f"Status of {handle.endpoint}"
        for attempt in range(3):
            try:
                resp = self.transport.request("GET", handle.status_url, what=what, waiter=waiter,
                                              request_id=handle.request_id,
                                              params={"logs": "1"} if logs else None)
            except HTTPStatusError as exc:
                if exc.status in NOT_OFFERED_CODES:
                    raise NotOffered(f"HTTP {exc.status}") from None
                raise
            try:
                body = json_body(resp, what, handle.request_id)
            except FalError:
                if "json" not in resp.headers.get("Content-Type", ""):
                    raise NotOffered(f"HTTP {resp.status_code} with {resp.headers.get('Content-Type')}") from None
                if attempt == 2:
                    raise
                (waiter or Waiter()).sleep(0.1 * (attempt + 1), handle.request_id)
                continue
            if not is_status_body(body):
                raise NotOffered("an answer without a status field")
            return body
        raise AssertionError("unreachable")

    def fetch_result(self, handle: RequestHandle, *, waiter: Waiter | None = None) -> JobState:
        """One GET of the result URL, read as a job state: done (with the outputs), still running
        (400 "in progress", 202, or a status JSON), failed or cancelled. A 404 means the server
        knows no such request (JobUnknownError). A 5xx from the front (502/503/504 after the
        transport's retries) says nothing about the job and is raised as a plain
        HTTPStatusError, so a journalled job is kept and can be fetched later, unpaid."""
        what = f"Result of {handle.endpoint}"
        try:
            resp = self.transport.request("GET", handle.response_url, what=what, waiter=waiter,
                                          request_id=handle.request_id)
        except ValidationError:
            raise
        except HTTPStatusError as exc:
            if exc.status == 404:
                raise JobUnknownError(
                    f"{what}: HTTP 404: this connection knows no request {handle.request_id} for "
                    f"{app_path(handle.endpoint)} (its result URL answers 404). Check the endpoint and the "
                    "connection it was submitted through.", status=404, request_id=handle.request_id,
                    detail=exc.detail) from None
            state = from_result_refusal(exc.status, exc.detail)
            if state is not None:
                return state
            if exc.status >= 500:
                raise HTTPStatusError(
                    f"{what}: the server answered HTTP {exc.status} after every retry; the job itself may be "
                    "fine. Fetch its result again later by its request id.", status=exc.status,
                    request_id=handle.request_id, detail=exc.detail) from None
            raise
        units = resp.headers.get("X-Fal-Billable-Units")
        with contextlib.suppress(TypeError, ValueError):
            if units is not None and resp.status_code == 200:
                self.billable_units[handle.request_id] = float(units)
        return from_result(resp.status_code, json_body(resp, what, handle.request_id))

    def result(self, handle: RequestHandle, *, waiter: Waiter | None = None) -> dict:
        """The output JSON of a job that its status called completed."""
        waiter = waiter or Waiter()
        for attempt in range(6):
            state = self.fetch_result(handle, waiter=waiter)
            if state.phase == DONE:
                return state.outputs
            self.raise_if_ended_badly(state, handle)
            if attempt < 5:  # the result may trail the status by a moment
                waiter.sleep(0.05 * (attempt + 1), handle.request_id)
        raise HTTPStatusError(f"Result of {handle.endpoint}: the server still calls the job running after "
                              "every retry; the job itself may be fine. Fetch its result again later by its "
                              "request id.", status=409, request_id=handle.request_id)

    @staticmethod
    def raise_if_ended_badly(state: JobState, handle: RequestHandle) -> None:
        if state.phase == FAILED:
            raise JobFailedError(f"The job failed on fal: {state.error}", request_id=handle.request_id)
        if state.phase == CANCELLED:
            raise CancelledError(f"The job was cancelled: {state.error}", request_id=handle.request_id)

    def cancel(self, handle: RequestHandle) -> str:
        """Ask fal to cancel; returns fal's answer: 202 CANCELLATION_REQUESTED (a queued job is
        removed, a running one signalled), 400 ALREADY_COMPLETED (it ran to its end: paid for),
        404 NOT_FOUND (fal knows no such request), or NOT_OFFERED from a server without a cancel
        route (a plain 404, 405 or 501).

        Sent on fresh connections: the pooled ones may lead to the server that just stalled."""
        try:
            resp = self.transport.request("PUT", handle.cancel_url, what=f"Cancel of {handle.endpoint}",
                                          request_id=handle.request_id, ok=(200, 202, 400, 404), fresh=True,
                                          waiter=Waiter(timeout=10.0), timeout=(5.0, 10.0))
        except HTTPStatusError as exc:
            if exc.status not in NOT_OFFERED_CODES:
                raise
            resp = None
        try:
            answer = str(resp.json().get("status", resp.status_code)) if resp is not None else NO_CANCEL
        except (ValueError, AttributeError):
            answer = f"HTTP {resp.status_code}"
        if resp is not None and resp.status_code == 404 and answer != NOT_FOUND:
            answer = NO_CANCEL  # a plain 404 names no answer: the route itself is missing
        if answer == NO_CANCEL:
            log.warning("fal: cancel of request %s: the server offers no cancel; the job may run to its end",
                        handle.request_id)
            return NO_CANCEL
        log.info("fal: cancel of request %s answered %s", handle.request_id, answer)
        return answer

    # ---------------------------------------------------------------- waiting
    def wait(self, handle: RequestHandle, *, on_progress: ProgressCallback = None,
             should_cancel: CancelHook = None, timeout: float | None = None,
             cancel_job: bool = True) -> dict:
        """Block until the job completes and return its result JSON.

        Cancel (``should_cancel`` returning True, checked every 250 ms) sends
        fal's cancel request (unless ``cancel_job`` is False: only the wait
        stops) and raises CancelledError; when fal answers ALREADY_COMPLETED the
        job is paid for, so its result is fetched and returned instead (the
        caller tells by its own cancel hook). A timeout raises FalTimeoutError and
        leaves the job alone: its result can still be fetched by request id. A job
        fal dropped at its start deadline raises StartDeadlineError.
        """
        waiter = Waiter(should_cancel, timeout)
        reporter = Reporter(handle, waiter, on_progress)
        job = JobWait(self, handle, waiter, reporter, self.ways, self.way_key(handle.endpoint))
        try:
            state = job.until_over()
            if state.phase == FAILED and state.status:
                self._unless_dropped(handle, waiter)
            self.raise_if_ended_badly(state, handle)
            return state.outputs if state.outputs is not None else self.result(handle, waiter=waiter)
        except CancelledError as exc:
            if not waiter.cancelled():
                exc.never_started = reporter.never_started()  # cancelled on fal's side (the panel, elsewhere)
                raise  # by_user stays False
            if not cancel_job:
                raise CancelledError("Stopped waiting; the job was left running on fal.",
                                     request_id=handle.request_id, by_user=True) from exc
            answer = self._cancel_quietly(handle)
            if answer == ALREADY_COMPLETED:
                return self._paid_result(handle, exc)
            if answer == NOT_FOUND:
                raise CancelledError(f"Cancelled by the user; fal answered {NOT_FOUND}: it knows no request "
                                     f"{handle.request_id} (any more), so nothing of it runs now.",
                                     request_id=handle.request_id, by_user=True, fal_answer=answer) from exc
            if answer == NO_CANCEL:
                raise CancelledError("Stopped waiting; the server offers no cancel, so the job may run to its "
                                     "end and be billed. Its result stays fetchable by its request id, and "
                                     "running the same edit again fetches it without a new job.",
                                     request_id=handle.request_id, by_user=True, fal_answer=answer) from exc
            if answer == CANCEL_REQUESTED and reporter.never_started():
                # fal removes a queued job that is cancelled, unrun and unbilled (fal's queue docs).
                raise CancelledError(
                    f"Cancelled by the user while the job was still in fal's queue; fal answered {answer}: it "
                    f"never started, so nothing ran and fal bills nothing{self._submit_billing_note()}.",
                    request_id=handle.request_id, by_user=True, fal_answer=answer, never_started=True) from exc
            raise CancelledError(f"Cancelled by the user; fal answered {answer} to the cancel request.",
                                 request_id=handle.request_id, by_user=True, fal_answer=answer) from exc

    def _submit_billing_note(self) -> str:
        """A gateway may bill a request when it is submitted, whatever fal does with it: said, not guessed."""
        if self.config.mode != "gateway":
            return ""
        return (" (the gateway may have billed the submit regardless: "
                f"{where_billed(self.config.mode, self.config.queue_base)} says)")

    def _unless_dropped(self, handle: RequestHandle, waiter: Waiter) -> None:
        """A status that calls the job failed may mean fal dropped it at its start deadline; only the
        result URL's 504 says so (with X-Fal-Request-Timeout-Type): one GET tells, and raises
        StartDeadlineError then. Any other answer leaves the status's word standing."""
        try:  # its own short deadline: the job is over, whatever is left of the edit's time
            self.fetch_result(handle, waiter=Waiter(waiter.should_cancel, UNLESS_DROPPED_TIMEOUT))
        except (StartDeadlineError, CancelledError):
            raise
        except FalError:
            pass

    def _paid_result(self, handle: RequestHandle, cancel: CancelledError) -> dict:
        """The job had completed when the cancel arrived (ALREADY_COMPLETED): it is paid for, so its
        result is fetched (unhindered by the Cancel, which is over) and returned, not dropped."""
        log.warning("fal: request %s had already completed when the cancel arrived; it is paid for, so its "
                    "result is fetched", handle.request_id)
        try:
            # Waited for, not just fetched: fal's answer may run a moment ahead of its result. No cancel hook.
            return self.wait(handle, timeout=PAID_RESULT_TIMEOUT)
        except JobFailedError:
            raise
        except FalError as exc:
            raise CancelledError(f"Cancelled by the user, but fal had already completed the job ({ALREADY_COMPLETED}: "
                                 f"it is paid for) and its result could not be fetched now ({exc}). It stays "
                                 "fetchable by its request id, and running the same edit again fetches it.",
                                 request_id=handle.request_id, by_user=True, fal_answer=ALREADY_COMPLETED) from cancel

    def _cancel_quietly(self, handle: RequestHandle) -> str:
        try:
            return self.cancel(handle)
        except FalError as exc:
            log.warning("fal: cancel of request %s failed: %s", handle.request_id, exc)
            return f"an error ({exc})"

    def close(self) -> None:
        self.transport.close()
