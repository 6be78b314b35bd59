"""Input validation and the fake "edit": outputs are a pixel-exact function of
the inputs (RGB inverted, alpha kept), so tests can check what came back."""

from __future__ import annotations

import base64
import io
import math
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


ACCELERATIONS = ("none", "regular", "high")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _choices(values) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


# Strict on purpose: fal's pydantic models run in lax mode and would coerce
# "5" or 5.0 to 5 and "true" to True, but a client that sends those has a bug
# these tests should see. Messages and types follow pydantic v2 / FastAPI.
_STRING = (lambda v: isinstance(v, str), "string_type", "Input should be a valid string")
_BOOL = (lambda v: isinstance(v, bool), "bool_type", "Input should be a valid boolean")
_INT = (_is_int, "int_type", "Input should be a valid integer")
_NUMBER = (_is_number, "float_type", "Input should be a valid finite number")
# name -> (type check, ranges or choices, may be null)
_FIELDS: dict[str, tuple[tuple, tuple | None, bool]] = {
    "negative_prompt": (_STRING, None, False),
    "num_inference_steps": (_INT, (2, 100), False),
    "guidance_scale": (_NUMBER, (0, 20), False),
    "num_images": (_INT, (1, 4), False),
    "seed": (_INT, None, True),                # Optional: null means "pick one"
    "enable_safety_checker": (_BOOL, None, False),
    "sync_mode": (_BOOL, None, False),
}
_ENUMS = {"output_format": tuple(FORMATS), "acceleration": ACCELERATIONS}


def validate(body: Any) -> list[dict]:
    """fal-style 422 entries (``{"loc": ["body", field, ...], "msg", "type"}``),
    one per bad field of fal-ai/qwen-image-edit-plus; empty when the input is fine.
    Fields the endpoint does not know are ignored, as fal ignores them."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    errors: list[dict] = []

    def bad(loc: list, msg: str, kind: str) -> None:
        errors.append({"loc": ["body", *loc], "msg": msg, "type": kind})

    prompt = body.get("prompt")
    if "prompt" not in body:
        bad(["prompt"], "Field required", "missing")
    elif not isinstance(prompt, str):
        bad(["prompt"], _STRING[2], _STRING[1])
    elif not prompt:
        bad(["prompt"], "String should have at least 1 character", "string_too_short")
    urls = body.get("image_urls")
    if "image_urls" not in body:
        bad(["image_urls"], "Field required", "missing")
    elif not isinstance(urls, list):
        bad(["image_urls"], "Input should be a valid list", "list_type")
    elif not urls:
        bad(["image_urls"], "List should have at least 1 item after validation, not 0", "too_short")
    else:
        for i, url in enumerate(urls):
            if not isinstance(url, str):
                bad(["image_urls", i], _STRING[2], _STRING[1])
    # Optional: null (or leaving it out) means "derived from the inputs".
    if body.get("image_size") is not None and resolve_size(body["image_size"]) is None:
        bad(["image_size"], f"Input should be {_choices(PRESETS)}, or an object with integer width "
            f"and height in 1..{MAX_SIDE}", "value_error")
    for name, ((check, kind, msg), bounds, nullable) in _FIELDS.items():
        if name not in body or (nullable and body[name] is None):
            continue
        value = body[name]
        if not check(value):
            bad([name], msg, kind)
        elif bounds is not None and value < bounds[0]:
            bad([name], f"Input should be greater than or equal to {bounds[0]}", "greater_than_equal")
        elif bounds is not None and value > bounds[1]:
            bad([name], f"Input should be less than or equal to {bounds[1]}", "less_than_equal")
    for name, choices in _ENUMS.items():
        if name in body and (not isinstance(body[name], str) or body[name] not in choices):
            bad([name], f"Input should be {_choices(choices)}", "enum")
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
