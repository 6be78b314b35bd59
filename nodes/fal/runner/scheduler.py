"""The batch's scheduler: ``concurrency`` jobs on fal at once, the next items ready behind them.

The pipeline's edit of prepared inputs (``FalEditClient._edit_encoded``) does each
item's whole edit: cap, upload, journalled submit, wait, download. The scheduler
only feeds it, as per-frame batch mode does (edit/batch.py): ``2 × concurrency``
workers take items in manifest order; each item holds a ticket of one set of
``JobSlots``, taken just before its submit and given back as soon as its result
JSON is in, so up to ``concurrency`` more items are read, prepared and uploaded
while the jobs run, and the next submit follows a finished job at once. An item
only begins once the item ``concurrency`` places before it has its slot, so the
first submits are not slowed by the later items' preparation. Memory stays flat
however long the manifest: nothing of an item is kept once it has ended.

Every item that ends goes through ``_end``, the one place where its outputs are
written, its results line is appended (before the pipeline's journal forgets the
job: see ``on_result`` in pipeline.py) and the display and the ``on_end`` hook
(e.g. a job history) hear of it.

Stopping: Cancel (Ctrl-C) makes every waiting edit cancel its job on fal (the
pipeline's wait does that), items waiting for a slot end unsubmitted, and no new
item begins. The spending cap refusing an item (the pipeline's reserve, under the
ledger's lock, so other processes' spend counts) stops new items too; the jobs in
flight finish. So does a key the server refuses: every later item would fail alike.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypedDict

from ..base.errors import (AuthError, BalanceError, CancelledError, ConfigError, FalError, NoChannelError,
                           SubmitUncertainError)
from ..base.waiting import CHECK_INTERVAL
from ..edit.outcome import EditOutcome
from ..edit.pipeline import DEFAULT_TIMEOUT, FalEditClient
from ..edit.submits import FORCE_HINT
from ..media.inputs import InputLimits
from ..models.endpoints import EndpointSpec
from ..queue.client import Progress
from ..queue.job_slots import JobSlots, SlotTicket
from ..state.budget import BudgetError
from .outputs import write_outputs
from .plan import Item
from .progress import Display, Tally
from .results import CANCELLED, DONE, FAILED, RUNNING, ResultsFile
from .sources import InputLoader

log = logging.getLogger("fal_qwen_edit")

RESUBMIT_HINT = ("Running the same command again looks for its job in fal's request history again; "
                 "--retry-failed submits this item again; it may then be paid twice.")
JOB_SOURCES = ("job", "resumed")  # an item's own job, whichever run submitted it (not a cache hit)
EndHook = Callable[[Item, dict, "EditOutcome | None"], None]


@dataclass
class RunSettings:
    concurrency: int = 4
    input_resize: str = "fit model"
    upload_format: str = "png"
    timeout: float = DEFAULT_TIMEOUT
    fresh: bool = False
    # Handed to every edit as they are: the hook for options other issues add to the pipeline
    # (e.g. the queue guards' priority), so the runner passes them without knowing them.
    edit_options: dict[str, Any] = field(default_factory=dict)


class _Seen(TypedDict):
    """What one item's callbacks saw, for its error handling."""
    request_id: str | None  # its job, once submitted
    ended: bool             # its outputs and results line are written


class Scheduler:
    def __init__(self, client: FalEditClient, spec: EndpointSpec, settings: RunSettings, results: ResultsFile,
                 display: Display, tally: Tally, should_cancel: Callable[[], bool], on_end: EndHook | None = None):
        self.client, self.spec, self.settings = client, spec, settings
        self.results, self.display, self.tally = results, display, tally
        self.should_cancel, self.on_end = should_cancel, on_end
        self.loader = InputLoader(spec.reads_area, settings.input_resize, InputLimits.of(spec), settings.upload_format)
        self.stop_reason: str | None = None   # "cap", "auth", "balance" or "gateway"; a Cancel is should_cancel's
        self.stop_message = ""
        self._lock = threading.Lock()
        self._running: set[str] = set()

    def stopping(self) -> bool:
        return self.stop_reason is not None or self.should_cancel()

    def run(self, items: list[Item]) -> None:
        """Run ``items``; returns once every worker has ended (a KeyboardInterrupt leaves them: daemons)."""
        if not items:
            return
        concurrency = max(1, self.settings.concurrency)
        slots = JobSlots(concurrency)
        tickets: dict[int, SlotTicket] = {}
        upcoming = iter(range(len(items)))

        def work() -> None:
            while True:
                with self._lock:
                    index = None if self.stopping() else next(upcoming, None)
                    if index is None:
                        return
                    ticket = tickets[index] = slots.ticket()
                    ahead = tickets.pop(index - concurrency, None)
                if ahead is not None:
                    while not ahead.settled.wait(CHECK_INTERVAL) and not self.stopping():
                        pass
                if self.stopping():
                    ticket.give_back()  # settles it: a worker waiting on it sees the stop as well
                    return
                try:
                    self._run_one(items[index], ticket)
                except Exception:  # noqa: BLE001 - e.g. the results file's disk is full: say so, go on
                    log.exception("fal: batch item %s could not be recorded", items[index].line.where)

        workers = [threading.Thread(target=work, name=f"fal-batch-{n}", daemon=True)
                   for n in range(min(2 * concurrency, len(items)))]
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(CHECK_INTERVAL)  # short joins: the main thread stays free for Ctrl-C
                self.display.tick()

    def _run_one(self, item: Item, ticket: SlotTicket) -> None:
        seen: _Seen = {"request_id": None, "ended": False}

        def on_progress(progress: Progress) -> None:
            if progress.request_id != seen["request_id"]:
                seen["request_id"] = progress.request_id
                self._submitted(item, progress.request_id)

        def on_result(outcome: EditOutcome) -> None:
            self._end(item, outcome=outcome)
            seen["ended"] = True  # only once its outputs and results line are written

        try:
            inputs = self.loader.load(item.sources)
            self.client._edit_encoded(
                item.request, inputs, self.spec, started=time.monotonic(), resize=self.settings.input_resize,
                upload_format=self.settings.upload_format, on_progress=on_progress, should_cancel=self.should_cancel,
                timeout=self.settings.timeout, fresh=self.settings.fresh or item.resubmit, slot=ticket,
                on_result=on_result, **self.settings.edit_options)
        except BudgetError as exc:
            self._stop("cap", f"Spending cap reached: {item.line.where} ({item.name}) would cross it, so no more "
                              f"items are submitted; the jobs in flight finish. {exc}")
        except CancelledError as exc:
            request_id = exc.request_id or seen["request_id"]
            if seen["ended"]:
                pass
            elif exc.by_user and request_id is None:
                pass  # cancelled before its submit: it simply has not started
            else:
                self._end(item, error=exc, status=CANCELLED if exc.by_user else FAILED, request_id=request_id)
        except SubmitUncertainError as exc:
            # A submit (this run's, or one a crash cut off) was sent and its answer lost: a job may exist.
            self._end(item, error=exc, request_id=exc.request_id, uncertain=True)
        except (FalError, OSError) as exc:
            if not seen["ended"]:
                self._end(item, error=exc, request_id=getattr(exc, "request_id", None) or seen["request_id"])
            if isinstance(exc, (AuthError, ConfigError)):
                self._stop("auth", f"Stopping: {exc} No more items are submitted.")
            elif isinstance(exc, (BalanceError, NoChannelError)):  # every next item would get the same answer
                self._stop("balance" if isinstance(exc, BalanceError) else "gateway",
                           f"Stopping: {exc} No more items are submitted.")
        except Exception as exc:  # noqa: BLE001 - one item's bug must not stop the others' paid jobs
            log.exception("fal: batch item %s failed unexpectedly", item.line.where)
            if not seen["ended"]:
                self._end(item, error=exc, request_id=seen["request_id"])
        finally:
            ticket.give_back()  # also settles it when the edit ended before its submit

    def _stop(self, reason: str, message: str) -> None:
        with self._lock:
            if self.stop_reason is not None:
                return
            self.stop_reason, self.stop_message = reason, message
        self.display.note(message)

    def _submitted(self, item: Item, request_id: str) -> None:
        # Not fsynced: the journal already holds the job; this line lets a reader find it by item.
        self.results.append(item.record(RUNNING, request_id=request_id), durable=False)
        with self._lock:
            if item.key not in self._running:
                self._running.add(item.key)
                self.tally.running += 1

    def _end(self, item: Item, *, outcome: EditOutcome | None = None, error: BaseException | None = None,
             status: str = FAILED, request_id: str | None = None, uncertain: bool = False) -> None:
        """The one place where an item's job ends: outputs, results line, tally, display, hook."""
        if outcome is not None:
            files = write_outputs(self.results.folder, item.name, outcome)
            cost = item.estimate.usd if outcome.source in JOB_SOURCES else 0.0  # None: price unknown
            record = item.record(DONE, request_id=outcome.handle.request_id, files=files, cost_usd=cost,
                                 source=outcome.source, seed=outcome.result.seed)
            if outcome.billed_usd is not None and outcome.source in JOB_SOURCES:
                record["billed_usd"] = outcome.billed_usd
            warning = outcome.info().get("warning")
            if warning:
                record["warning"] = warning
        else:
            message = str(error) if isinstance(error, FalError) else f"{type(error).__name__}: {error}"
            record = item.record(status, request_id=request_id, error=message)
            if uncertain:
                record.update(error=message.replace(FORCE_HINT, RESUBMIT_HINT), uncertain=True)
        self.results.append(record)
        with self._lock:
            if item.key in self._running:
                self._running.discard(item.key)
                self.tally.running -= 1
            if outcome is not None:
                self.tally.done += 1
                if outcome.source == "job":
                    self.tally.cost_usd = round(self.tally.cost_usd + (item.estimate.usd or 0.0), 4)
            elif status == CANCELLED:
                self.tally.cancelled += 1
            else:
                self.tally.failed += 1
        self.display.ended(record)
        if self.on_end is not None:
            self.on_end(item, record, outcome)
