"""An input frame to uint8 pixels at the size to send: Pillow's one call, byte for byte, on every core.

``input_resize: fit model`` is Pillow's Lanczos with ``reducing_gap=3`` on the uint8 pixels (inputs.py).
Made whole, a 12 MP frame is converted to uint8 (36 MB), copied into Pillow (48 MB) and filtered on one
core: 190-280 ms on the 2-core bench machine, most of an edit's time before its first byte on a thin
uplink.

Pillow filters a downscale in two passes through an 8-bit intermediate, across then down (for the sizes
fit model sends; see ``_two_passes``). The pass across treats each row alone, so it is made here a strip
of rows at a time, each strip converted, copied and filtered while it is in the CPU's cache; the pass
down treats each column alone, so it is made a band of columns at a time, with the coefficients of the
whole image's pass (they depend on the heights only). Strips and bands go to every core. The result is
the one call's, byte for byte (tests/test_resample.py), so an input's identity (its pixels' digest:
result cache, journal, batch resume) is the one earlier releases gave it. Where Pillow's call does more
than those two passes (alpha, which it premultiplies; a box ``reduce`` first, for inputs over 6x the
size to send on a side; the pass down first), the one call is made, as before.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable

import numpy as np
from PIL import Image

from .images import as_numpy, to_uint8

LANCZOS, REDUCING_GAP = Image.Resampling.LANCZOS, 3.0
STRIP_BYTES = 8 << 20  # of float32 input per strip: 2/4/8/16/32 MB took 201/168/156/169/189 ms a 12 MP input
HELPERS = max(1, min(3, (os.cpu_count() or 2) - 1))  # with the calling thread: one thread per core, up to 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=HELPERS, thread_name_prefix="fal-resample")
        return _pool


def downscale(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``[H, W, C]`` → ``size`` (width, height) with Pillow's one call (the reference)."""
    return _resized(pixels, size, REDUCING_GAP)


def frame_pixels(frame: Any, size: tuple[int, int]) -> np.ndarray:
    """A ``[H, W, C]`` frame (float 0..1 or uint8) → uint8 ``[h, w, C]`` at ``size``: ``downscale(to_uint8
    (frame), size)`` byte for byte (or just ``to_uint8`` when ``size`` is the frame's own)."""
    array = as_numpy(frame)
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    if (width, height) == tuple(size):
        return _across(array, width)
    if channels not in (1, 3) or not _two_passes((width, height), size):
        return downscale(to_uint8(array), size)
    return _down(_across(array, size[0]), size[1])


def _two_passes(size: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether Pillow's call is just its two passes, across first: no box ``reduce`` before them
    (Image.resize: a factor ``int(side / target side / reducing_gap)`` above 1 on either side), both sides
    shrink or stay, and the pass across comes first. Pillow 13 runs the pass down first when the height
    loses more than twice the pixels the width loses (Resample.c, ImagingResampleInner:
    ``horizontal_first``); earlier releases always run across first, so where both agree is used here."""
    (width, height), (new_width, new_height) = size, target
    factors = [int(side / new / REDUCING_GAP) for side, new in zip(size, target)]
    across_first = not (height - new_height > 0 and height - new_height > (width - new_width) * 2)
    return all(f <= 1 for f in factors) and new_width <= width and new_height <= height and across_first


def _across(array: np.ndarray, width: int) -> np.ndarray:
    """uint8 of ``array``, each row filtered across to ``width`` (its own: only converted), a strip of rows
    at a time (converted, copied into Pillow and filtered while it is in the CPU's cache)."""
    height, channels = array.shape[0], array.shape[2]
    out = np.empty((height, width, channels), dtype=np.uint8)
    rows = max(1, STRIP_BYTES // max(1, array[0].size * 4))

    def strip(top: int) -> None:
        pixels = to_uint8(array[top:top + rows])
        if width != array.shape[1]:
            pixels = _resized(pixels, (width, pixels.shape[0]))
        out[top:top + rows] = pixels

    _on_every_core([partial(strip, top) for top in range(0, height, rows)])
    return out


def _down(across: np.ndarray, height: int) -> np.ndarray:
    """The pass down, a band of columns at a time: each column is filtered alone, with the coefficients
    of the whole image's pass (they depend on the heights only)."""
    width = across.shape[1]
    out = np.empty((height, width, across.shape[2]), dtype=np.uint8)
    bands = [(width * i // (HELPERS + 1), width * (i + 1) // (HELPERS + 1)) for i in range(HELPERS + 1)]

    def band(left: int, right: int) -> None:
        out[:, left:right] = _resized(np.ascontiguousarray(across[:, left:right]), (right - left, height))

    _on_every_core([partial(band, left, right) for left, right in bands if right > left])
    return out


def _resized(pixels: np.ndarray, size: tuple[int, int], reducing_gap: float | None = None) -> np.ndarray:
    """Pillow's Lanczos of uint8 ``[H, W, C]`` to ``size`` (here one pass: ``size`` differs on one side)."""
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    out = np.asarray(image.resize(size, LANCZOS, reducing_gap=reducing_gap))
    return out[:, :, None] if out.ndim == 2 else out


def _on_every_core(pieces: list[Callable[[], None]]) -> None:
    """Run ``pieces`` on this thread and the helpers, each piece taken by whichever is free (numpy and
    Pillow release the GIL); the first failure is raised once all have stopped."""
    queue = iter(pieces)
    lock = threading.Lock()
    failed = threading.Event()

    def work() -> None:
        while not failed.is_set():
            with lock:
                piece = next(queue, None)
            if piece is None:
                return
            try:
                piece()
            except BaseException:
                failed.set()  # the others stop after the piece they are on
                raise

    helpers = [_executor().submit(work) for _ in range(min(HELPERS, len(pieces) - 1))]
    try:
        work()
    finally:
        for helper in helpers:  # one not started yet (the pool busy with another caller's) is not waited for
            if not helper.cancel():
                helper.exception()  # waits: no helper is left writing into the caller's arrays
    for helper in helpers:
        if not helper.cancelled():
            helper.result()
