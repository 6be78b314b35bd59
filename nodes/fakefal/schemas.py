"""What each fake endpoint accepts: fal's input schemas for the Qwen image edit family, written
from fal's OpenAPI as fal-js's generated zod schemas carry it (``libs/client/src/types/image/zod.gen.ts``
@ 53241327), independently of the pack's own table (nodes/fal/models/endpoints.py and its snapshot
fal_schemas.json), so the tests compare two readings of fal rather than one with itself: a slip in the
pack's table (a field it sends that the model does not take, a range too wide) is a 422 here, where a
fake built from that same table would agree with it.

The Qwen-Image-2 family (2, 2 Pro, Max) is read from fal-js's ``libs/client/src/types/endpoints.ts``
@ 381105e (``QwenImage2EditInput``; ``QwenImage2ProEditInput`` and ``QwenImageMaxEditInput`` are the same
type) and ``zQwenImageMaxEditInput`` in zod.gen.ts @ 53241327 (num_images 1-6, prompt 1-800 characters,
negative_prompt at most 500), and the limits its descriptions state: 1-3 reference images, 384-5000 px a
side, 10 MB each, no alpha, 512x512 to 2048x2048 output pixels, seed 0-2147483647. The 2509 ids are
fal's other names of the plus models: endpoints.ts gives ``QwenImageEditPlusInput = QwenImageEdit2509Input``
and ``QwenImageEditPlusLoraInput = QwenImageEdit2509LoraInput``, and zod.gen.ts the same ranges.

Stricter than fal on purpose, where that shows a client's bug: a field the endpoint does not have
is a 422 here (fal's pydantic models ignore it), limits stated only in a description are enforced, and
"5", 5.0 or "true" are not coerced. Messages and types follow pydantic v2 / FastAPI. The per-image limits
are checked at the submit for the images the fake can read without a fetch (data URIs and its own
storage), with the same 422 shape. An endpoint id outside the family gets the plus schema and its unknown
fields pass, as at fal.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from PIL import Image

from .edit import FORMATS, PRESETS, resolve_size, MAX_SIDE


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _choices(values) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


STRING = (lambda v: isinstance(v, str), "string_type", "Input should be a valid string")
BOOL = (lambda v: isinstance(v, bool), "bool_type", "Input should be a valid boolean")
INT = (_is_int, "int_type", "Input should be a valid integer")
NUMBER = (_is_number, "float_type", "Input should be a valid finite number")


@dataclass(frozen=True)
class Num:
    check: tuple
    low: float | None = None
    high: float | None = None
    nullable: bool = False


@dataclass(frozen=True)
class ImageLimits:
    """What each reference image may be, as a schema's description states it."""
    side: tuple[int, int]                 # px, each dimension
    megabytes: float
    alpha: bool


@dataclass(frozen=True)
class Schema:
    images: str                           # "image_urls" (a list) or "image_url" (one)
    steps: tuple[int, int] | None         # None: the endpoint has no num_inference_steps
    guidance: tuple[float, float] | None  # None: no guidance_scale
    formats: tuple[str, ...]
    accelerations: tuple[str, ...]        # (): no acceleration field
    loras: bool = False
    strict: bool = True                   # a field outside the schema is a 422
    extra: dict = field(default_factory=dict)  # the family's own fields: name → Num, or a check like STRING
    prompt: bool = True                   # False: no prompt field (fal writes the prompt itself)
    max_images: int | None = None         # images the model takes at most, where its schema says so
    num_images: tuple[int, int] = (1, 4)
    seed: tuple[int, int] | None = None   # a stated range; None: any integer
    expansion: bool = False               # enable_prompt_expansion
    lengths: dict = field(default_factory=dict)  # field → (min, max) characters
    image_count: tuple[int, int] | None = None
    output_pixels: tuple[int, int] | None = None  # the output's total pixels, when stated
    image_limits: ImageLimits | None = None

    def numbers(self) -> dict[str, Num]:
        seed = Num(INT, *self.seed, nullable=True) if self.seed else Num(INT, nullable=True)
        numbers = {"num_images": Num(INT, *self.num_images), "seed": seed}
        if self.steps is not None:
            numbers["num_inference_steps"] = Num(INT, *self.steps)
        if self.guidance is not None:
            numbers["guidance_scale"] = Num(NUMBER, *self.guidance)
        return {**numbers, **{name: kind for name, kind in self.extra.items() if isinstance(kind, Num)}}

    def known(self) -> set[str]:
        return {*(["prompt"] if self.prompt else []), self.images, "negative_prompt", "image_size",
                "enable_safety_checker", "sync_mode", "output_format", *self.numbers(), *self.extra,
                *(["acceleration"] if self.accelerations else []), *(["loras"] if self.loras else []),
                *(["enable_prompt_expansion"] if self.expansion else [])}


# Each family's base schema, and its variants as copies with the fields they change (dataclasses.replace
# keeps the field types checked, which keyword dicts spread into Schema(...) would not).
_PLUS = Schema(images="image_urls", steps=(2, 100), guidance=(0, 20), formats=("jpeg", "png"),
               accelerations=("none", "regular"))
_2511 = Schema(images="image_urls", steps=(1, 50), guidance=(1, 20), formats=("jpeg", "png", "webp"),
               accelerations=("none", "regular", "high"))
_FIRST = Schema(images="image_url", steps=(2, 50), guidance=(0, 20), formats=("jpeg", "png"),
                accelerations=("none", "regular", "high"))
# Qwen-Image-2 / 2 Pro / Max edit: hosted only, no steps, guidance or acceleration.
_QWEN_2 = Schema(images="image_urls", steps=None, guidance=None, formats=("jpeg", "png", "webp"), accelerations=(),
                 num_images=(1, 6), seed=(0, 2147483647), expansion=True,
                 lengths={"prompt": (1, 800), "negative_prompt": (0, 500)}, image_count=(1, 3),
                 output_pixels=(512 * 512, 2048 * 2048), image_limits=ImageLimits((384, 5000), 10, alpha=False))
SCHEMAS = {
    "fal-ai/qwen-image-edit-plus": _PLUS,
    "fal-ai/qwen-image-edit-plus-lora": replace(_PLUS, steps=(2, 50), loras=True),
    "fal-ai/qwen-image-edit-2511": _2511,
    "fal-ai/qwen-image-edit-2511/lora": replace(_2511, loras=True),
    "fal-ai/qwen-image-edit": _FIRST,
    "fal-ai/qwen-image-edit-lora": replace(_FIRST, loras=True),
    # fal's other ids of the plus models (their input types are one type in endpoints.ts)
    "fal-ai/qwen-image-edit-2509": _PLUS,
    "fal-ai/qwen-image-edit-2509-lora": replace(_PLUS, steps=(2, 50), loras=True),
    "fal-ai/qwen-image-2/edit": _QWEN_2,
    "fal-ai/qwen-image-2/pro/edit": _QWEN_2,
    "fal-ai/qwen-image-max/edit": _QWEN_2,
    # zQwenImageEdit2511MultipleAnglesInput: one image, no prompt (built from the camera), the camera's numbers.
    "fal-ai/qwen-image-edit-2511-multiple-angles": replace(
        _2511, accelerations=("none", "regular"), prompt=False, max_images=1,
        extra={"horizontal_angle": Num(NUMBER, 0, 360), "vertical_angle": Num(NUMBER, -30, 90),
               "zoom": Num(NUMBER, 0, 10), "lora_scale": Num(NUMBER, 0, 4), "additional_prompt": STRING}),
}
# Where fal derives the output size from the last input within a pixel budget (edit.py's omitted_size).
BUDGET_ENDPOINTS = {endpoint: schema.output_pixels for endpoint, schema in SCHEMAS.items() if schema.output_pixels}
OTHER = replace(_PLUS, formats=tuple(FORMATS), accelerations=("none", "regular", "high"), loras=True, strict=False)


def schema_for(endpoint: str) -> Schema:
    return SCHEMAS.get(endpoint, OTHER)


def validate(endpoint: str, body: Any, load: Callable[[str], bytes | None] | None = None) -> list[dict]:
    """fal-style 422 entries (``{"loc": ["body", field, ...], "msg", "type"}``), one per bad field
    of ``endpoint``'s schema; empty when the input is fine. ``load(url)``: an image's bytes when the
    fake holds them without a fetch, else None (its per-image limits are then not checked)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    schema = schema_for(endpoint)
    errors: list[dict] = []

    def bad(loc: list, msg: str, kind: str) -> None:
        errors.append({"loc": ["body", *loc], "msg": msg, "type": kind})

    if schema.strict:
        for name in sorted(set(body) - schema.known()):
            bad([name], "Extra inputs are not permitted", "extra_forbidden")
    prompt = body.get("prompt")
    if not schema.prompt:
        pass  # the schema has no prompt: one sent anyway is refused above, as a field it lacks
    elif "prompt" not in body:
        bad(["prompt"], "Field required", "missing")
    elif not isinstance(prompt, str):
        bad(["prompt"], STRING[2], STRING[1])
    elif not prompt:
        bad(["prompt"], "String should have at least 1 character", "string_too_short")
    _check_images(schema, body, bad)
    if schema.image_limits is not None and load is not None and isinstance(body.get(schema.images), list):
        _check_image_limits(schema.image_limits, body[schema.images], load, bad)
    # Optional: null (or leaving it out) means the endpoint's default size.
    size = resolve_size(body["image_size"]) if body.get("image_size") is not None else None
    if body.get("image_size") is not None and size is None:
        bad(["image_size"], f"Input should be {_choices(PRESETS)}, or an object with integer width "
            f"and height in 1..{MAX_SIDE}", "value_error")
    if size is not None and schema.output_pixels is not None and \
            not schema.output_pixels[0] <= size[0] * size[1] <= schema.output_pixels[1]:
        bad(["image_size"], "Value error, Total number of pixels must be between 512x512 and 2048x2048",
            "value_error")
    for name, (shortest, longest) in schema.lengths.items():
        value = body.get(name)
        if isinstance(value, str) and len(value) > longest:
            bad([name], f"String should have at most {longest} characters", "string_too_long")
        elif isinstance(value, str) and value and len(value) < shortest:
            bad([name], f"String should have at least {shortest} character", "string_too_short")
    booleans = ("enable_safety_checker", "sync_mode", *(["enable_prompt_expansion"] if schema.expansion else []))
    texts = [(name, check) for name, check in schema.extra.items() if not isinstance(check, Num)]
    for name, check in (("negative_prompt", STRING), *((flag, BOOL) for flag in booleans), *texts):
        if name in body and not check[0](body[name]):
            bad([name], check[2], check[1])
    for name, num in schema.numbers().items():
        if name not in body or (num.nullable and body[name] is None):
            continue
        _check_number(name, body[name], num, bad)
    for name, choices in (("output_format", schema.formats), ("acceleration", schema.accelerations)):
        if name in body and choices and (not isinstance(body[name], str) or body[name] not in choices):
            bad([name], f"Input should be {_choices(choices)}", "enum")
    if "loras" in body and schema.loras:
        _check_loras(body["loras"], bad)
    return errors


def _check_images(schema: Schema, body: dict, bad: Callable) -> None:
    name = schema.images
    value = body.get(name)
    if name not in body:
        bad([name], "Field required", "missing")
    elif name == "image_url":
        if not isinstance(value, str):
            bad([name], STRING[2], STRING[1])
    elif not isinstance(value, list):
        bad([name], "Input should be a valid list", "list_type")
    elif not value:
        bad([name], "List should have at least 1 item after validation, not 0", "too_short")
    elif schema.max_images is not None and len(value) > schema.max_images:
        bad([name], f"List should have at most {schema.max_images} item after validation, not {len(value)}",
            "too_long")
    else:
        for i, url in enumerate(value):
            if not isinstance(url, str):
                bad([name, i], STRING[2], STRING[1])
        if schema.image_count is not None and len(value) > schema.image_count[1]:
            bad([name], f"List should have at most {schema.image_count[1]} items after validation, not {len(value)}",
                "too_long")


def _check_image_limits(limits: ImageLimits, urls: list, load: Callable[[str], bytes | None], bad: Callable) -> None:
    """Each reference image against the limits its field's description states (those the fake can read)."""
    low, high = limits.side
    for i, url in enumerate(urls):
        data = load(url) if isinstance(url, str) else None
        if data is None:
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                (width, height), mode = image.size, image.mode
                alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
        except Exception:  # noqa: BLE001 - the job's own download error says it later
            continue
        if not (low <= width <= high and low <= height <= high):
            bad(["image_urls", i], f"Value error, Image resolution {width}x{height} is out of range: each "
                f"dimension must be {low}-{high}px", "value_error")
        if len(data) > limits.megabytes * 1_000_000:
            bad(["image_urls", i], f"Value error, Image is {len(data)} bytes; the maximum is {limits.megabytes:g}MB",
                "value_error")
        if alpha and not limits.alpha:
            bad(["image_urls", i], "Value error, PNG images with an alpha channel are not supported", "value_error")


def _check_number(name: str, value: Any, num: Num, bad: Callable) -> None:
    check, kind, msg = num.check
    if not check(value):
        bad([name], msg, kind)
    elif num.low is not None and value < num.low:
        bad([name], f"Input should be greater than or equal to {num.low}", "greater_than_equal")
    elif num.high is not None and value > num.high:
        bad([name], f"Input should be less than or equal to {num.high}", "less_than_equal")


def _check_loras(loras: Any, bad: Callable) -> None:
    """``LoraWeight``: ``path`` (string, required), ``scale`` (0-4, default 1). No maxItems in fal's
    schema ("up to 3" is only its description), so the count is not checked here."""
    if not isinstance(loras, list):
        bad(["loras"], "Input should be a valid list", "list_type")
        return
    for i, lora in enumerate(loras):
        if not isinstance(lora, dict):
            bad(["loras", i], "Input should be a valid dictionary", "dict_type")
            continue
        if not isinstance(lora.get("path"), str):
            bad(["loras", i, "path"], "Field required" if "path" not in lora else STRING[2], "missing")
        if "scale" in lora:
            _check_number("scale", lora["scale"], Num(NUMBER, 0, 4),
                          lambda loc, msg, kind: bad(["loras", i, *loc], msg, kind))
        for extra in sorted(set(lora) - {"path", "scale"}):
            bad(["loras", i, extra], "Extra inputs are not permitted", "extra_forbidden")
