"""The whole edit: IMAGE tensors in, IMAGE tensors out.

validate fields for the endpoint → spending cap (fal storage: so uploads may go ahead) → inputs
prepared, encoded and uploaded as each is ready (ahead.py) → result cache? → journalled job to resume?
→ spending cap (if not yet) → the uploads still to make → submit (journalled, with fal's guard headers:
start deadline, priority, store-IO; a lost answer looked up in fal's history, submits.py) → wait
(progress, cancel, timeout) → download → decode → cache (and a copy by request id when fal keeps none).
Nothing is uploaded or paid for until every field has passed validation and the cap allows the edit;
Cancel is honoured before the submit as well as during the wait; a job is never submitted twice for one edit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .ahead import InputsAhead, charge_ahead
from .batch import edit_each
from .job_records import JobRecords
from .submits import FORCE_HINT, Submits  # noqa: F401 - FORCE_HINT importable from here as before
from .uploads import Uploads
from ..state.budget import Budget, Charge
from ..state.history import JobHistory
from ..wire.config import FalConfig
from ..media.downloads import decode_all, download_decoded
from ..models.endpoints import DEFAULT_ENDPOINT, EndpointSpec, spec_for
from ..base.errors import (AuthError, CancelledError, FalError, ImageDecodeError, JobFailedError, JobUnknownError,
                           OutputGoneError, StartDeadlineError, ValidationError)
from ..media.images import split_batch, stack_batch
from ..base.phases import phase
from ..media.inputs import PreparedImage, check_modes, keep_output_size
from ..state.journal import WAITING, Journal, request_key
from .outcome import EditOutcome, combine  # noqa: F401 - importable from here as before
from ..models.pricing import Estimate, UnitPrice, estimate
from ..models.qwen import QwenEditRequest, QwenEditResult
from ..queue.client import ProgressCallback, QueueClient, RequestHandle, WaitSettings
from ..state.result_cache import ResultCache, kept_key
from ..media.storage import Uploader
from ..platform.balance import GatewayBalance
from ..platform.client import PlatformClient
from ..platform.price_book import PriceBook
from ..platform.submit_search import SubmitSearch
from ..wire.guards import check_priority, check_start_timeout
from ..wire.transport import RetryPolicy, Transport
from ..base.waiting import CancelHook, Waiter
from ..queue.job_slots import SlotTicket
from ..queue.way_memory import WayMemory

log = logging.getLogger("fal_qwen_edit")

DEFAULT_TIMEOUT = 900.0  # seconds for the whole edit; fal jobs usually take 5-60 s
PAID_DOWNLOAD_TIMEOUT = 120.0  # seconds to download a result that came back despite a Cancel
LATE_CANCEL_NOTE = ("Cancel came too late: fal had already finished this job (it is paid for), so its result "
                    "is returned and kept rather than dropped.")
GONE_HINT = ("A job submitted with keep_on_fal off (X-Fal-Store-IO: 0) stays fetchable on fal for only 1 hour "
             "(6 minutes when its result is 10 KB or more), and this machine keeps a copy only of results it "
             "downloaded; otherwise fal keeps results 30 days, for the account and endpoint that made them.")


@dataclass
class _Edit:
    """One edit on its way: what it sends, how it waits, what it may cost."""

    request: QwenEditRequest
    spec: EndpointSpec
    inputs: list[PreparedImage]
    upload_format: str
    waiter: Waiter
    estimate: Estimate
    journal_key: str
    fresh: bool
    slot: SlotTicket | None = None
    charge: Charge | None = None
    phases: dict[str, float] = field(default_factory=dict)
    start_timeout: float | None = None  # guards.py: None auto (what is left of the edit's time), 0 none
    priority: str = "normal"
    handle: RequestHandle | None = None  # once the job exists
    ahead: InputsAhead | None = None  # the inputs already encoded, or on their way (ahead.py)
    digests: dict[str, str] = field(default_factory=dict)  # body fields already fingerprinted (ahead.py)


class _ResumedJobCancelled(Exception):
    """The journalled job this run resumed was cancelled by an earlier Cancel, or dropped by fal unstarted."""


class FalEditClient(Uploads, Submits):
    """One per connection setting; holds the pooled session, upload cache, journal and result cache."""

    def __init__(self, config: FalConfig, *, retry: RetryPolicy | None = None,
                 wait_settings: WaitSettings | None = None, verify: bool | str = True,
                 journal: Journal | None = None, cache: ResultCache | None = None,
                 ways: WayMemory | None = None, budget: Budget | None = None, pool_size: int = 32,
                 history: JobHistory | None = None, prices_path: Path | None = None, connection: dict | None = None):
        self.config = config
        # pool_size: connections kept per host (the batch runner's jobs each hold a status stream).
        self.transport = Transport(config, retry=retry, verify=verify, pool_size=pool_size)
        self.queue = QueueClient(config, self.transport, wait_settings, ways)
        self.uploader = Uploader(self.transport)
        self.journal, self.cache, self.history = journal, cache, history
        self.budget = budget or Budget()  # no cap unless one is configured
        # fal's Platform API, for the prices of billed units, lost submits and the panel's fal history
        self.platform = PlatformClient(config, self.transport)
        self.records = JobRecords.build(self.platform, self.queue, history, prices_path, connection)
        self.prices = self.records.prices or PriceBook(None)  # fal's unit prices, cached in the state folder
        self.submit_search = SubmitSearch(self.platform)
        self.balance = GatewayBalance(config, self.transport)  # a gateway's credit left; never asked by an edit

    def close(self) -> None:
        self.transport.close()

    def price_of(self, spec: EndpointSpec) -> UnitPrice | None:
        """The price an edit is estimated and capped at (models/pricing.py's rule). With a cap set and no
        price known yet, fal's pricing API is asked first (free, no job), so that a fresh install with a
        fal key can run a model the table has no price for; the cap refuses it only if fal tells none."""
        return self.prices.price_for(spec, ask=self.budget.cap_usd is not None)

    def __enter__(self) -> "FalEditClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def result_by_id(self, request_id: str, *, endpoint: str = DEFAULT_ENDPOINT, mismatch: str = "pad",
                     should_cancel: CancelHook = None, timeout: float = 120.0,
                     on_progress: ProgressCallback = None, keep: bool = False) -> EditOutcome:
        """The outputs of any earlier request, fetched (not re-run: free) from fal's queue.
        A request that is still queued or running is waited for first; Cancel stops that
        wait but leaves the job alone (this call did not start it). Outputs this machine kept
        for a job fal does not keep (keep_on_fal off) are served from here, free and offline."""
        waiter = Waiter(should_cancel, timeout)
        handle = self.queue.handle_for(endpoint, request_id)
        kept = self._from_cache(kept_key(request_id), endpoint, mismatch, {}) if self.cache is not None else None
        if kept is not None:
            return kept
        try:
            data = self.queue.wait(handle, on_progress=on_progress, should_cancel=should_cancel, timeout=timeout,
                                   cancel_job=False)
        except JobUnknownError as exc:
            raise JobUnknownError(f"{exc} {GONE_HINT}", status=exc.status, request_id=request_id,
                                  detail=exc.detail) from None
        keep_key = kept_key(request_id) if keep else None  # the panel's Fetch: its outputs kept on this machine
        outcome = self._finish(handle, data, waiter, mismatch, {}, "fetched", key=keep_key)
        self.records.finished(outcome, cache_key=keep_key)
        return outcome

    def edit(self, request: QwenEditRequest, images: Sequence[Any] = (), *, model: str | None = None,
             endpoint: str = DEFAULT_ENDPOINT, input_resize: str = "fit model", **options: Any) -> EditOutcome:
        """Run one edit. ``images`` are IMAGE tensors whose frames are appended to
        ``request.image_urls``. ``model`` (a name of endpoints.py's table) or ``endpoint``
        (any fal endpoint id) picks the endpoint; ``input_resize`` ("fit model" or "off",
        inputs.py). Options: upload_format, on_progress, should_cancel, timeout, mismatch,
        and ``fresh`` (skip the result cache and journal resume)."""
        spec = spec_for(model, endpoint)
        check_modes(input_resize, options.get("upload_format", "png"))
        frames = [frame for image in images for frame in split_batch(image)]
        # fields, count and guards first: nothing is prepared or sent for a bad request
        request.validate(spec, images_to_come=len(frames))
        check_start_timeout(options.get("start_timeout")), check_priority(options.get("priority", "normal"))
        started = time.monotonic()
        waiter = Waiter(options.get("should_cancel"), options.get("timeout", DEFAULT_TIMEOUT))
        # Counted against the cap now, so that the uploads may go ahead (ahead.py; released when unused).
        charge = charge_ahead(self.budget, spec, request, frames, input_resize, self.price_of) if self.config.uses_storage else None
        # The endpoint's own per-image limits are met (or the edit refused) as each input is prepared.
        with InputsAhead(frames, spec, input_resize, options.get("upload_format", "png"), self.uploader, waiter,
                         charge, given=request.image_urls) as ahead:
            return self._edit_encoded(request, ahead.prepared(waiter), spec, started=started,
                                      resize=input_resize, charge=charge, ahead=ahead, waiter=waiter, **options)

    def edit_each(self, request: QwenEditRequest, batch: Any, references: Sequence[Any] = (), *,
                  concurrency: int = 8, **options: Any) -> list[EditOutcome]:
        """One edit per frame of ``batch``, at most ``concurrency`` jobs at once (batch.py)."""
        return edit_each(self._edit_encoded, self.budget, request, batch, references, concurrency=concurrency,
                         price_of=self.price_of, **options)

    def _edit_encoded(self, request: QwenEditRequest, inputs: list[PreparedImage], spec: EndpointSpec, *,
                      started: float, resize: str = "fit model", upload_format: str = "png",
                      on_progress: ProgressCallback = None, should_cancel: CancelHook = None,
                      timeout: float = DEFAULT_TIMEOUT, mismatch: str = "pad", fresh: bool = False,
                      slot: SlotTicket | None = None, charge: Charge | None = None,
                      start_timeout: float | None = None, priority: str = "normal",
                      on_result: Callable[[EditOutcome], None] | None = None, ahead: InputsAhead | None = None,
                      waiter: Waiter | None = None) -> EditOutcome:
        """``on_result``: called with the outcome before it is returned and before the journal forgets
        its job, so whatever it saves (the batch runner's results file) survives a crash, or the job is
        resumed by the next run, unpaid. ``ahead``: the inputs' encodings and uploads already under way."""
        request.validate(spec, images_to_come=len(inputs))  # count and URLs too: nothing uploaded for a bad request
        start_timeout, priority = check_start_timeout(start_timeout), check_priority(priority)
        request = keep_output_size(request, spec, inputs)
        # Identity: the pixels as sent, and how they were made (another resize or format is another edit).
        identities = [hashlib.sha256(x.encode()).hexdigest() for x in request.image_urls] + \
            [image.digest for image in inputs] + [f"input_resize={resize}", f"upload_format={upload_format}"]
        key = request_key(spec.endpoint, request.arguments_without_images(spec), identities)
        sizes = [None] * len(request.image_urls) + [image.size for image in inputs]
        edit = _Edit(request, spec, inputs, upload_format, waiter or Waiter(should_cancel, timeout),
                     estimate(spec, request.image_size, request.num_images, sizes, price_of=self.price_of),
                     self._journal_key(key), fresh, slot, charge, {"encode": time.monotonic() - started},
                     start_timeout, priority, ahead=ahead)
        # Pixels behind an http(s) URL may change, so only edits whose every input is content
        # (tensors, data URIs) are served from the cache; a fal_picks_seed edit asks for a new image.
        cacheable = self.cache is not None and request.seed is not None and \
            all(url.startswith("data:") for url in request.image_urls)
        try:
            for _ in range(2):  # a second pass only when the journalled job turned out cancelled or dropped
                with contextlib.ExitStack() as waiting:
                    # Under the claim, an identical edit started meanwhile (a duplicate frame, another
                    # process) finds this one's job in the journal, or its result in the cache, and shares it.
                    with self.journal.claim(edit.journal_key, edit.waiter) if self.journal else contextlib.nullcontext():
                        if cacheable and not edit.fresh:
                            outcome = self._from_cache(key, spec.endpoint, mismatch, edit.phases)
                            if outcome is not None:
                                if on_result is not None:
                                    on_result(outcome)
                                return outcome
                        handle, source = self._job(edit)
                        edit.handle = handle
                        if source == "job":  # fal's unit price, asked while the job runs: its bill uses it
                            self.prices.ask_soon(spec.endpoint)
                        with phase("bookkeeping: history"):
                            self.records.started(handle, spec.name, request.summary(), source, edit.estimate.usd)
                        waiting.enter_context(WAITING.hold(edit.journal_key))  # before the claim is released
                    mark = time.monotonic()
                    try:
                        with phase("wait"):
                            data = self._wait(handle, source, edit.journal_key, edit.waiter, on_progress, should_cancel)
                    except _ResumedJobCancelled:
                        edit.fresh = True  # the journalled job was cancelled: this run submits a new one
                        continue
                edit.phases["wait"] = time.monotonic() - mark
                break
        except FalError as exc:
            if edit.charge is not None and (isinstance(exc, StartDeadlineError) or getattr(exc, "never_started", False)):
                edit.charge.never_billed()  # dropped at its start deadline, or cancelled still queued: never ran
            self.records.ended_badly(edit.handle, exc)
            raise
        finally:
            if slot is not None:
                slot.give_back()  # the job is over on fal (or never began): the next frame's may start
            if edit.charge is not None:
                edit.charge.release_unless_paid()  # cached, resumed, or never submitted: it cost nothing
        waiter, note = edit.waiter, None
        if waiter.cancelled():  # the result came back although the user cancelled: fal had finished it
            waiter, note = Waiter(timeout=PAID_DOWNLOAD_TIMEOUT), LATE_CANCEL_NOTE
        try:
            outcome = self._finish(handle, data, waiter, mismatch, edit.phases, source,
                                   key=key if cacheable else None, soon=ahead is not None)
        except (JobFailedError, ImageDecodeError, OutputGoneError) as exc:
            self._forget(edit.journal_key)  # the job is over and its outputs are unusable: a re-run makes new ones
            self.records.ended_badly(handle, JobFailedError(str(exc), request_id=handle.request_id))
            raise
        outcome.estimate, outcome.note = edit.estimate, note
        with phase("bookkeeping: history"):
            self.records.finished(outcome, charge=edit.charge if source == "job" else None, model=spec.name,
                                  prompt=request.summary(), cache_key=key if cacheable else None, later=ahead is not None)
        edit.phases["total"] = time.monotonic() - started
        if on_result is not None:
            on_result(outcome)  # before the journal forgets the job: a crash in between resumes it
        self._forget(edit.journal_key)
        return outcome

    def _wait(self, handle: RequestHandle, source: str, journal_key: str, waiter: Waiter,
              on_progress: ProgressCallback, should_cancel: CancelHook) -> dict:
        """Wait for the job's result JSON, and keep the journal entry exactly while the job may still pay off."""
        remaining = waiter.remaining()
        try:
            return self.queue.wait(handle, on_progress=on_progress, should_cancel=should_cancel,
                                   timeout=None if remaining is None else max(remaining, 0.001))
        except (CancelledError, StartDeadlineError) as exc:
            if getattr(exc, "by_user", False):
                raise  # entry kept: a re-run learns from fal whether the cancel took effect
            self._forget(journal_key)
            if source == "resumed":  # an earlier run's job that never ran to its end, unbilled
                log.info("fal: journalled request %s was cancelled or dropped unstarted; submitting a new job",
                         handle.request_id)
                raise _ResumedJobCancelled() from exc
            raise
        except (JobFailedError, ValidationError):
            self._forget(journal_key)
            raise
        except JobUnknownError as exc:
            if source != "resumed":
                raise  # a job this run submitted: kept, its result may still appear
            self._forget(journal_key)  # its result URL says 404: nothing of it can be fetched any more
            raise FalError(f"The journalled request {handle.request_id} is unknown to fal with this connection "
                           f"now ({exc}); fal keeps a job's result for a limited time (an hour at most with "
                           "keep_on_fal off). Running the edit again submits a new job.", request_id=handle.request_id) from None
        except AuthError as exc:
            raise AuthError(f"{exc} The job stays journalled: once the key is accepted, running the same edit "
                            "again fetches it without a new job.", status=exc.status, request_id=handle.request_id,
                            detail=exc.detail) from None

    def _journal_key(self, key: str) -> str:
        """The journal is per connection: a job made through one queue is not visible through another."""
        return hashlib.sha256(f"{key}\n{self.config.connection_id}".encode()).hexdigest()

    def _from_cache(self, key: str, endpoint: str, mismatch: str, phases: dict[str, float]) -> EditOutcome | None:
        cache = self.cache
        if cache is None:  # (its callers ask only a client with a cache)
            return None
        with phase("bookkeeping: cache"):
            hit = cache.get(key)
        if hit is None:
            return None
        handle = self.queue.handle_for(endpoint, hit.request_id)
        try:
            result = QwenEditResult.from_json(hit.result, hit.request_id)
            decoded = decode_all(hit.blobs, [img.url for img in result.images], request_id=hit.request_id)
            outcome = self._decoded(handle, result, decoded, mismatch, phases, "cache")
        except FalError as exc:
            log.warning("fal: cached result of request %s is unusable (%s); running the edit", hit.request_id, exc)
            cache.drop(key)
            return None
        log.info("fal: result of request %s served from the cache (no new job)", hit.request_id)
        return outcome

    def _job(self, edit: _Edit) -> tuple[RequestHandle, str]:
        """The job to wait on: the journalled one for this edit, or a newly submitted one.
        Called under the journal's claim for the edit."""
        journal = self.journal
        if journal is None:
            return self._submit(edit, self._upload(edit)), "job"
        entry = None if edit.fresh else journal.pending(edit.journal_key)
        journalled = entry.handle if entry is not None else None
        if journalled is not None:
            if edit.request.seed is None and WAITING.holds(edit.journal_key):
                # A fal-picks-the-seed edit already running in this process (a duplicate frame):
                # the user asked for another random image, not for that job's.
                entry = None
            else:
                log.info("fal: resuming request %s from the journal instead of submitting again",
                         journalled.request_id)
                return journalled, "resumed"
        if entry is not None:  # sent, answer lost: its job is looked for in fal's history (submits.py)
            handle = self.find_lost_submit(journal, edit.journal_key, entry, self.lost_submit_cause(entry))
            if handle is not None:
                return handle, "resumed"
        return self._submit_journalled(journal, edit, self._upload(edit)), "job"

    def _upload(self, edit: _Edit) -> dict[str, Any]:
        """Count the edit against the spending cap, upload the inputs (or inline them), take
        the batch slot if any, and return the submit's JSON body. The cap and the slot come
        before anything is journalled or sent, so a refusal or a Cancel leaves nothing behind."""
        if edit.charge is None:
            with phase("bookkeeping: ledger"):
                edit.charge, = self.budget.reserve([edit.estimate.usd], edit.estimate.what())
        mark = time.monotonic()
        urls = list(edit.request.image_urls) + (edit.ahead.urls(edit.waiter) if edit.ahead is not None else
                                                 self.upload_prepared(edit.inputs, edit.upload_format, waiter=edit.waiter))
        with phase("body and fingerprint"):
            arguments = dataclasses.replace(edit.request, image_urls=urls).to_arguments(edit.spec)
        edit.digests = edit.ahead.digests_for(arguments) if edit.ahead is not None else {}
        edit.phases["upload"] = time.monotonic() - mark
        if edit.slot is not None:
            edit.slot.take(edit.waiter)
        return arguments

    def _forget(self, key: str) -> None:
        if self.journal is not None:
            with phase("bookkeeping: journal"):
                self.journal.finish(key)

    def _finish(self, handle: RequestHandle, data: dict, waiter: Waiter, mismatch: str,
                phases: dict[str, float], source: str, key: str | None, soon: bool = False) -> EditOutcome:
        result = QwenEditResult.from_json(data, handle.request_id)
        if not result.images:
            raise JobFailedError("The job finished but returned no images.", request_id=handle.request_id)
        mark = time.monotonic()
        # Into the cache as soon as every output's bytes are in, for one edit (``soon``) while the last one
        # decodes; waited for before the job's journal entry can go. (Kept here too: outputs fal forgets.)
        keys = [k for k in (key, None if self.config.store_io else kept_key(handle.request_id)) if k is not None]
        keeping = self.cache.keeping(keys, handle.request_id, data, soon) if self.cache is not None and keys else None
        try:
            _, decoded = download_decoded(self.transport, [img.url for img in result.images], waiter=waiter,
                                          request_id=handle.request_id, on_bytes=keeping.start if keeping else None)
            phases["download"] = time.monotonic() - mark
            return self._decoded(handle, result, decoded, mismatch, phases, source)
        except ImageDecodeError:
            if keeping is not None:
                keeping.undo()  # outputs that cannot be decoded are not served again
            raise
        finally:
            with phase("bookkeeping: cache"):
                if keeping is not None:
                    keeping.wait()

    def _decoded(self, handle: RequestHandle, result: QwenEditResult, decoded: list, mismatch: str,
                 phases: dict[str, float], source: str) -> EditOutcome:
        with phase("decode"):
            batch, mask = stack_batch(decoded, mismatch)
        if any(result.has_nsfw_concepts):
            log.warning("fal [%s]: the safety checker flagged %d of %d outputs", handle.request_id,
                        sum(result.has_nsfw_concepts), len(result.has_nsfw_concepts))
        return EditOutcome(result, batch, mask, handle, phases, source)

