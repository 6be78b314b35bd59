"""Input images on their way to fal: resized to what the model reads, and encoded for upload.

``input_resize``: ``fit model`` (the default) downscales an input larger than
what the endpoint reads (sizing.py) in uint8 with Pillow's Lanczos after a box
``reduce`` (``reducing_gap=3``: Pillow's own two-step downscale, as good as
plain Lanczos at a fraction of the time); ``off`` sends the pixels as they are.

``upload_format``: lossless PNG (the default; the pack's fast encoder, see
images.py), lossless WebP (Pillow, smaller, slower), or JPEG at quality 95
(smallest, lossy, no alpha). The bench compares their bytes and times.

An input's identity (result cache, journal) is its prepared pixels, so an edit
whose inputs were resized differently is a different edit.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..models.endpoints import EndpointSpec
from ..base.errors import ConfigError
from .images import encode_png, split_batch, to_uint8
from ..models.pricing import Estimate, estimate
from ..models.qwen import QwenEditRequest
from ..models.sizing import RESIZE_MODES, derived_output_size, fit_size

UPLOAD_FORMATS = ("png", "webp_lossless", "jpeg_95")
CONTENT_TYPES = {"png": "image/png", "webp_lossless": "image/webp", "jpeg_95": "image/jpeg"}
# fal-client's multipart threshold (fal_client 1.0.3, client.py: MULTIPART_THRESHOLD); the pack uploads in one
# request, so a larger input is refused with advice instead (after fit model, inputs are ~1 MP: never near it).
MAX_UPLOAD_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class PreparedImage:
    pixels: np.ndarray                    # uint8 [H, W, C], what is sent
    original_size: tuple[int, int]        # (width, height) before any resize
    digest: str                           # sha256 of shape and pixels: the input's identity

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def resized(self) -> bool:
        return self.size != self.original_size


def check_modes(resize: str, upload_format: str) -> None:
    if resize not in RESIZE_MODES:
        raise ConfigError(f"input_resize {resize!r} is not known: use {' or '.join(RESIZE_MODES)}.")
    if upload_format not in UPLOAD_FORMATS:
        raise ConfigError(f"upload_format {upload_format!r} is not known: use one of {', '.join(UPLOAD_FORMATS)}.")


def prepare(frame: Any, reads_area: int | None, resize: str = "fit model") -> PreparedImage:
    """One ``[H, W, C]`` frame → uint8 pixels at the size to send."""
    pixels = to_uint8(frame)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    original = (pixels.shape[1], pixels.shape[0])
    target = fit_size(original, reads_area) if resize == "fit model" else None
    if target is not None:
        pixels = downscale(pixels, target)
    return PreparedImage(pixels, original, _digest(pixels))


def prepare_all(images: Sequence[Any], reads_area: int | None, resize: str = "fit model") -> list[PreparedImage]:
    """Every frame of every IMAGE, in order (two at a time: Pillow and hashlib release the GIL)."""
    frames = [frame for image in images for frame in split_batch(image)]
    if len(frames) <= 1:
        return [prepare(frame, reads_area, resize) for frame in frames]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fal-prep") as pool:
        return list(pool.map(lambda frame: prepare(frame, reads_area, resize), frames))


def downscale(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    channels = pixels.shape[2]
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
    small = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = np.asarray(small)
    return out[:, :, None] if out.ndim == 2 else out


def encode(image: PreparedImage, upload_format: str = "png") -> tuple[bytes, str]:
    """(bytes, content type) of one prepared input."""
    pixels = image.pixels
    if upload_format == "png":
        data = encode_png(pixels)
    else:
        picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
        buffer = io.BytesIO()
        if upload_format == "webp_lossless":
            picture.save(buffer, "WEBP", lossless=True, quality=50, method=0)  # fastest: ~13 % under PNG
        else:  # jpeg_95: no alpha in JPEG
            picture.convert("RGB" if pixels.shape[2] != 1 else "L").save(buffer, "JPEG", quality=95)
        data = buffer.getvalue()
    if len(data) > MAX_UPLOAD_BYTES:
        raise ConfigError(f"An input is {len(data) / 2**20:.0f} MiB encoded, above the {MAX_UPLOAD_BYTES // 2**20} MiB "
                          "a single upload takes: turn input_resize to 'fit model', or pick upload_format jpeg_95.")
    return data, CONTENT_TYPES[upload_format]


def _digest(pixels: np.ndarray) -> str:
    digest = hashlib.sha256(repr(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).data.cast("B"))  # .data: the array's memoryview
    return digest.hexdigest()



def output_size_to_ask(request: QwenEditRequest, spec: EndpointSpec, sent: Sequence[tuple[int, int]],
                       original: Sequence[tuple[int, int]]):
    """The image_size to send: the request's own; or, when fal derives the output size from the final
    input and that input was downscaled, the size fal would have derived from the original
    (sizing.py), so the resize never changes the output."""
    if request.image_size is not None or spec.size_when_omitted != "input" or not sent or sent[-1] == original[-1]:
        return request.image_size
    return derived_output_size([None] * len(request.image_urls) + list(original))


def keep_output_size(request: QwenEditRequest, spec: EndpointSpec, inputs: Sequence[PreparedImage]) -> QwenEditRequest:
    size = output_size_to_ask(request, spec, [i.size for i in inputs], [i.original_size for i in inputs])
    return request if size == request.image_size else replace(request, image_size=size)


def estimate_run(spec: EndpointSpec, request: QwenEditRequest, input_sizes: Sequence[tuple[int, int]],
                 resize: str = "fit model", jobs: int = 1) -> Estimate:
    """The estimate an edit will carry, from its inputs' sizes before any resize (the node and the CLI
    show it before anything is prepared)."""
    sent = [(fit_size(size, spec.reads_area) or size) if resize == "fit model" else size for size in input_sizes]
    image_size = output_size_to_ask(request, spec, sent, input_sizes)
    hosted: list[tuple[int, int] | None] = [None] * len(request.image_urls)  # URLs: their sizes are not known
    return estimate(spec, image_size, request.num_images, [*hosted, *sent], jobs)
