"""Image codecs between ComfyUI IMAGE tensors and encoded bytes.

A ComfyUI IMAGE is float32 ``[B, H, W, C]`` in 0..1 (a torch tensor). This
module works on anything ``numpy.asarray`` understands, so it never imports
torch; the node layer wraps results with ``torch.from_numpy`` (no copy).

Encoding: our own PNG writer, because Pillow's encoder tries every row filter
and took 107 ms for a 1 MP photo-like image here. We use the "Up" filter
(one vectorised numpy subtraction) and zlib's run-length strategy, split over
threads (zlib releases the GIL): ~4x faster and a smaller file than Pillow's
default level (measurements in bench/).

Decoding: Pillow, behind a pixel cap checked from the header before any
pixel is decoded (decompression bombs), and a clear error for non-images.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np
from PIL import Image

from ..base.errors import ImageDecodeError

MAX_PIXELS = 64_000_000  # 8000 x 8000: above any fal output, far below a bomb
PARALLEL_MIN_BYTES = 1 << 20  # below this, thread hand-off costs more than it saves
MISMATCH_MODES = ("pad", "resize", "error")

_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → PNG colour type (grey, grey+alpha, RGB, RGBA)
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fal-png")
    return _pool


# ----------------------------------------------------------------- tensors
def as_numpy(images) -> np.ndarray:
    """A torch tensor (any device) or array-like → numpy, without a copy when possible."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().numpy()
    return np.asarray(images)


def split_batch(images) -> list[np.ndarray]:
    """IMAGE ``[B,H,W,C]`` (or a single ``[H,W,C]``) → list of ``[H,W,C]`` arrays."""
    array = as_numpy(images)
    if array.ndim == 3:
        return [array]
    if array.ndim != 4:
        raise ImageDecodeError(f"Expected an IMAGE of shape [B,H,W,C]; got shape {tuple(array.shape)}.")
    return [array[i] for i in range(array.shape[0])]


UINT8_BLOCK = 1 << 18  # values converted at a time: 1 MB of float32, which stays in the CPU's cache


def to_uint8(image) -> np.ndarray:
    """float 0..1 ``[H,W,C]`` → uint8, rounding to nearest (what ComfyUI's savers do).

    A few rows at a time through one small float32 buffer: a whole-image temporary (144 MB for
    12 MP) cost page faults and three trips through memory, 2.4x the time (bench, 12 MP inputs)."""
    array = as_numpy(image)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    out = np.empty(array.shape, dtype=np.uint8)
    if array.ndim == 0 or array.size == 0:
        out[...] = np.clip(np.multiply(array, 255.0, dtype=np.float32) + 0.5, 0.0, 255.0)
        return out
    rows = max(1, UINT8_BLOCK // max(1, array[0].size))
    buffer = np.empty((min(rows, array.shape[0]), *array.shape[1:]), dtype=np.float32)
    for top in range(0, array.shape[0], rows):
        source = array[top:top + rows]
        scaled = buffer[:source.shape[0]]
        np.multiply(source, 255.0, out=scaled, dtype=np.float32)
        np.add(scaled, 0.5, out=scaled)
        np.clip(scaled, 0.0, 255.0, out=scaled)
        np.copyto(out[top:top + rows], scaled, casting="unsafe")  # truncates, as astype did
    return out


def to_float(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float32) * np.float32(1.0 / 255.0)


# ----------------------------------------------------------------- encode
def encode_png(image) -> bytes:
    """One ``[H,W,C]`` image (C = 1, 3 or 4; alpha kept) → PNG bytes."""
    pixels = to_uint8(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in _COLOR_TYPES:
        raise ImageDecodeError(f"Cannot encode an image of shape {tuple(pixels.shape)} as PNG: "
                               "expected [H, W, C] with 1, 3 or 4 channels.")
    height, width, channels = pixels.shape
    if height == 0 or width == 0:
        raise ImageDecodeError("Cannot encode an empty image (0 pixels wide or high).")
    rows = pixels.reshape(height, width * channels)
    # "Up" filter: each row minus the row above (uint8 arithmetic wraps, as PNG wants).
    filtered = np.empty((height, width * channels + 1), dtype=np.uint8)
    filtered[:, 0] = 2
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])
    raw = filtered.reshape(-1)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join([b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", header),
                     _chunk(b"IDAT", _zlib_stream(raw, height)), _chunk(b"IEND", b"")])


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, without decoding it; None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


# Chosen by measurement (bench/run.py, "1 encode" zlib sweep, two 1 MP inputs). Photo-like with
# noise: level 1 RLE 12.7 ms for 1.78 MB; Huffman only 11.6 ms, same size; levels 1-9 with the
# default strategy 22-51 ms for 1.98-2.03 MB (longer matches find little in sensor noise). A photo
# on white: RLE 6.2 ms for 0.44 MB, Huffman only 9.7 ms for 0.79 MB, default 9.6-19.6 ms for
# 0.50-0.53 MB: RLE catches the runs of zero the Up filter leaves in flat areas.
ZLIB_LEVEL, ZLIB_STRATEGY = 1, zlib.Z_RLE


def _deflate_piece(piece: memoryview, last: bool) -> bytes:
    compressor = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, -15, 9, ZLIB_STRATEGY)
    return compressor.compress(piece) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)


def _zlib_stream(raw: np.ndarray, rows: int) -> bytes:
    """A zlib stream of ``raw``; big images are deflated in two halves on two threads.

    Raw deflate pieces ending in a full flush can be concatenated (pigz does
    this); the adler32 trailer covers the whole input.
    """
    view = raw.data  # memoryview(raw); numpy's stubs give ndarray the buffer protocol only for Python 3.12+
    if raw.nbytes < PARALLEL_MIN_BYTES or rows < 2:
        pieces = [_deflate_piece(view, True)]
    else:
        row_bytes = raw.nbytes // rows
        split = (rows // 2) * row_bytes
        first = _executor().submit(_deflate_piece, view[:split], False)
        second = _deflate_piece(view[split:], True)
        pieces = [first.result(), second]
    return b"\x78\x01" + b"".join(pieces) + struct.pack(">I", zlib.adler32(view))


# ----------------------------------------------------------------- decode
def decode_image(data: bytes, *, source: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded bytes → float32 ``[H,W,3]`` or ``[H,W,4]`` (alpha kept) in 0..1."""
    return to_float(decode_pixels(data, source=source, max_pixels=max_pixels))


def decode_pixels(data: bytes, *, source: str = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded bytes → uint8 ``[H,W,3]`` or ``[H,W,4]`` (alpha kept): a quarter of the
    float32 size, for ``stack_batch`` to scale straight into the IMAGE batch."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageDecodeError(
                    f"{source} claims {width}x{height} pixels, above the {max_pixels:,}-pixel safety cap; "
                    "refusing to decode it (possible decompression bomb).")
            image.load()
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own, far larger, limit fired first
        raise ImageDecodeError(f"{source} is too large to decode safely ({exc}); refusing it "
                               "(possible decompression bomb).") from None
    except (OSError, ValueError, SyntaxError) as exc:
        start = data[:16].decode("ascii", "replace").strip()
        raise ImageDecodeError(f"{source} is not a readable image ({type(exc).__name__}; "
                               f"{len(data)} bytes starting {start!r}).") from None
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if has_alpha else "RGB"
    return np.asarray(image if image.mode == mode else image.convert(mode))


def stack_batch(images: Sequence[np.ndarray], mismatch: str = "pad") -> tuple[np.ndarray, np.ndarray]:
    """Decoded images (uint8 0..255 or float 0..1) → (IMAGE ``[B,H,W,3]``, MASK ``[B,H,W]``).

    The MASK follows ComfyUI's LoadImage: ``1 - alpha`` (1 = transparent), zeros
    for opaque images. Different sizes cannot share a batch tensor, so:
    ``pad`` (default) centres each image on a black canvas of the largest width
    and height, without resampling, and marks the padding as 1 in the MASK;
    ``resize`` scales every image to the first one's size (bicubic);
    ``error`` raises.
    """
    if not images:
        raise ImageDecodeError("The job returned no images.")
    if mismatch not in MISMATCH_MODES:
        raise ImageDecodeError(f"Unknown size-mismatch mode {mismatch!r}: use one of {', '.join(MISMATCH_MODES)}.")
    sizes = {img.shape[:2] for img in images}
    if len(sizes) > 1 and mismatch == "error":
        raise ImageDecodeError(f"The outputs have different sizes {sorted(sizes)}; choose 'pad' or 'resize'.")
    if len(sizes) > 1 and mismatch == "resize":
        height, width = images[0].shape[:2]
        images = [_resize(img, width, height) for img in images]
    height = max(img.shape[0] for img in images)
    width = max(img.shape[1] for img in images)
    padded = any(img.shape[:2] != (height, width) for img in images)
    # Each pixel is written once, straight from the decoded bytes: no float temporaries (the
    # peak RSS of a big batch), and zeros only where padding needs them. An opaque image's
    # MASK stays untouched zero pages.
    batch = (np.zeros if padded else np.empty)((len(images), height, width, 3), dtype=np.float32)
    mask = np.zeros((len(images), height, width), dtype=np.float32)
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        top, left = (height - h) // 2, (width - w) // 2
        if (h, w) != (height, width):
            mask[i] = 1.0
            mask[i, top:top + h, left:left + w] = 0.0
        rgb = batch[i, top:top + h, left:left + w]
        if img.dtype == np.uint8:
            np.multiply(img[:, :, :3], np.float32(1.0 / 255.0), out=rgb)
        else:
            rgb[...] = img[:, :, :3]
        if img.shape[2] == 4:
            alpha = img[:, :, 3] * np.float32(1.0 / 255.0) if img.dtype == np.uint8 else img[:, :, 3]
            np.subtract(1.0, alpha, out=mask[i, top:top + h, left:left + w])
    return batch, mask


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[:2] == (height, width):
        return image
    mode = "RGBA" if image.shape[2] == 4 else "RGB"
    resized = np.asarray(Image.fromarray(to_uint8(image), mode).resize((width, height), Image.Resampling.BICUBIC))
    return resized if image.dtype == np.uint8 else to_float(resized)
