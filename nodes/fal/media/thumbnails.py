"""Small pictures of a job's outputs for the job history: at most 256 px on the long side, as WebP.

Made from the uint8 pixels the edit already decoded (decode guards included), so nothing is decoded
twice; about 10-20 KB each, so thousands of jobs keep their pictures in a few tens of MB.
"""

from __future__ import annotations

import io
from typing import Iterable

import numpy as np
from PIL import Image

MAX_SIDE = 256
QUALITY = 80


def thumbnail_webp(pixels: np.ndarray, max_side: int = MAX_SIDE) -> bytes:
    """``pixels``: one image, HxWxC uint8 (C = 1, 3 or 4) or float 0..1."""
    if pixels.dtype != np.uint8:
        pixels = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    image = Image.fromarray(pixels)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=QUALITY, method=4)
    return out.getvalue()


def thumbnails_of(images: np.ndarray | Iterable[np.ndarray]) -> list[bytes]:
    """One thumbnail per image of an IMAGE batch [B, H, W, C]."""
    return [thumbnail_webp(np.asarray(image)) for image in images]
