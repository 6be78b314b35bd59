"""The ways of waiting for a job, and how the client moves between them.

Fastest first: fal's SSE status stream (``…/status/stream``), then polling
``…/status``, then polling the result URL itself, which every shape of server
offers (resellers' gateways often expose only submit + result; see
../shared/FAL_PROTOCOL.md §1b). A way is left for the next one only when the
server does not offer it (``NotOffered``: 404/405/501, or an answer that is not
what the route serves: no event stream, no JSON, no status). The way that
answered is remembered per connection and endpoint (way_memory.py), so later
jobs go straight to it. A stream that breaks (``StepDown``) hands over to
polling for this job only. Transient errors (429, 5xx, network) keep the
transport's retry rules and never change the way.
"""

from __future__ import annotations

import json
import logging
import queue as queue_module
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import requests

from .job_state import CANCELLED, QUEUED, JobState, from_status
from ..wire.sse import EventStream
from .way_memory import WAYS, WayMemory
from ..base.waiting import CHECK_INTERVAL, Waiter

log = logging.getLogger("fal_qwen_edit")

NOT_OFFERED_CODES = frozenset({404, 405, 501})


@dataclass
class Progress:
    """One update while waiting; ``new_logs`` holds only lines not reported before."""

    request_id: str
    status: str
    elapsed: float
    queue_position: Optional[int] = None
    new_logs: list[str] = field(default_factory=list)
    via: str = "sse"  # "sse", "poll" (the status URL) or "result" (the result URL)


ProgressCallback = Optional[Callable[[Progress], None]]


class NotOffered(Exception):
    """The server does not offer this way of waiting."""


class StepDown(Exception):
    """This way failed for this job only (e.g. the stream broke): the next one takes over, unremembered."""


class Reporter:
    """Turns job states into Progress updates with only the log lines not reported before."""

    def __init__(self, handle: Any, waiter: Waiter, callback: ProgressCallback):
        self.handle, self.waiter, self.callback = handle, waiter, callback
        self.seen: set[tuple] = set()
        self.last: tuple | None = None
        self.phases: set[str] = set()  # every phase an answer showed: was the job ever more than queued?

    def never_started(self) -> bool:
        """Every answer had the job waiting in the queue (or cancelled): it never ran. A result-only
        gateway's "still in progress" reads as running, so such a job never counts as unstarted."""
        return QUEUED in self.phases and self.phases <= {QUEUED, CANCELLED}

    def report(self, state: JobState, via: str) -> None:
        self.phases.add(state.phase)
        new_logs = []
        for entry in state.status.get("logs") or []:
            if isinstance(entry, dict):
                key = (entry.get("timestamp"), entry.get("message"))
                message = str(entry.get("message", ""))
            else:
                key, message = (None, str(entry)), str(entry)
            if key not in self.seen:
                self.seen.add(key)
                new_logs.append(message)
                log.info("fal [%s]: %s", self.handle.request_id, message)
        position = state.status.get("queue_position")
        current = (state.fal_status, position)
        if not new_logs and current == self.last:
            return
        self.last = current
        if self.callback:
            self.callback(Progress(self.handle.request_id, state.fal_status, self.waiter.elapsed(), position,
                                   new_logs, via))


class JobWait:
    """One wait for one job: runs the ways in order until the job is over (done, failed, cancelled).

    ``queue`` is the QueueClient (its ``status``, ``fetch_result`` and ``transport``)."""

    def __init__(self, queue: Any, handle: Any, waiter: Waiter, reporter: Reporter, memory: WayMemory,
                 memory_key: str):
        self.queue, self.handle, self.waiter, self.reporter = queue, handle, waiter, reporter
        self.settings = queue.settings
        self.memory, self.memory_key = memory, memory_key
        self.learning = True  # False once a way merely broke: what works then is not what the server offers

    def until_over(self) -> JobState:
        first = self.memory.first_way(self.memory_key) or "stream"
        if first == "stream" and not self.settings.use_sse:
            first = "status"
        for way in WAYS[WAYS.index(first):]:
            try:
                return getattr(self, f"_by_{way}")()
            except NotOffered as exc:
                log.info("fal: %s for %s: no %s (%s)", self.memory_key, self.handle.request_id, way, exc)
            except StepDown as exc:
                self.learning = False
                log.info("fal: status stream of %s broke (%s); polling instead", self.handle.request_id, exc)
        raise AssertionError("result polling never steps down")

    def _answered(self, way: str) -> None:
        if self.learning:
            self.learning = False  # once per wait is enough
            self.memory.remember(self.memory_key, way)

    # ------------------------------------------------------------ polling
    def _by_status(self) -> JobState:
        return self._poll(lambda: from_status(self.queue.status(self.handle, waiter=self.waiter)), "status", "poll")

    def _by_result(self) -> JobState:
        return self._poll(lambda: self.queue.fetch_result(self.handle, waiter=self.waiter), "result", "result")

    def _poll(self, ask: Callable[[], JobState], way: str, via: str) -> JobState:
        interval = self.settings.poll_initial
        while True:
            state = ask()
            self._answered(way)
            self.reporter.report(state, via)
            if state.over:
                return state
            self.waiter.sleep(interval, self.handle.request_id)
            interval = min(self.settings.poll_max, interval * self.settings.poll_growth)

    # ------------------------------------------------------------ the stream
    def _by_stream(self) -> JobState:
        reconnects = 0
        while True:
            stream = self._open_stream()
            try:
                outcome = self._follow(stream)
            finally:
                stream.close()
            if isinstance(outcome, JobState):
                return outcome
            if outcome is False or reconnects >= self.settings.stream_reconnects:
                raise StepDown("it ended before the job did" if outcome is None else "it broke at once")
            reconnects += 1

    def _open_stream(self) -> EventStream:
        transport, handle = self.queue.transport, self.handle
        url, headers, params = transport.route(handle.status_url + "/stream", {"Accept": "text/event-stream"},
                                               {"logs": "1"})
        try:
            # Interruptible: a server that never sends the headers is abandoned on Cancel/deadline,
            # while a slow but healthy one still gets the long read timeout.
            resp = transport.send_once("GET", url, waiter=self.waiter, request_id=handle.request_id,
                                       params=params, stream=True, headers=headers,
                                       timeout=(transport.timeout[0], 300.0))
        except requests.RequestException as exc:
            raise StepDown(type(exc).__name__) from None
        content_type = resp.headers.get("Content-Type", "")
        if resp.status_code == 200 and "text/event-stream" in content_type:
            return EventStream(resp)
        resp.close()
        if resp.status_code in NOT_OFFERED_CODES:
            raise NotOffered(f"HTTP {resp.status_code}")
        if resp.status_code == 200:
            raise NotOffered(f"HTTP 200 with {content_type or 'no content type'}, not an event stream")
        raise StepDown(f"HTTP {resp.status_code}")

    def _follow(self, stream: EventStream) -> JobState | bool | None:
        """The job's final state; None: the stream ended after some events; False: it broke at once."""
        got_event = False
        last_activity = time.monotonic()
        while True:
            self.waiter.check(self.handle.request_id)
            try:
                kind, payload = stream.events.get(timeout=CHECK_INTERVAL)
            except queue_module.Empty:
                if time.monotonic() - last_activity >= self.settings.stream_idle_check:
                    last_activity = time.monotonic()
                    state = self._double_check()
                    if state is not None and state.over:
                        return state
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
            self._answered("stream")
            state = from_status(status)
            self.reporter.report(state, "sse")
            if state.over:
                return state

    def _double_check(self) -> JobState | None:
        """A silent stream may be stalled: one status GET tells us for sure."""
        try:
            state = from_status(self.queue.status(self.handle, waiter=self.waiter))
        except NotOffered:
            return None  # a server with a stream but no /status: the stream alone must tell
        self.reporter.report(state, "poll")
        return state
