"""One batch run, start to end: check every line, read what earlier runs finished, check the cap,
run the rest (scheduler.py), and sum it up.

Nothing is uploaded or submitted unless every line is valid and the new jobs' estimate fits
what the daily cap has left. Running the same batch again skips the items done, resumes the
ones whose job was submitted (the pipeline's journal: no second job, no second payment) and
retries failed ones only when asked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Callable

from ..edit.pipeline import FalEditClient
from ..media.inputs import check_modes
from ..models.endpoints import EndpointSpec
from ..models.qwen import QwenEditRequest
from .manifest import Line
from ..base.server_words import where_billed
from ..platform.balance import Balance
from .plan import Plan, build_items, check_balance, check_cap, make_plan
from .progress import Display, Tally
from .results import DONE, ResultsFile
from .scheduler import EndHook, RunSettings, Scheduler

# fal's queue answers a result with X-Fal-Billable-Units; a gateway or an older job may not say.
BILLED_HOW = "fal's billable units × its unit price"
NOT_BILLED_NOTE = "billed: not reported for these jobs; {where} has it"
FAL_BILLING = "your fal dashboard (or its billing events)"


@dataclass
class BatchSummary:
    done: int              # by this run
    done_before: int       # skipped: done by an earlier run
    failed: int
    failed_before: int     # skipped: failed in an earlier run, not retried
    cancelled: int
    not_started: int       # the cap, a refused key or a Cancel stopped the batch before them
    cost_usd_run: float    # estimate of the jobs this run submitted
    cost_usd_batch: float  # estimate of every finished item's job, whichever run submitted it
    billed_usd: float | None  # of the finished items' jobs whose billed units fal reported
    billed_jobs: int          # how many jobs that sum covers
    stopped: str | None    # "cap", "auth", "balance", "cancelled" or None
    results: str
    billed_where: str = FAL_BILLING  # where the billed figures live (a gateway's usage log)
    unpriced: int = 0      # this run's finished jobs of unknown price (not in cost_usd_run)

    @property
    def complete(self) -> bool:
        return not (self.failed or self.failed_before or self.cancelled or self.not_started)

    def text(self) -> str:
        skipped = self.done_before + self.failed_before
        parts = [f"done {self.done}", f"failed {self.failed}"]
        if self.cancelled:
            parts.append(f"cancelled {self.cancelled}")
        parts.append(f"skipped {skipped} ({self.done_before} done earlier, {self.failed_before} failed earlier"
                     + (", --retry-failed runs them again)" if self.failed_before else ")"))
        if self.not_started:
            parts.append(f"not started {self.not_started}")
        jobs = f"{self.billed_jobs} job{'s' if self.billed_jobs != 1 else ''}"
        billed = f"billed ${self.billed_usd:.4f} for {jobs} of them ({BILLED_HOW})" \
            if self.billed_usd is not None else NOT_BILLED_NOTE.format(where=self.billed_where)
        unpriced = f" and {self.unpriced} of unknown price" if self.unpriced else ""
        lines = [", ".join(parts),
                 f"cost: about ${self.cost_usd_run:.2f} for this run's new jobs{unpriced}, ${self.cost_usd_batch:.2f} "
                 f"for all finished items (estimates); {billed}",
                 f"results: {self.results}"]
        if not self.complete and self.stopped != "auth":
            lines.append("Run the same command again to continue: finished items are skipped, submitted ones "
                         "resumed without a new job.")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {**asdict(self), "complete": self.complete}


def run_batch(client: FalEditClient, lines: list[Line], base: QwenEditRequest, spec: EndpointSpec, folder: Path,
              settings: RunSettings, *, should_cancel: Callable[[], bool], retry_failed: bool = False,
              what: str = "the batch", stream: IO[str] | None = None, on_end: EndHook | None = None) -> BatchSummary:
    check_modes(settings.input_resize, settings.upload_format)
    items = build_items(lines, base, spec, settings.input_resize, settings.upload_format, what, client.price_of)
    with ResultsFile(folder) as results:
        plan = make_plan(items, results.latest(), retry_failed)
        check_cap(plan, client.budget)
        balance = client.balance.current() if plan.new_jobs() else None  # a gateway's; cached a minute
        check_balance(plan, balance)
        tally = Tally(total=len(plan.to_run))
        display = Display.for_stream(tally, stream)
        display.note(_opening(plan, spec, settings, results, balance))
        scheduler = Scheduler(client, spec, settings, results, display, tally, should_cancel, on_end)
        try:
            scheduler.run(plan.to_run)
        finally:
            display.close()
        latest = results.latest()
    stopped = "cancelled" if should_cancel() else scheduler.stop_reason
    finished, billed = {}, {}
    unpriced = sum(1 for item in plan.new_jobs()
                   if item.estimate.usd is None and latest.get(item.key, {}).get("status") == DONE)
    for item in items:
        record = latest.get(item.key, {})
        if record.get("status") == DONE:
            job = record.get("request_id") or item.key  # a job shared by identical items counts once
            finished[job] = float(record.get("cost_usd") or 0.0)
            if isinstance(record.get("billed_usd"), (int, float)):
                billed[job] = float(record["billed_usd"])
    return BatchSummary(tally.done, len(plan.done_before), tally.failed, len(plan.failed_before), tally.cancelled,
                        tally.total - tally.ended, tally.cost_usd, round(sum(finished.values()), 4),
                        round(sum(billed.values()), 4) if billed else None, len(billed), stopped, str(results.path),
                        where_billed(client.config.mode, client.config.queue_base)
                        if client.config.mode == "gateway" else FAL_BILLING, unpriced)


def _opening(plan: Plan, spec: EndpointSpec, settings: RunSettings, results: ResultsFile,
             balance: Balance | None = None) -> str:
    parts = [f"batch: {len(plan.items)} items on {spec.name}"]
    if plan.done_before:
        parts.append(f"{len(plan.done_before)} done earlier (skipped)")
    if plan.failed_before:
        parts.append(f"{len(plan.failed_before)} failed earlier (skipped; --retry-failed runs them)")
    if plan.resuming:
        parts.append(f"{len(plan.resuming)} submitted earlier (resumed, no new job)")
    unpriced = f"; price unknown for {len(plan.unpriced())} of them" if plan.unpriced() else ""
    parts.append(f"{len(plan.new_jobs())} to submit, about ${plan.cost():.2f} (estimate{unpriced})")
    parts.append(f"{max(1, settings.concurrency)} at a time")
    if balance is not None:
        parts.append(f"gateway balance: {balance.text()}")
    return ", ".join(parts) + f"; results: {results.path}"
