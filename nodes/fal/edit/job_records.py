"""What the job history is told about each job the pipeline submits, resumes, fetches or loses.

Three moments, one call each from the pipeline: a job exists (submitted or resumed), it ended badly,
its result is in (billed units × unit price, the ledger settled to the billed figure, and thumbnails;
for a single edit those are made on the history's worker thread, so its result does not wait for them).
A failure to write the history is logged, never raised: the history must not cost anyone an edit.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..base.errors import (CancelledError, FalError, FalTimeoutError, JobFailedError, JobUnknownError,
                           StartDeadlineError)
from ..media.thumbnails import thumbnails_of
from ..platform.client import PlatformClient
from ..platform.price_book import PriceBook
from ..queue.client import QueueClient, RequestHandle
from ..state.budget import Charge
from ..state.history import JobHistory
from ..wire.config import FalConfig
from .outcome import EditOutcome

log = logging.getLogger("fal_qwen_edit")
DROPPED = "fal dropped the job before it started (its start deadline passed); nothing ran"


def connection_of(config: FalConfig, key_env: str | None = None) -> dict[str, Any]:
    """Enough to reach a job again through the same connection; never the key, only its variable's name."""
    base = config.proxy_url if config.mode == "proxy" else config.queue_base
    return {"kind": config.mode, "host": urlsplit(base).hostname or "",
            "base_url": base if config.mode != "fal" else None, "key_env": key_env}


class JobRecords:
    def __init__(self, history: JobHistory | None, queue: QueueClient, prices: PriceBook | None,
                 connection: dict[str, Any]):
        self.history, self.queue, self.prices, self.connection = history, queue, prices, connection

    @classmethod
    def build(cls, platform: PlatformClient, queue: QueueClient, history: JobHistory | None,
              prices_path: Path | None, connection: dict[str, Any] | None) -> "JobRecords":
        """Billed costs priced by fal's pricing API where the key may read it (cached a day in
        ``prices_path``), else by the endpoint table."""
        prices = PriceBook(prices_path, platform)
        return cls(history, queue, prices, connection or connection_of(platform.config))

    def _record(self, request_id: str, **fields: Any) -> None:
        if self.history is None:
            return
        try:
            self.history.record(request_id, **fields)
        except (OSError, ValueError) as exc:
            log.warning("fal: could not write the job history for %s (%s)", request_id, exc)

    def started(self, handle: RequestHandle, model: str, prompt: str, source: str, estimate_usd: float | None) -> None:
        """``source`` "job" (just submitted) or "resumed" (an earlier run's: its record already holds
        when it was submitted and what it was estimated at). ``estimate_usd`` None: price unknown."""
        fresh = source == "job"
        self._record(handle.request_id, endpoint=handle.endpoint, model=model, prompt=prompt, status="running",
                     cost_usd_estimate=estimate_usd if fresh else None, connection=self.connection,
                     submitted_at=time.time() if fresh else None)

    def ended_badly(self, handle: RequestHandle | None, exc: FalError) -> None:
        if handle is None:
            return
        if isinstance(exc, StartDeadlineError):
            status, error = "cancelled", DROPPED
        elif isinstance(exc, CancelledError):
            status, error = "cancelled", str(exc)
        elif isinstance(exc, JobFailedError):
            status, error = "failed", str(exc)
        elif isinstance(exc, JobUnknownError):
            status, error = "unknown", str(exc)
        else:  # a timeout or a passing error: the job may still run, and stays fetchable by its id
            status = "running"
            error = f"waiting stopped: {exc}" if isinstance(exc, FalTimeoutError) else str(exc)
        self._record(handle.request_id, status=status, error=error[:500],
                     finished_at=time.time() if status != "running" else None)

    def finished(self, outcome: EditOutcome, *, charge: Charge | None = None, cache_key: str | None = None,
                 model: str | None = None, prompt: str | None = None, later: bool = False) -> None:
        """``later``: thumbnails made after the result is handed back (one edit someone waits for); a
        batch's edits make their own, as the cores are busy with the next ones anyway (and a worker
        thread holding their images cost the 1,000-edit batch ~4 MB of peak memory)."""
        handle = outcome.handle
        units = self.queue.billable_units.pop(handle.request_id, None)
        billed, unit_price, price_source = (self.prices.billed(handle.endpoint, units) if self.prices
                                            else (None, None, ""))
        outcome.billed_usd = billed
        if billed is not None and charge is not None:
            try:
                charge.settle(billed, handle.request_id)
            except OSError as exc:
                log.warning("fal: could not settle the ledger for %s (%s)", handle.request_id, exc)
        if self.history is None:
            return
        fields = dict(endpoint=handle.endpoint, status="done", finished_at=time.time(),
                      num_outputs=len(outcome.result.images), cost_usd_billed=billed, billed_units=units,
                      unit_price_usd=unit_price, price_source=price_source or None, cache_key=cache_key,
                      model=model, prompt=prompt, connection=self.connection)
        if outcome.source == "fetched":
            fields["source"] = "fetch"
        self._record(handle.request_id, **fields)
        images = outcome.images  # the IMAGE batch handed back anyway: the worker holds no copy
        if later:
            self.history.add_thumbnails_later(handle.request_id, lambda: thumbnails_of(images))
        else:
            try:
                self.history.add_thumbnails(handle.request_id, thumbnails_of(images))
            except (OSError, ValueError) as exc:
                log.warning("fal: could not keep thumbnails of %s (%s)", handle.request_id, exc)
