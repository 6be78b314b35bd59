"""The machine's pace: how fast one core does the work a gateway's submit waits for, right now.

The bench's load meter (run.py, CpuMeter) sees other processes on this machine, not a neighbour on the
host under it. On the 2-core bench VM the same 12 MP input took 126 ms to prepare on both cores and, a
few minutes later with the meter at 0.00 cores, 171 ms; on one core 200 and 356 ms (2026-12-06). The
uplink's rows with a target weigh that CPU against a fixed wire time, so each of their runs is preceded
by a pace sample: a figure beside them says whether a miss came with slow cores.

The work is Pillow's Lanczos across a fixed strip of uint8 pixels (the pass that is most of an input's
preparation; media/resample.py), on the calling thread only.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from PIL import Image

STRIP = (4240, 656)     # a 12 MP input's width, 4 of its strips' rows (resample.STRIP_BYTES): ~45 ms
TO_WIDTH = 1248         # what fit model sends a 3:2 12 MP input at
SAMPLES = 3
_strip: Image.Image | None = None


def _image() -> Image.Image:
    global _strip
    if _strip is None:
        width, height = STRIP
        rng = np.random.default_rng(22)
        _strip = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    return _strip


def pace_ms() -> float:
    """Milliseconds of the fixed Lanczos on one core (median of ``SAMPLES``): higher is a slower machine."""
    image = _image()
    times = []
    for _ in range(SAMPLES):
        began = time.perf_counter()
        image.resize((TO_WIDTH, image.height), Image.Resampling.LANCZOS)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1e3
