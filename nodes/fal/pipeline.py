"""The whole edit: IMAGE tensors in, IMAGE tensors out.

validate fields → encode inputs → result cache? → journalled job to resume?
→ upload → submit (journalled) → wait (progress, cancel, timeout) → download
→ cache → decode. Nothing is uploaded or paid for until every field has
passed validation; Cancel is honoured before the submit as well as during
the wait; a job is never submitted twice for one edit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .config import FalConfig
from .downloads import decode_all, download_all
from .errors import CancelledError, FalError, HTTPStatusError, JobFailedError, ValidationError
from .images import encode_png, split_batch, stack_batch
from .journal import Journal, request_key
from .qwen import DEFAULT_ENDPOINT, QwenEditRequest, QwenEditResult
from .queue import ProgressCallback, QueueClient, RequestHandle, WaitSettings
from .result_cache import ResultCache
from .storage import Uploader
from .transport import RetryPolicy, Transport
from .waiting import CancelHook, Waiter

log = logging.getLogger("fal_qwen_edit")

DEFAULT_TIMEOUT = 900.0  # seconds for the whole edit; fal jobs usually take 5-60 s
ENDED = (JobFailedError, CancelledError, ValidationError)  # the job is over: nothing to resume


@dataclass
class EditOutcome:
    result: QwenEditResult
    images: np.ndarray  # IMAGE [B, H, W, 3] float32 0..1
    mask: np.ndarray    # MASK [B, H, W]: 1 - alpha, and 1 where "pad" filled
    handle: RequestHandle
    timings: dict[str, float]  # client-side phases, seconds
    source: str = "job"  # "job", "resumed" (journalled job from an earlier run) or "cache"

    def info(self) -> dict[str, Any]:
        info = self.result.info()
        info["endpoint"] = self.handle.endpoint
        info["source"] = self.source
        info["client_timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        if any(self.result.has_nsfw_concepts):
            flagged = [i for i, f in enumerate(self.result.has_nsfw_concepts) if f]
            info["warning"] = (f"fal's safety checker flagged output(s) {flagged}: they are usually "
                               "blacked out. Change the prompt or turn the safety checker off.")
        return info


@dataclass
class _Inputs:
    pngs: list[bytes]
    identities: list[str] = field(default_factory=list)  # content hash per image, for request_key


class FalEditClient:
    """One per connection setting; holds the pooled session, upload cache, journal and result cache."""

    def __init__(self, config: FalConfig, *, retry: RetryPolicy | None = None,
                 wait_settings: WaitSettings | None = None, verify: bool | str = True,
                 journal: Journal | None = None, cache: ResultCache | None = None):
        self.config = config
        self.transport = Transport(config, retry=retry, verify=verify)
        self.queue = QueueClient(config, self.transport, wait_settings)
        self.uploader = Uploader(self.transport)
        self.journal = journal
        self.cache = cache

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "FalEditClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def encode_frames(images: Sequence[Any]) -> list[bytes]:
        frames = [frame for image in images for frame in split_batch(image)]
        if len(frames) <= 1:
            return [encode_png(f) for f in frames]
        with ThreadPoolExecutor(max_workers=min(4, len(frames)), thread_name_prefix="fal-png") as pool:
            return list(pool.map(encode_png, frames))

    def upload_pngs(self, pngs: Sequence[bytes], *, waiter: Waiter | None = None) -> list[str]:
        waiter = waiter or Waiter()

        def one(png: bytes) -> str:
            waiter.check()
            return self.uploader.url_for(png, "image/png", waiter=waiter)

        if len(pngs) <= 1:
            return [one(p) for p in pngs]
        with ThreadPoolExecutor(max_workers=min(4, len(pngs)), thread_name_prefix="fal-up") as pool:
            return list(pool.map(one, pngs))

    def upload_images(self, images: Sequence[Any], *, waiter: Waiter | None = None) -> list[str]:
        """IMAGE tensors (each may be a batch) → one URL per image, in order."""
        return self.upload_pngs(self.encode_frames(images), waiter=waiter)

    def result_by_id(self, request_id: str, *, endpoint: str = DEFAULT_ENDPOINT, mismatch: str = "pad",
                     should_cancel: CancelHook = None, timeout: float = 120.0) -> EditOutcome:
        """The outputs of any earlier request, fetched (not re-run: free) from fal's queue."""
        waiter = Waiter(should_cancel, timeout)
        handle = self.queue.handle_for(endpoint, request_id)
        data = self.queue.result(handle, waiter=waiter)
        return self._finish(handle, data, waiter, mismatch, {}, "fetched", key=None)

    def edit(self, request: QwenEditRequest, images: Sequence[Any] = (), *,
             endpoint: str = DEFAULT_ENDPOINT, on_progress: ProgressCallback = None,
             should_cancel: CancelHook = None, timeout: float = DEFAULT_TIMEOUT,
             mismatch: str = "pad", fresh: bool = False) -> EditOutcome:
        """Run one edit. ``images`` are IMAGE tensors whose frames are appended to
        ``request.image_urls``. ``fresh`` skips the result cache and journal resume."""
        request.validate(check_urls=False)  # fields first: nothing is uploaded for a bad request
        waiter = Waiter(should_cancel, timeout)
        phases: dict[str, float] = {}
        start = time.monotonic()
        inputs = _Inputs(self.encode_frames(images))
        inputs.identities = [hashlib.sha256(x.encode()).hexdigest() for x in request.image_urls] + \
            [hashlib.sha256(png).hexdigest() for png in inputs.pngs]
        key = request_key(endpoint, request.arguments_without_images(), inputs.identities)
        phases["encode"] = time.monotonic() - start

        if self.cache is not None and request.seed is not None and not fresh:
            hit = self.cache.get(key)
            if hit is not None:
                handle = self.queue.handle_for(endpoint, hit.request_id)
                result = QwenEditResult.from_json(hit.result, hit.request_id)
                return self._decoded(handle, result, hit.blobs, mismatch, phases, "cache")

        handle = self.journal.pending(key) if self.journal is not None and not fresh else None
        source = "job"
        if handle is not None:
            source = "resumed"
            log.info("fal: resuming request %s from the journal instead of submitting again",
                     handle.request_id)
        else:
            mark = time.monotonic()
            urls = list(request.image_urls) + self.upload_pngs(inputs.pngs, waiter=waiter)
            arguments = dataclasses.replace(request, image_urls=urls).to_arguments()
            phases["upload"] = time.monotonic() - mark
            waiter.check()  # last chance to cancel for free
            mark = time.monotonic()
            handle = self.queue.submit(endpoint, arguments, waiter=waiter)
            phases["submit"] = time.monotonic() - mark
            if self.journal is not None:
                self.journal.record(key, handle)

        mark = time.monotonic()
        remaining = waiter.remaining()
        try:
            data = self.queue.wait(handle, on_progress=on_progress, should_cancel=should_cancel,
                                   timeout=None if remaining is None else max(remaining, 0.001))
        except ENDED:
            self._forget(key)
            raise
        except HTTPStatusError as exc:
            if source == "resumed" and exc.status == 404:
                self._forget(key)  # fal no longer knows the journalled job: say so, do not resubmit
                raise FalError(f"The journalled request {handle.request_id} is unknown to fal now; run the "
                               "edit again to submit a new job.", request_id=handle.request_id) from None
            raise
        phases["wait"] = time.monotonic() - mark
        outcome = self._finish(handle, data, waiter, mismatch, phases, source,
                               key=key if request.seed is not None else None)
        self._forget(key)
        phases["total"] = time.monotonic() - start
        return outcome

    def _forget(self, key: str) -> None:
        if self.journal is not None:
            self.journal.finish(key)

    def _finish(self, handle: RequestHandle, data: dict, waiter: Waiter, mismatch: str,
                phases: dict[str, float], source: str, key: str | None) -> EditOutcome:
        result = QwenEditResult.from_json(data, handle.request_id)
        if not result.images:
            raise JobFailedError("The job finished but returned no images.", request_id=handle.request_id)
        mark = time.monotonic()
        blobs = download_all(self.transport, [img.url for img in result.images], waiter=waiter,
                             request_id=handle.request_id)
        phases["download"] = time.monotonic() - mark
        outcome = self._decoded(handle, result, blobs, mismatch, phases, source)
        if key is not None and self.cache is not None:
            self.cache.put(key, handle.request_id, data, blobs)
        return outcome

    def _decoded(self, handle: RequestHandle, result: QwenEditResult, blobs: list[bytes], mismatch: str,
                 phases: dict[str, float], source: str) -> EditOutcome:
        decoded = decode_all(blobs, [img.url for img in result.images], request_id=handle.request_id)
        batch, mask = stack_batch(decoded, mismatch)
        if any(result.has_nsfw_concepts):
            log.warning("fal [%s]: the safety checker flagged %d of %d outputs", handle.request_id,
                        sum(result.has_nsfw_concepts), len(result.has_nsfw_concepts))
        return EditOutcome(result, batch, mask, handle, phases, source)

    def edit_each(self, request: QwenEditRequest, batch: Any, references: Sequence[Any] = (), *,
                  concurrency: int = 8, **options: Any) -> list[EditOutcome]:
        """One edit per frame of ``batch`` (each with ``references`` appended), run
        ``concurrency`` at a time. Every job is waited for even when one fails, so
        no paid result is dropped; then the first failure is raised with a summary."""
        request.validate(check_urls=False)
        frames = split_batch(batch)
        if not frames:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(frames))),
                                thread_name_prefix="fal-edit") as pool:
            futures = [pool.submit(self.edit, request, [frame[None], *references], **options)
                       for frame in frames]
            outcomes, failures = [], []
            for index, future in enumerate(futures):
                try:
                    outcomes.append(future.result())
                except FalError as exc:
                    failures.append((index, exc))
        if failures:
            index, first = failures[0]
            if isinstance(first, CancelledError):
                raise first
            done = ", ".join(o.handle.request_id for o in outcomes) or "none"
            raise FalError(f"{len(failures)} of {len(frames)} edits failed; frame {index}: {first} "
                           f"(finished request ids: {done})", request_id=first.request_id) from first
        return outcomes


def combine(outcomes: Sequence[EditOutcome], mismatch: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """Several outcomes → one IMAGE batch and MASK (sizes reconciled like stack_batch)."""
    frames = [np.concatenate([o.images[i], 1.0 - o.mask[i][..., None]], axis=-1)
              for o in outcomes for i in range(o.images.shape[0])]
    return stack_batch(frames, mismatch)
