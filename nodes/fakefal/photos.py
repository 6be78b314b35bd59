"""Photo-like test images, for tests and the bench's "real photos" section.

Not flat colours (which PNG shrinks to nothing) and not pure noise (which it
cannot shrink at all): smooth gradients and broad waves, like a scene's light,
plus sensor-like noise that is mostly shared by the three channels (luminance
noise, σ ≈ 6 levels) with a little of its own per channel (chroma noise, σ ≈ 2).
As lossless PNG such an image takes about 2 bytes per pixel, in the range of
real camera photos (a 12 MP photo: ~20-25 MB).
"""

from __future__ import annotations

import numpy as np


def synthetic_photo(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 ``[H, W, 3]``."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    phase = rng.uniform(0, 6.28, 3).astype(np.float32)
    light = 0.55 + 0.25 * np.sin(7.0 * x + 3.0 * y + phase[0]) * np.cos(5.0 * y - 2.0 * x + phase[1])
    image = np.empty((height, width, 3), dtype=np.float32)
    for channel, tint in enumerate((1.0, 0.85, 0.7)):
        image[:, :, channel] = (light * tint + 0.15 * np.sin(11.0 * x * (channel + 1) + phase[2])) * 220.0
    image += rng.normal(0.0, 6.0, (height, width, 1)).astype(np.float32)   # luminance noise, shared
    image += rng.normal(0.0, 2.0, (height, width, 3)).astype(np.float32)   # chroma noise, per channel
    return np.clip(image, 0, 255).astype(np.uint8)
