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

An endpoint's own per-image limits (``InputLimits``: the Qwen-Image-2 family's "Resolution: 384-5000px
each dimension. Max size: 10MB each. Formats: JPEG, JPG, PNG (no alpha), WEBP") are met, or the input
refused, here, while inputs are prepared, so before anything is uploaded:

* a side under the minimum is refused, in both modes, saying to scale it up: the pack does not enlarge
  inputs itself (an upscale adds no detail the model could use, and which upscaler is the user's choice),
  and ``fit model`` never shrinks a side below the minimum;
* a side over the maximum: ``fit model`` scales it down (aspect kept); ``off`` refuses it;
* over the size cap once encoded (``upload_format``): ``fit model`` scales it down until it fits, in the
  format chosen (still lossless for png and webp_lossless); ``off`` refuses it. Such an input is encoded
  while it is prepared, and that encoding is the one uploaded;
* alpha, where the model takes none: flattened onto white in both modes (fal would refuse it otherwise).
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
import math
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..models.endpoints import EndpointSpec
from ..base.errors import ConfigError, InputError
from ..base.phases import phase
from .images import as_numpy, encode_png, split_batch
from .resample import downscale, frame_pixels
from ..models.pricing import Estimate, PriceLookup, estimate, table_price
from ..models.qwen import QwenEditRequest
from ..models.sizing import RESIZE_MODES, derived_output_size, fit_size

UPLOAD_FORMATS = ("png", "webp_lossless", "jpeg_95")
CONTENT_TYPES = {"png": "image/png", "webp_lossless": "image/webp", "jpeg_95": "image/jpeg"}
# fal-client's multipart threshold (fal_client 1.0.3, client.py: MULTIPART_THRESHOLD); the pack uploads in one
# request, so a larger input is refused with advice instead (after fit model, inputs are ~1 MP: never near it).
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MEGABYTE = 1_000_000  # "10MB" read as 10,000,000 bytes: the smaller reading, so nothing the pack sends is over
SHRINK_ROUNDS = 6     # fit model's tries to bring an input under its endpoint's byte cap


@dataclass(frozen=True)
class InputLimits:
    """One endpoint's stated limits on each input image (endpoints.py: image_side, image_megabytes,
    image_alpha), or None from ``of`` when it states none."""
    model: str
    side: tuple[int, int] | None = None
    megabytes: float | None = None
    alpha: bool = True

    @classmethod
    def of(cls, spec: EndpointSpec) -> "InputLimits | None":
        if spec.image_side is None and spec.image_megabytes is None and spec.image_alpha:
            return None
        return cls(spec.name, spec.image_side, spec.image_megabytes, spec.image_alpha)

    @property
    def max_bytes(self) -> int | None:
        return None if self.megabytes is None else int(self.megabytes * MEGABYTE)


@dataclass(frozen=True)
class PreparedImage:
    pixels: np.ndarray                    # uint8 [H, W, C], what is sent
    original_size: tuple[int, int]        # (width, height) before any resize
    digest: str                           # sha256 of shape and pixels: the input's identity
    # (upload_format, bytes, content type) when the endpoint's byte cap had it encoded while prepared
    encoded: tuple[str, bytes, str] | None = field(default=None, compare=False, repr=False)

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


def size_problem(size: tuple[int, int], limits: InputLimits | None, resize: str, name: str = "an input") -> str | None:
    """Why an input of ``size`` cannot go to the endpoint under ``resize``, or None (the byte cap is
    checked once it is encoded)."""
    if limits is None or limits.side is None:
        return None
    (width, height), (low, high) = size, limits.side
    span = f"{limits.model} takes {low}-{high} px on each side"
    if min(width, height) < low:
        return (f"{name} is {width}x{height} px; {span}: scale it up to at least {low} px on its shorter side "
                "first (e.g. ComfyUI's Upscale Image node), or pick a model without that limit. The pack does not "
                "enlarge inputs itself: an upscale adds no detail, and which upscaler to use is yours to choose.")
    if max(width, height) > high and resize != "fit model":
        return (f"{name} is {width}x{height} px; {span}: turn input_resize to 'fit model' (it scales the input "
                "down, the output size kept), or scale it down first.")
    if max(width, height) > high and min(width, height) * high / max(width, height) < low:
        return (f"{name} is {width}x{height} px; {span}, which no scaling of a picture this long and thin meets: "
                "crop it first.")
    return None


def sent_size(size: tuple[int, int], reads_area: int | None, resize: str,
              limits: InputLimits | None = None) -> tuple[int, int]:
    """The (width, height) an input of ``size`` goes at (before any byte-cap shrink): ``fit model``'s size
    for what the model reads, then within the endpoint's largest side."""
    if resize != "fit model":
        return size
    target = fit_size(size, reads_area) or size
    if limits is not None and limits.side is not None and max(target) > limits.side[1]:
        scale = limits.side[1] / max(target)
        target = (min(limits.side[1], math.floor(target[0] * scale)), min(limits.side[1], math.floor(target[1] * scale)))
    return target


def prepare(frame: Any, reads_area: int | None, resize: str = "fit model", *, limits: InputLimits | None = None,
            upload_format: str = "png", name: str = "an input") -> PreparedImage:
    """One ``[H, W, C]`` frame → uint8 pixels at the size to send, within ``limits`` (InputError when it
    cannot be: nothing has been uploaded then)."""
    with phase("resize"):  # (the byte cap's encodings, when an endpoint has one, counted here too)
        array = as_numpy(frame)
        original = (array.shape[1], array.shape[0])
        problem = size_problem(original, limits, resize, name)
        if problem:
            raise InputError([problem])
        pixels = frame_pixels(array, sent_size(original, reads_area, resize, limits))  # resample.py
        encoded = None
        if limits is not None:
            if not limits.alpha and pixels.shape[2] in (2, 4):
                pixels = flatten(pixels)
            if limits.max_bytes is not None:
                pixels, encoded = _within_bytes(pixels, limits, resize, upload_format, name)
        return PreparedImage(pixels, original, _digest(pixels), encoded)


def prepare_all(images: Sequence[Any], reads_area: int | None, resize: str = "fit model", *,
                limits: InputLimits | None = None, upload_format: str = "png") -> list[PreparedImage]:
    """Every frame of every IMAGE, in order (two at a time, each on every core: resample.py)."""
    frames = [frame for image in images for frame in split_batch(image)]

    def one(index: int) -> PreparedImage:
        name = f"input image {index + 1} of {len(frames)}" if len(frames) > 1 else "the input image"
        return prepare(frames[index], reads_area, resize, limits=limits, upload_format=upload_format, name=name)

    if len(frames) <= 1:
        return [one(i) for i in range(len(frames))]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fal-prep") as pool:
        return list(pool.map(one, range(len(frames))))


def flatten(pixels: np.ndarray) -> np.ndarray:
    """Grey+alpha or RGBA → grey or RGB over white (what an image viewer shows for a transparent area)."""
    colour, alpha = pixels[:, :, :-1].astype(np.float32), pixels[:, :, -1:].astype(np.float32) / 255.0
    return np.clip(colour * alpha + 255.0 * (1.0 - alpha) + 0.5, 0, 255).astype(np.uint8)


def _within_bytes(pixels: np.ndarray, limits: InputLimits, resize: str, upload_format: str,
                  name: str) -> tuple[np.ndarray, tuple[str, bytes, str]]:
    """The pixels and their encoding, under the endpoint's byte cap: ``fit model`` scales down (never a
    side below the endpoint's minimum) until it fits; ``off`` refuses."""
    cap = limits.max_bytes or 0
    low = limits.side[0] if limits.side is not None else 1
    data, content_type = _encode_pixels(pixels, upload_format)
    for _ in range(SHRINK_ROUNDS):
        if len(data) <= cap:
            return pixels, (upload_format, data, content_type)
        width, height = pixels.shape[1], pixels.shape[0]
        over = (f"{name} is {len(data) / MEGABYTE:.1f} MB as {upload_format} ({width}x{height} px); {limits.model} "
                f"takes at most {limits.megabytes:g} MB an image")
        if resize != "fit model":
            raise InputError([f"{over}: turn input_resize to 'fit model' (it scales the input down until it fits), "
                              "or pick upload_format jpeg_95."])
        # PNG and WebP bytes go roughly with the pixels; never the shorter side below the minimum, aspect kept
        scale = max(math.sqrt(cap / len(data)) * 0.95, low / min(width, height))
        smaller = (max(low, math.floor(width * scale + 1e-9)), max(low, math.floor(height * scale + 1e-9)))
        if smaller == (width, height):
            raise InputError([f"{over}, even at the smallest size it takes ({low} px on the shorter side): pick "
                              "upload_format jpeg_95."])
        pixels = downscale(pixels, smaller)
        data, content_type = _encode_pixels(pixels, upload_format)
    if len(data) <= cap:
        return pixels, (upload_format, data, content_type)
    raise InputError([f"{name} is still {len(data) / MEGABYTE:.1f} MB as {upload_format} after {SHRINK_ROUNDS} "
                      f"downscales; {limits.model} takes at most {limits.megabytes:g} MB: pick upload_format jpeg_95."])


def encode(image: PreparedImage, upload_format: str = "png") -> tuple[bytes, str]:
    """(bytes, content type) of one prepared input (the encoding its preparation made, when it made one)."""
    if image.encoded is not None and image.encoded[0] == upload_format:
        data, content_type = image.encoded[1], image.encoded[2]
    else:
        data, content_type = _encode_pixels(image.pixels, upload_format)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ConfigError(f"An input is {len(data) / 2**20:.0f} MiB encoded, above the {MAX_UPLOAD_BYTES // 2**20} MiB "
                          "a single upload takes: turn input_resize to 'fit model', or pick upload_format jpeg_95.")
    return data, content_type


def _encode_pixels(pixels: np.ndarray, upload_format: str) -> tuple[bytes, str]:
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
    return derived_output_size([None] * len(request.image_urls) + list(original), budget=spec.output_pixels)


def keep_output_size(request: QwenEditRequest, spec: EndpointSpec, inputs: Sequence[PreparedImage]) -> QwenEditRequest:
    size = output_size_to_ask(request, spec, [i.size for i in inputs], [i.original_size for i in inputs])
    return request if size == request.image_size else replace(request, image_size=size)


def estimate_run(spec: EndpointSpec, request: QwenEditRequest, input_sizes: Sequence[tuple[int, int]],
                 resize: str = "fit model", jobs: int = 1, price_of: PriceLookup = table_price) -> Estimate:
    """The estimate an edit will carry, from its inputs' sizes before any resize (the node and the CLI
    show it before anything is prepared). ``price_of``: pricing.py's price rule (the state folder's
    PriceBook.price_for where it is at hand)."""
    limits = InputLimits.of(spec)
    sent = [sent_size(size, spec.reads_area, resize, limits) for size in input_sizes]
    image_size = output_size_to_ask(request, spec, sent, input_sizes)
    hosted: list[tuple[int, int] | None] = [None] * len(request.image_urls)  # URLs: their sizes are not known
    return estimate(spec, image_size, request.num_images, [*hosted, *sent], jobs, price_of)
