"""Input validation and the fake "edit": outputs are a pixel-exact function of
the inputs (RGB inverted, alpha kept), so tests can check what came back."""

from __future__ import annotations

import base64
import io
import random
import uuid
from typing import Any, Callable

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


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(body: Any) -> list[dict]:
    """fal-style 422 entries, one per bad field; empty when the input is fine."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid JSON object", "type": "value_error"}]
    errors: list[dict] = []

    def bad(name: str, msg: str) -> None:
        errors.append({"loc": ["body", name], "msg": msg, "type": "value_error"})

    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        bad("prompt", "field required" if "prompt" not in body else "prompt must be a non-empty string")
    urls = body.get("image_urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        bad("image_urls", "field required" if "image_urls" not in body
            else "image_urls must be a non-empty list of strings")
    if "image_size" in body and resolve_size(body["image_size"]) is None:
        bad("image_size", f"image_size must be one of {sorted(PRESETS)} or "
            f"{{width, height}} integers in 1..{MAX_SIDE}")
    ranges = (("num_images", 1, 4, True), ("num_inference_steps", 2, 100, True),
              ("guidance_scale", 0, 20, False))
    for name, low, high, integer in ranges:
        if name not in body:
            continue
        v = body[name]
        ok = (_is_int(v) if integer else _is_number(v)) and low <= v <= high
        if not ok:
            kind = "an integer" if integer else "a number"
            bad(name, f"{name} must be {kind} between {low} and {high}")
    if "output_format" in body and body["output_format"] not in FORMATS:
        bad("output_format", f"output_format must be one of {sorted(FORMATS)}")
    # Not in the brief's list, but a non-integer seed would otherwise crash the
    # result building; fal rejects it the same way.
    if body.get("seed") is not None and not _is_int(body["seed"]):
        bad("seed", "seed must be an integer")
    return errors


def resolve_size(value: Any) -> tuple[int, int] | None:
    """(width, height) for a preset name or a {width, height} dict, else None."""
    if isinstance(value, str):
        return PRESETS.get(value)
    if isinstance(value, dict):
        w, h = value.get("width"), value.get("height")
        if _is_int(w) and _is_int(h) and 1 <= w <= MAX_SIDE and 1 <= h <= MAX_SIDE:
            return (w, h)
    return None


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
        for url in args["image_urls"]:
            try:
                img = Image.open(io.BytesIO(load(url)))
                img.load()
            except Exception:  # noqa: BLE001 - any failure is the job's download error
                job.error = f"Failed to download image: {short(url)}"
                return
            inputs.append(img)
        size = resolve_size(args["image_size"]) if "image_size" in args else None
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
            "prompt": args["prompt"],
            "timings": {"inference": job.run_time},
            "has_nsfw_concepts": [job.nsfw] * len(images),
        }
    except Exception as exc:  # noqa: BLE001 - a bug here must still end the job
        job.error = f"Internal error: {exc!r}"
    finally:
        job.ready.set()
