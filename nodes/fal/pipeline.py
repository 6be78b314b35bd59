"""The whole edit: IMAGE tensors in, IMAGE tensors out.

validate fields → encode + upload inputs → submit → wait (progress, cancel,
timeout) → download + decode outputs. Nothing is uploaded or paid for until
every field has passed validation, and Cancel is honoured before the submit
as well as during the wait.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .config import FalConfig
from .downloads import download_images
from .errors import CancelledError, FalError, JobFailedError
from .images import encode_png, split_batch, stack_batch
from .qwen import DEFAULT_ENDPOINT, QwenEditRequest, QwenEditResult
from .queue import ProgressCallback, QueueClient, RequestHandle, WaitSettings
from .storage import Uploader
from .transport import RetryPolicy, Transport
from .waiting import CancelHook, Waiter

log = logging.getLogger("fal_qwen_edit")

DEFAULT_TIMEOUT = 900.0  # seconds for the whole edit; fal jobs usually take 5-60 s


@dataclass
class EditOutcome:
    result: QwenEditResult
    images: np.ndarray  # IMAGE [B, H, W, 3] float32 0..1
    mask: np.ndarray    # MASK [B, H, W]: 1 - alpha, and 1 where "pad" filled
    handle: RequestHandle
    timings: dict[str, float]  # client-side phases, seconds

    def info(self) -> dict[str, Any]:
        info = self.result.info()
        info["endpoint"] = self.handle.endpoint
        info["client_timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        if any(self.result.has_nsfw_concepts):
            flagged = [i for i, f in enumerate(self.result.has_nsfw_concepts) if f]
            info["warning"] = (f"fal's safety checker flagged output(s) {flagged}: they are usually "
                               "blacked out. Change the prompt or turn the safety checker off.")
        return info


class FalEditClient:
    """One per connection setting; holds the pooled session and the upload cache."""

    def __init__(self, config: FalConfig, *, retry: RetryPolicy | None = None,
                 wait_settings: WaitSettings | None = None, verify: bool | str = True):
        self.config = config
        self.transport = Transport(config, retry=retry, verify=verify)
        self.queue = QueueClient(config, self.transport, wait_settings)
        self.uploader = Uploader(self.transport)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "FalEditClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def upload_images(self, images: Sequence[Any], *, waiter: Waiter | None = None) -> list[str]:
        """IMAGE tensors (each may be a batch) → one URL per image, in order."""
        frames = [frame for image in images for frame in split_batch(image)]
        waiter = waiter or Waiter()

        def one(frame: np.ndarray) -> str:
            waiter.check()
            return self.uploader.url_for(encode_png(frame), "image/png", waiter=waiter)

        if len(frames) <= 1:
            return [one(f) for f in frames]
        with ThreadPoolExecutor(max_workers=min(4, len(frames)), thread_name_prefix="fal-up") as pool:
            return list(pool.map(one, frames))

    def edit(self, request: QwenEditRequest, images: Sequence[Any] = (), *,
             endpoint: str = DEFAULT_ENDPOINT, on_progress: ProgressCallback = None,
             should_cancel: CancelHook = None, timeout: float = DEFAULT_TIMEOUT,
             mismatch: str = "pad") -> EditOutcome:
        """Run one edit. ``images`` are IMAGE tensors whose frames are appended to
        ``request.image_urls`` (already-hosted URLs may be given there directly)."""
        request.validate(check_urls=False)  # fields first: nothing is uploaded for a bad request
        waiter = Waiter(should_cancel, timeout)
        phases: dict[str, float] = {}
        start = time.monotonic()

        urls = list(request.image_urls) + self.upload_images(images, waiter=waiter)
        request = dataclasses.replace(request, image_urls=urls)
        arguments = request.to_arguments()
        phases["upload"] = time.monotonic() - start

        waiter.check()  # last chance to cancel for free
        mark = time.monotonic()
        handle = self.queue.submit(endpoint, arguments, waiter=waiter)
        phases["submit"] = time.monotonic() - mark

        mark = time.monotonic()
        remaining = waiter.remaining()
        data = self.queue.wait(handle, on_progress=on_progress, should_cancel=should_cancel,
                               timeout=None if remaining is None else max(remaining, 0.001))
        phases["wait"] = time.monotonic() - mark

        result = QwenEditResult.from_json(data, handle.request_id)
        if not result.images:
            raise JobFailedError("The job finished but returned no images.", request_id=handle.request_id)
        mark = time.monotonic()
        decoded = download_images(self.transport, [img.url for img in result.images],
                                  waiter=waiter, request_id=handle.request_id)
        batch, mask = stack_batch(decoded, mismatch)
        phases["download"] = time.monotonic() - mark
        phases["total"] = time.monotonic() - start
        if any(result.has_nsfw_concepts):
            log.warning("fal [%s]: the safety checker flagged %d of %d outputs", handle.request_id,
                        sum(result.has_nsfw_concepts), len(result.has_nsfw_concepts))
        return EditOutcome(result, batch, mask, handle, phases)

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
