"""What an edit hands back: the IMAGE batch and MASK, the result JSON, where it came from, and its cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..media.images import stack_batch
from ..models.pricing import Estimate
from ..models.qwen import QwenEditResult
from ..queue.client import RequestHandle

PAID_SOURCES = ("job",)  # a cached, resumed or fetched result costs nothing now


@dataclass
class EditOutcome:
    result: QwenEditResult
    images: np.ndarray  # IMAGE [B, H, W, 3] float32 0..1
    mask: np.ndarray    # MASK [B, H, W]: 1 - alpha, and 1 where "pad" filled
    handle: RequestHandle
    timings: dict[str, float]  # client-side phases, seconds
    source: str = "job"  # "job", "resumed" (journalled job from an earlier run), "cache" or "fetched"
    estimate: Estimate | None = None  # what this edit's job costs (pricing.py), when it made one
    note: str | None = None  # something the user should know about where this came from (a late cancel)
    billed_usd: float | None = None  # fal's X-Fal-Billable-Units × the unit price, when fal sent them

    @property
    def cost_usd_estimate(self) -> float | None:
        """What this edit's job costs now: 0 when it made none (cached, resumed, fetched); None when its
        price is unknown (models/pricing.py)."""
        return self.estimate.usd if self.estimate is not None and self.source in PAID_SOURCES else 0.0

    def info(self) -> dict[str, Any]:
        info = self.result.info()
        info["endpoint"] = self.handle.endpoint
        info["source"] = self.source
        info["cost_usd_estimate"] = self.cost_usd_estimate
        if self.estimate is not None and self.source in PAID_SOURCES:
            info["cost_estimate"] = self.estimate.text()
        info["client_timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        if self.billed_usd is not None and self.source in PAID_SOURCES:
            info["cost_usd_billed"] = self.billed_usd
        if self.note:
            info["note"] = self.note
        if any(self.result.has_nsfw_concepts):
            flagged = [i for i, f in enumerate(self.result.has_nsfw_concepts) if f]
            info["warning"] = (f"fal's safety checker flagged output(s) {flagged}: they are usually "
                               "blacked out. Change the prompt or turn the safety checker off.")
        return info


def run_info(outcomes: Sequence[EditOutcome]) -> dict[str, Any]:
    """The info of one run: the job's own for one edit; for several, each job's and the run's cost."""
    if len(outcomes) == 1:
        return outcomes[0].info()
    return {"cost_usd_estimate": total_estimate(outcomes), "jobs": [o.info() for o in outcomes]}


def total_estimate(outcomes: Sequence[EditOutcome]) -> float | None:
    """The outcomes' estimates added up; None when one of them has no known price (never a part sum
    passed off as the whole)."""
    costs = [o.cost_usd_estimate for o in outcomes]
    return None if any(cost is None for cost in costs) else round(sum(c or 0.0 for c in costs), 4)


def combine(outcomes: Sequence[EditOutcome], mismatch: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """Several outcomes → one IMAGE batch and MASK (sizes reconciled like stack_batch)."""
    if len({o.images.shape[1:] for o in outcomes}) == 1:  # one size: a plain copy, no temporaries
        return np.concatenate([o.images for o in outcomes]), np.concatenate([o.mask for o in outcomes])
    # Sizes differ: each MASK rides along as alpha, so padding and resizing treat it like the pixels.
    frames = [np.concatenate([o.images[i], 1.0 - o.mask[i][..., None]], axis=-1)
              for o in outcomes for i in range(o.images.shape[0])]
    return stack_batch(frames, mismatch)
