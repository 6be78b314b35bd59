"""fal queue client: submit → wait (SSE, else polling) → result, and cancel.

Works for any fal endpoint id, directly against fal (``Key`` auth) or through a
gateway that re-exposes fal under its own base URL (``Bearer`` auth). A
gateway's submit reply still names ``queue.fal.run`` URLs, where its token is
not valid, so every status/result/cancel URL whose host is not the configured
base is re-routed through the base with the same path.
"""

from __future__ import annotations

import json
import logging
import queue as queue_module
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import quote, urlsplit

import requests

from .config import FalConfig, _origin
from .errors import (CancelledError, FalError, HTTPStatusError, JobFailedError, SubmitUncertainError,
                     ValidationError)
from .sse import EventStream
from .transport import Transport, json_body
from .waiting import CHECK_INTERVAL, CancelHook, Waiter

log = logging.getLogger("fal_qwen_edit")

ENDPOINT_ID = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


@dataclass
class RequestHandle:
    endpoint: str
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: Optional[int] = None


@dataclass
class Progress:
    """One update while waiting; ``new_logs`` holds only lines not reported before."""

    request_id: str
    status: str
    elapsed: float
    queue_position: Optional[int] = None
    new_logs: list[str] = field(default_factory=list)
    via: str = "sse"  # "sse" or "poll"


ProgressCallback = Optional[Callable[[Progress], None]]


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
                 wait_settings: WaitSettings | None = None):
        self.config = config
        self.transport = transport or Transport(config)
        self.settings = wait_settings or WaitSettings()

    # ---------------------------------------------------------------- routing
    def _route(self, url: str) -> str:
        base = self.config.queue_base
        if _origin(url) == _origin(base) and url.startswith(base):
            return url
        parts = urlsplit(url)
        return base + parts.path + (f"?{parts.query}" if parts.query else "")

    def handle_for(self, endpoint: str, request_id: str) -> RequestHandle:
        """A handle for a request id known from earlier (resume, result by id)."""
        endpoint = check_endpoint(endpoint)
        if not re.fullmatch(r"[A-Za-z0-9_-]{6,128}", request_id or ""):
            raise FalError(f"{request_id!r} does not look like a fal request id.")
        base = f"{self.config.queue_base}/{app_path(endpoint)}/requests/{quote(request_id)}"
        return RequestHandle(endpoint, request_id, base + "/status", base, base + "/cancel")

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
            request_id = data["request_id"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            if header_id:
                log.warning("fal: the submit reply broke off (%s); continuing with request %s from its "
                            "header", type(exc).__name__, header_id)
                return self.handle_for(endpoint, header_id)
            raise SubmitUncertainError(
                f"{what}: the server accepted the submit but its reply was unreadable; the job may be "
                "running and billed. Check your fal dashboard before running it again.") from None
        finally:
            resp.close()
        fallback = self.handle_for(endpoint, request_id)
        handle = RequestHandle(
            endpoint, request_id,
            status_url=self._route(data.get("status_url") or fallback.status_url),
            response_url=self._route(data.get("response_url") or fallback.response_url),
            cancel_url=self._route(data.get("cancel_url") or fallback.cancel_url),
            queue_position=data.get("queue_position"))
        log.info("fal: submitted %s as request %s", endpoint, request_id)
        return handle

    def status(self, handle: RequestHandle, *, logs: bool = True, waiter: Waiter | None = None) -> dict:
        what = f"Status of {handle.endpoint}"
        for attempt in range(3):
            resp = self.transport.request("GET", handle.status_url, what=what, waiter=waiter,
                                          request_id=handle.request_id,
                                          params={"logs": "1"} if logs else None)
            try:
                return json_body(resp, what, handle.request_id)
            except FalError:
                if attempt == 2:
                    raise
                (waiter or Waiter()).sleep(0.1 * (attempt + 1), handle.request_id)
        raise AssertionError("unreachable")

    def result(self, handle: RequestHandle, *, waiter: Waiter | None = None) -> dict:
        """The job's output JSON. Only an answer that carries the job's own error (400/500 with a
        detail, 422) means the job failed: a 5xx from fal's front (502/503/504 after the
        transport's retries) or a job still running says nothing about it, and is raised as a
        plain HTTPStatusError, so a journalled job is kept and can be fetched later, unpaid."""
        what = f"Result of {handle.endpoint}"
        waiter = waiter or Waiter()
        for attempt in range(6):
            try:
                resp = self.transport.request("GET", handle.response_url, what=what, waiter=waiter,
                                              request_id=handle.request_id)
                return json_body(resp, what, handle.request_id)
            except ValidationError:
                raise
            except HTTPStatusError as exc:
                still_running = exc.status == 400 and "progress" in str(exc.detail).lower()
                if still_running and attempt < 5:
                    waiter.sleep(0.05 * (attempt + 1), handle.request_id)
                    continue
                if exc.status in (400, 500) and exc.detail not in (None, "", [], {}) and not still_running:
                    if "cancel" in str(exc.detail).lower():
                        raise CancelledError(f"The job was cancelled: {_text(exc.detail)}",
                                             request_id=handle.request_id) from None
                    raise JobFailedError(f"The job failed on fal: {_text(exc.detail)}",
                                         request_id=handle.request_id) from None
                if exc.status >= 500 or still_running:
                    state = "is still running" if still_running else f"answered HTTP {exc.status}"
                    raise HTTPStatusError(
                        f"{what}: fal {state} after every retry; the job itself may be fine. Fetch its "
                        "result again later by its request id.", status=exc.status,
                        request_id=handle.request_id, detail=exc.detail) from None
                raise
        raise AssertionError("unreachable")

    def cancel(self, handle: RequestHandle) -> str:
        """Ask fal to cancel; returns fal's answer (CANCELLATION_REQUESTED, ALREADY_COMPLETED…).

        Sent on fresh connections: the pooled ones may lead to the server that just stalled."""
        resp = self.transport.request("PUT", handle.cancel_url, what=f"Cancel of {handle.endpoint}",
                                      request_id=handle.request_id, ok=(200, 202, 400), fresh=True,
                                      waiter=Waiter(timeout=10.0), timeout=(5.0, 10.0))
        try:
            answer = str(resp.json().get("status", resp.status_code))
        except (ValueError, AttributeError):
            answer = f"HTTP {resp.status_code}"
        log.info("fal: cancel of request %s answered %s", handle.request_id, answer)
        return answer

    # ---------------------------------------------------------------- waiting
    def wait(self, handle: RequestHandle, *, on_progress: ProgressCallback = None,
             should_cancel: CancelHook = None, timeout: float | None = None,
             cancel_job: bool = True) -> dict:
        """Block until the job completes and return its result JSON.

        Cancel (``should_cancel`` returning True, checked every 250 ms) sends
        fal's cancel request (unless ``cancel_job`` is False: only the wait
        stops) and raises CancelledError. A timeout raises FalTimeoutError and
        leaves the job alone: its result can still be fetched by request id.
        """
        waiter = Waiter(should_cancel, timeout)
        reporter = _Reporter(handle, waiter, on_progress)
        try:
            final = self._wait_stream(handle, waiter, reporter) if self.settings.use_sse else None
            if final is None:
                final = self._wait_poll(handle, waiter, reporter)
            if final.get("error"):
                kind = final.get("error_type")
                error_cls = CancelledError if kind == "request_cancelled" else JobFailedError
                raise error_cls(f"The job failed on fal: {_text(final['error'])}",
                                request_id=handle.request_id)
            return self.result(handle, waiter=waiter)
        except CancelledError as exc:
            if not waiter.cancelled():
                raise  # cancelled on fal's side: by_user stays False
            if not cancel_job:
                raise CancelledError("Stopped waiting; the job was left running on fal.",
                                     request_id=handle.request_id, by_user=True) from exc
            answer = self._cancel_quietly(handle)
            # ALREADY_COMPLETED means the job ran to the end and is paid for: the caller may keep it.
            raise CancelledError(f"Cancelled by the user; fal answered {answer} to the cancel request.",
                                 request_id=handle.request_id, by_user=True, fal_answer=answer) from exc

    def _cancel_quietly(self, handle: RequestHandle) -> str:
        try:
            return self.cancel(handle)
        except FalError as exc:
            log.warning("fal: cancel of request %s failed: %s", handle.request_id, exc)
            return f"an error ({exc})"

    def _wait_stream(self, handle: RequestHandle, waiter: Waiter, reporter: "_Reporter") -> dict | None:
        """Follow the SSE status stream; None means "use polling instead"."""
        reconnects = 0
        while True:
            stream = self._open_stream(handle, waiter)
            if stream is None:
                return None
            worked = False
            try:
                outcome = self._follow(stream, handle, waiter, reporter)
                worked = outcome is not False
                if isinstance(outcome, dict):
                    return outcome
            finally:
                stream.close()
            if not worked or reconnects >= self.settings.stream_reconnects:
                log.info("fal: status stream of %s broke; polling instead", handle.request_id)
                return None
            reconnects += 1

    def _open_stream(self, handle: RequestHandle, waiter: Waiter) -> EventStream | None:
        url = handle.status_url + "/stream"
        try:
            # Interruptible: a server that never sends the headers is abandoned on Cancel/deadline,
            # while a slow but healthy one still gets the long read timeout.
            resp = self.transport.send_once(
                "GET", url, waiter=waiter, request_id=handle.request_id, params={"logs": "1"},
                stream=True, headers=self.transport.headers_for(url, {"Accept": "text/event-stream"}),
                timeout=(self.transport.timeout[0], 300.0))
        except requests.RequestException as exc:
            log.debug("fal: status stream unavailable (%s)", type(exc).__name__)
            return None
        if resp.status_code != 200 or "text/event-stream" not in resp.headers.get("Content-Type", ""):
            log.debug("fal: status stream not offered (HTTP %d)", resp.status_code)
            resp.close()
            return None
        return EventStream(resp)

    def _follow(self, stream: EventStream, handle: RequestHandle, waiter: Waiter,
                reporter: "_Reporter") -> dict | bool | None:
        """COMPLETED status → dict; stream ended after some events → None; broke at once → False."""
        got_event = False
        last_activity = time.monotonic()
        while True:
            waiter.check(handle.request_id)
            try:
                kind, payload = stream.events.get(timeout=CHECK_INTERVAL)
            except queue_module.Empty:
                if time.monotonic() - last_activity >= self.settings.stream_idle_check:
                    # A silent stream may be stalled: one status GET tells us for sure.
                    last_activity = time.monotonic()
                    status = self.status(handle, waiter=waiter)
                    reporter.report(status, "poll")
                    if status.get("status") == "COMPLETED":
                        return status
                continue
            if kind != "data":
                return None if got_event else False
            last_activity = time.monotonic()
            try:
                status = json.loads(payload)
            except ValueError:
                continue  # a garbled event: the next one (or the idle check) will tell
            if not isinstance(status, dict):
                continue
            got_event = True
            reporter.report(status, "sse")
            if status.get("status") == "COMPLETED":
                return status

    def _wait_poll(self, handle: RequestHandle, waiter: Waiter, reporter: "_Reporter") -> dict:
        interval = self.settings.poll_initial
        while True:
            status = self.status(handle, waiter=waiter)
            reporter.report(status, "poll")
            if status.get("status") == "COMPLETED":
                return status
            waiter.sleep(interval, handle.request_id)
            interval = min(self.settings.poll_max, interval * self.settings.poll_growth)

    def close(self) -> None:
        self.transport.close()


class _Reporter:
    """Turns raw status JSON into Progress updates with only the new log lines."""

    def __init__(self, handle: RequestHandle, waiter: Waiter, callback: ProgressCallback):
        self.handle, self.waiter, self.callback = handle, waiter, callback
        self.seen: set[tuple] = set()
        self.last: tuple | None = None

    def report(self, status: dict, via: str) -> None:
        new_logs = []
        for entry in status.get("logs") or []:
            if isinstance(entry, dict):
                key = (entry.get("timestamp"), entry.get("message"))
                message = str(entry.get("message", ""))
            else:
                key, message = (None, str(entry)), str(entry)
            if key not in self.seen:
                self.seen.add(key)
                new_logs.append(message)
                log.info("fal [%s]: %s", self.handle.request_id, message)
        state = (status.get("status"), status.get("queue_position"))
        if not new_logs and state == self.last:
            return
        self.last = state
        if self.callback:
            self.callback(Progress(self.handle.request_id, str(status.get("status")), self.waiter.elapsed(),
                                   status.get("queue_position"), new_logs, via))


def _text(detail: Any) -> str:
    if isinstance(detail, (dict, list)):
        return json.dumps(detail)[:500]
    return str(detail)
