"""Per-frame batch mode: one edit per frame of ``image_1``, at most ``concurrency`` jobs on fal at once.

Pipelined: up to ``concurrency`` more frames are prepared (in frame order, two
at a time) and uploaded while the jobs run, and a job's slot passes to the
next frame as soon as its result is in, before its outputs download. The whole
batch is counted against the spending cap before its first upload. Every job is
waited for even when one fails, so no paid result is dropped; then the first
failure is raised with a summary.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from ..models.endpoints import DEFAULT_ENDPOINT, spec_for
from ..base.errors import CancelledError, FalError
from ..media.images import split_batch
from ..media.inputs import InputLimits, check_modes, estimate_run, prepare, prepare_all
from ..models.pricing import PriceLookup, table_price
from .outcome import EditOutcome
from ..models.qwen import QwenEditRequest
from ..queue.job_slots import JobSlots
from ..state.budget import Budget

# The pipeline's edit of already prepared inputs (FalEditClient._edit_encoded): handed in, so that
# batch mode sits beside the pipeline without importing it.
EditPrepared = Callable[..., EditOutcome]


def edit_each(edit_prepared: EditPrepared, budget: Budget, request: QwenEditRequest, batch: Any,
              references: Sequence[Any] = (), *, concurrency: int = 8, price_of: PriceLookup = table_price,
              **options: Any) -> list[EditOutcome]:
    """One edit per frame of ``batch`` (each with ``references`` appended); options as ``FalEditClient.edit``;
    ``price_of``: the client's price rule (models/pricing.py)."""
    spec = spec_for(options.pop("model", None), options.pop("endpoint", DEFAULT_ENDPOINT))
    resize = options.pop("input_resize", "fit model")
    check_modes(resize, options.get("upload_format", "png"))
    request.validate(spec, images_to_come=None)
    started = time.monotonic()
    frames = split_batch(batch)
    if not frames:
        return []
    request.validate(spec, images_to_come=1 + sum(len(split_batch(r)) for r in references))
    # The endpoint's per-image limits, before the first upload: the references, and the first frame, whose
    # size every frame of the batch shares (the byte cap is met as each frame is prepared).
    prepared = {"limits": InputLimits.of(spec), "upload_format": options.get("upload_format", "png")}
    shared = prepare_all(references, spec.reads_area, resize, **prepared)
    first = prepare(frames[0], spec.reads_area, resize, name="image_1 frame 1", **prepared)
    cost = estimate_run(spec, request, [image.original_size for image in (first, *shared)], resize, len(frames),
                        price_of)
    # Counted whole, before the first upload: a batch that would cross the cap starts nothing (nor one of
    # unknown price while a cap is set: state/budget.py).
    per_frame = None if cost.usd is None else cost.usd / len(frames)
    charges = budget.reserve([per_frame] * len(frames), cost.what())
    concurrency = max(1, concurrency)
    slots = JobSlots(concurrency)
    tickets = [slots.ticket() for _ in frames]

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fal-png") as encoder, \
            ThreadPoolExecutor(max_workers=min(2 * concurrency, len(frames)), thread_name_prefix="fal-edit") as pool:
        def one(index: int) -> EditOutcome:
            try:
                if index >= concurrency:
                    # The next frames are prepared while the jobs run, not while the first
                    # ones are still being uploaded and submitted (same cores, same uplink).
                    tickets[index - concurrency].settled.wait()
                image = first if index == 0 else encoder.submit(  # in frame order
                    prepare, frames[index], spec.reads_area, resize, name=f"image_1 frame {index + 1}",
                    **prepared).result()
                return edit_prepared(request, [image, *shared], spec, started=started, resize=resize,
                                            slot=tickets[index], charge=charges[index], **options)
            finally:
                tickets[index].give_back()  # also settles it when the edit failed before its submit
                charges[index].release_unless_paid()

        futures = [pool.submit(one, index) for index in range(len(frames))]
        outcomes, failures = [], []
        for index, future in enumerate(futures):
            try:
                outcomes.append(future.result())
            except FalError as exc:
                failures.append((index, exc))
    if failures:
        index, error = failures[0]
        if isinstance(error, CancelledError):
            raise error
        done = ", ".join(o.handle.request_id for o in outcomes) or "none"
        raise FalError(f"{len(failures)} of {len(frames)} edits failed; frame {index}: {error} "
                       f"(finished request ids: {done})", request_id=error.request_id) from error
    return outcomes
