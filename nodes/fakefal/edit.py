"""The fake "edit": outputs are a pixel-exact function of the inputs (RGB
inverted, alpha kept), so tests can check what came back. What each endpoint
accepts is schemas.py."""

from __future__ import annotations

import base64
import io
import math
import random
import uuid
from typing import Any, Callable, TypeGuard

import numpy as np
from PIL import Image

PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
MAX_SIDE = 14142
# output_format -> (Pillow format, content type, extension)
FORMATS = {
    "png": ("PNG", "image/png", "png"),
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "webp": ("WEBP", "image/webp", "webp"),
}


def _is_int(v: Any) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def resolve_size(value: Any) -> tuple[int, int] | None:
    """(width, height) for a preset name or a {width, height} dict, else None."""
    if isinstance(value, str):
        return PRESETS.get(value)
    if isinstance(value, dict):
        w, h = value.get("width"), value.get("height")
        if _is_int(w) and _is_int(h) and 1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE:
            return (w, h)
    return None


def omitted_size(endpoint: str, input_sizes: list[tuple[int, int]], rule: str,
                 budget: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """The output size of a request without image_size. "pipeline": what fal documents, read as
    diffusers' QwenImageEdit(Plus)Pipeline computes it (diffusers 58eb52c0): qwen-image-edit-plus's
    schema default is square_hd; the others take the final input's aspect at 1024*1024 pixels, each
    side rounded to a multiple of 32, then floored to 16. With a pixel ``budget`` (the Qwen-Image-2
    family: "If not provided, the size of the final input image will be used. Total number of pixels
    must be between 512x512 and 2048x2048"): the final input's own size, or, outside the budget, that
    size scaled to its nearer end (the fake's reading; fal does not say how it rounds: down when
    shrinking, up when growing, so the result stays inside). "per input": None (each output keeps the
    size of the input it came from)."""
    if rule != "pipeline":
        return None
    if endpoint in ("fal-ai/qwen-image-edit-plus", "fal-ai/qwen-image-edit-2509"):
        return PRESETS["square_hd"]
    if budget is not None:
        width, height = input_sizes[-1]
        low, high = budget
        if low <= width * height <= high:
            return width, height
        factor = math.sqrt((low if width * height < low else high) / (width * height))
        rounding = math.floor if width * height > high else math.ceil
        return rounding(width * factor), rounding(height * factor)
    width, height = input_sizes[-1]
    ratio = width / height
    exact_width = math.sqrt(1024 * 1024 * ratio)
    side_w, side_h = round(exact_width / 32) * 32, round(exact_width / ratio / 32) * 32
    return side_w // 16 * 16, side_h // 16 * 16


def decode_data_uri(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise ValueError("not a base64 data URI")
    return base64.b64decode(payload, validate=False)


def short(url: str) -> str:
    # Data URIs can be megabytes; an error message only needs to identify it.
    return url if len(url) <= 96 or not url.startswith("data:") else url[:64] + "..."


def transform(img: Image.Image, size: tuple[int, int] | None, nsfw: bool) -> Image.Image:
    """Invert RGB (keep alpha), or black it all out when flagged; then resize."""
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info)
    arr = np.array(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    if nsfw:
        arr[...] = 0
        if has_alpha:
            arr[..., 3] = 255  # blacked out means opaque black, like fal's checker
    else:
        arr[..., :3] = 255 - arr[..., :3]
    out = Image.fromarray(arr)
    if size is not None and out.size != size:
        out = out.resize(size, Image.Resampling.NEAREST)
    return out


def encode(img: Image.Image, output_format: str) -> tuple[bytes, str, str]:
    fmt, content_type, ext = FORMATS[output_format]
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.convert("RGB").save(buf, format=fmt, quality=95)
    elif fmt == "WEBP":
        img.save(buf, format=fmt, lossless=True)
    else:
        img.save(buf, format=fmt)
    return buf.getvalue(), content_type, ext


def run_edit(job, load: Callable[[str], bytes], store: Callable[[str, bytes, str], str]) -> None:
    """Fill ``job.result`` or ``job.error``, then set ``job.ready``.

    ``load(url)`` returns the bytes of an input or raises; ``store(name, data,
    content_type)`` saves an output in the fake CDN and returns its URL.
    """
    try:
        if job.fail_text is not None:
            job.error = job.fail_text
            return
        args = job.arguments
        inputs = []
        for url in args["image_urls"] if "image_urls" in args else [args["image_url"]]:
            try:
                img = Image.open(io.BytesIO(load(url)))
                img.load()
            except Exception:  # noqa: BLE001 - any failure is the job's download error
                job.error = f"Failed to download image: {short(url)}"
                return
            inputs.append(img)
        size = resolve_size(args["image_size"]) if "image_size" in args else \
            omitted_size(job.endpoint, [img.size for img in inputs], job.size_rule, job.size_budget)
        output_format = args.get("output_format", "png")
        images = []
        for k in range(args.get("num_images", 1)):
            out = transform(inputs[k % len(inputs)], size, job.nsfw)
            data, content_type, ext = encode(out, output_format)
            name = f"{uuid.uuid4().hex}.{ext}"
            if args.get("sync_mode"):
                url = f"data:{content_type};base64," + base64.b64encode(data).decode("ascii")
            else:
                url = store(name, data, content_type)
            images.append({"url": url, "width": out.width, "height": out.height,
                           "content_type": content_type, "file_name": name, "file_size": len(data)})
        seed = args.get("seed")
        job.result = {
            "images": images,
            "seed": seed if seed is not None else random.randint(0, 2**31 - 1),
            "prompt": args.get("prompt", ""),  # the camera endpoint takes none: fal writes its own
            "timings": {"inference": job.run_time},
            "has_nsfw_concepts": [job.nsfw] * len(images),
        }
    except Exception as exc:  # noqa: BLE001 - a bug here must still end the job
        job.error = f"Internal error: {exc!r}"
    finally:
        job.ready.set()
