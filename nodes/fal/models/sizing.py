"""How big the inputs need to be, and how big the output will be: the Qwen edit pipeline's size rules.

fal's Qwen image edit endpoints follow diffusers' ``QwenImageEditPlusPipeline``
(2509 and 2511 alike) and ``QwenImageEditPipeline`` (the first release), read at
huggingface/diffusers 58eb52c0 (2026-08-23),
``src/diffusers/pipelines/qwenimage/pipeline_qwenimage_edit_plus.py``:

* every input is resized, keeping its aspect ratio, to
  ``calculate_dimensions(1024 * 1024, w / h)`` for the VAE (``VAE_IMAGE_SIZE``)
  and to about 384 × 384 for the vision-language encoder
  (``CONDITION_IMAGE_SIZE``), with Lanczos; pixels beyond that are never read;
* with no height/width, the output is ``calculate_dimensions(1024 * 1024, w / h)``
  of the *last* input (the first, in the one-image pipeline), floored to a
  multiple of 16.

``fit model`` therefore sends each input at the size the VAE reads
(``fit_size``), when it is more than ``MARGIN`` times larger in area; an input
within that margin is sent untouched, so that it is resampled once, by fal.
Sent at that size, fal's own resize of it is the identity (same size).

The hosted-only Qwen-Image-2 family (2, 2 Pro, Max) states another rule in its schema: "If not provided,
the size of the final input image will be used. Total number of pixels must be between 512x512 and
2048x2048." ``budget_output_size`` reads it as the final input's own size when it lies in that budget,
else that size scaled (aspect kept) to the nearer end of it; fal does not say how it rounds, so the
pack floors a downscale and ceils an upscale, which keeps the result inside the budget.
"""

from __future__ import annotations

import math
from typing import Sequence

VAE_AREA = 1024 * 1024        # diffusers VAE_IMAGE_SIZE
CONDITION_AREA = 384 * 384    # diffusers CONDITION_IMAGE_SIZE (what the vision-language encoder reads)
OUTPUT_AREA = 1024 * 1024     # the pipeline's output area when no size is given
MARGIN = 1.25                 # an input at most this much larger (in area) than what is read goes as it is
RESIZE_MODES = ("fit model", "off")


def calculate_dimensions(target_area: int, ratio: float) -> tuple[int, int]:
    """diffusers' ``calculate_dimensions``: (width, height) of ``target_area`` at ``ratio`` = w / h,
    each side rounded to a multiple of 32 (Python's round: halves to even)."""
    width = math.sqrt(target_area * ratio)
    height = width / ratio
    return round(width / 32) * 32, round(height / 32) * 32


def fit_size(size: tuple[int, int], reads_area: int | None) -> tuple[int, int] | None:
    """The size ``fit model`` sends an input of ``size`` at, or None to send it as it is."""
    width, height = size
    if reads_area is None or width * height <= reads_area * MARGIN:
        return None
    target = calculate_dimensions(reads_area, width / height)
    return target if target[0] * target[1] < width * height else None


def derived_output_size(input_sizes: Sequence[tuple[int, int] | None], last: bool = True,
                        budget: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The output (width, height) the endpoint derives when no size is given, from the final input
    (``last``) or the first; None when that input's size is unknown (a URL). ``budget``: the endpoint's
    stated output pixel range (the Qwen-Image-2 family), else the open models' pipeline rule."""
    if not input_sizes:
        return None
    size = input_sizes[-1] if last else input_sizes[0]
    if size is None:
        return None
    if budget is not None:
        return budget_output_size(size, budget)
    width, height = calculate_dimensions(OUTPUT_AREA, size[0] / size[1])
    return width // 16 * 16, height // 16 * 16


def budget_output_size(size: tuple[int, int], budget: tuple[int, int]) -> tuple[int, int]:
    """``size`` as it is when its pixels lie in ``budget`` (low, high), else scaled, aspect kept, to the
    nearer end: floored when shrunk, ceiled when grown, so the result stays inside the budget."""
    width, height = size
    low, high = budget
    pixels = width * height
    if low <= pixels <= high:
        return width, height
    scale = math.sqrt((high if pixels > high else low) / pixels)
    if pixels > high:
        return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    return math.ceil(width * scale), math.ceil(height * scale)
