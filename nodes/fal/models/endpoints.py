"""fal's Qwen image edit endpoints: what each one takes, its ranges and defaults, and its price.

Data, not code: one ``EndpointSpec`` per endpoint, with where each fact comes
from and when it was read. Sources (read 2026-11-30):

* [LLMS] fal's model pages, ``https://fal.ai/models/<endpoint id>/llms.txt``:
  description, price, first input fields;
* [ZOD] fal-js ``libs/client/src/types/image/zod.gen.ts`` @ 53241327
  (2026-02-03), generated from fal's OpenAPI: per-endpoint ranges and numeric
  defaults; [TS] fal-js ``libs/client/src/types/endpoints.ts`` @ 381105e
  (2026-08-02): endpoint ids and enum defaults;
* [REG] gokayfem/ComfyUI-fal-API ``data/fal_registry.json`` (entries up to
  2026-08-24): defaults, min/max, publish dates.

What no source states is marked in ``unconfirmed``; there the pack keeps the
widest range any source allows and lets fal's own 422 speak rather than guess a
tighter one. An endpoint id not in the table (``custom``) gets ``GENERIC``: the
union of the table's ranges, every field, and no price.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .sizing import VAE_AREA

DEFAULT_ENDPOINT = "fal-ai/qwen-image-edit-plus"
CUSTOM = "custom"
IMAGE_SIZE_PRESETS = ("square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
# fal's ImageSize presets in pixels (width, height), as fal's image models document them; no Qwen edit page
# repeats them, so they are the pack's assumption for estimates only (never sent: the preset name is).
PRESET_PIXELS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
                 "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
SIDE_MAX = 14142  # [ZOD] zImageSize: width and height ≤ 14142, no minimum in the schema
SIDE_MIN = 64     # the pack's floor: below it nothing useful comes back
MAX_REFERENCE_IMAGES = 10  # no schema sets maxItems on image_urls; the model is built for 1-3
READ_ON = "2026-11-30"


@dataclass(frozen=True)
class EndpointSpec:
    name: str                       # what the node's combo and --model show
    endpoint: str                   # fal's endpoint id
    title: str
    image_field: str = "image_urls"  # "image_url": exactly one input image
    steps: tuple[int, int] = (2, 100)
    steps_default: int = 50
    guidance: tuple[float, float] = (0.0, 20.0)
    guidance_default: float = 4.0
    num_images: tuple[int, int] = (1, 4)
    output_formats: tuple[str, ...] = ("jpeg", "png")
    accelerations: tuple[str, ...] = ("none", "regular")
    max_loras: int = 0              # 0: the endpoint takes no LoRAs
    lora_scale: tuple[float, float] = (0.0, 4.0)
    size_when_omitted: str = "square_hd"  # a preset, or "input": from the final input image's size
    reads_area: int | None = VAE_AREA     # input pixels the model reads (sizing.py); None: unknown, send all
    price_per_mp: float | None = None     # USD per megapixel of output; None: no source states it
    sources: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = field(default=())

    @property
    def max_images(self) -> int:
        return 1 if self.image_field == "image_url" else MAX_REFERENCE_IMAGES

    @property
    def takes_loras(self) -> bool:
        return self.max_loras > 0

    def price_rule(self) -> str:
        if self.price_per_mp is None:
            return "price unconfirmed"
        return f"${self.price_per_mp:g} per megapixel of output"


def _pages(endpoint: str) -> tuple[str, ...]:
    return (f"https://fal.ai/models/{endpoint}/llms.txt (read {READ_ON})",
            "fal-js libs/client/src/types/image/zod.gen.ts @ 53241327 (2026-02-03)")


ENDPOINTS: tuple[EndpointSpec, ...] = (
    EndpointSpec(
        "qwen-edit-plus", "fal-ai/qwen-image-edit-plus", "Qwen Image Edit Plus (2509)",
        steps=(2, 100), steps_default=50, guidance=(0.0, 20.0), guidance_default=4.0,
        size_when_omitted="square_hd", price_per_mp=0.03, sources=_pages("fal-ai/qwen-image-edit-plus"),
        unconfirmed=("how megapixels are rounded for billing",)),
    EndpointSpec(
        "qwen-edit-plus-lora", "fal-ai/qwen-image-edit-plus-lora", "Qwen Image Edit Plus (2509) with LoRAs",
        steps=(2, 50), steps_default=28, guidance=(0.0, 20.0), guidance_default=4.0, max_loras=3,
        size_when_omitted="input", price_per_mp=0.035, sources=_pages("fal-ai/qwen-image-edit-plus-lora"),
        unconfirmed=("how megapixels are rounded for billing", "whether each LoRA costs extra")),
    EndpointSpec(
        "qwen-edit-2511", "fal-ai/qwen-image-edit-2511", "Qwen Image Edit 2511",
        steps=(1, 50), steps_default=28, guidance=(1.0, 20.0), guidance_default=4.5,
        output_formats=("jpeg", "png", "webp"), accelerations=("none", "regular", "high"),
        size_when_omitted="input", price_per_mp=0.03, sources=_pages("fal-ai/qwen-image-edit-2511"),
        unconfirmed=("how megapixels are rounded for billing",)),
    EndpointSpec(
        "qwen-edit-2511-lora", "fal-ai/qwen-image-edit-2511/lora", "Qwen Image Edit 2511 with LoRAs",
        steps=(1, 50), steps_default=28, guidance=(1.0, 20.0), guidance_default=4.5,
        output_formats=("jpeg", "png", "webp"), accelerations=("none", "regular", "high"), max_loras=3,
        size_when_omitted="input", price_per_mp=0.035, sources=_pages("fal-ai/qwen-image-edit-2511/lora"),
        unconfirmed=("how megapixels are rounded for billing", "whether each LoRA costs extra")),
    EndpointSpec(
        "qwen-edit", "fal-ai/qwen-image-edit", "Qwen Image Edit (first release, one image)",
        image_field="image_url", steps=(2, 50), steps_default=30, guidance=(0.0, 20.0), guidance_default=4.0,
        accelerations=("none", "regular", "high"), size_when_omitted="input", price_per_mp=0.03,
        sources=_pages("fal-ai/qwen-image-edit"),
        unconfirmed=("how megapixels are rounded for billing",
                     "the output size when image_size is omitted (taken as the input's)")),
    EndpointSpec(
        "qwen-edit-lora", "fal-ai/qwen-image-edit-lora", "Qwen Image Edit (first release, one image) with LoRAs",
        image_field="image_url", steps=(2, 50), steps_default=30, guidance=(0.0, 20.0), guidance_default=4.0,
        accelerations=("none", "regular", "high"), max_loras=3, size_when_omitted="input", price_per_mp=None,
        sources=("gokayfem/ComfyUI-fal-API data/fal_registry.json (published 2025-09-10)",
                 "fal-js libs/client/src/types/image/zod.gen.ts @ 53241327 (2026-02-03)"),
        unconfirmed=("the price: no fal page found", "the output size when image_size is omitted")),
)

GENERIC = EndpointSpec(
    CUSTOM, "", "any other endpoint id (generic rules: fal's 422 has the last word)",
    steps=(1, 100), steps_default=50, guidance=(0.0, 20.0), guidance_default=4.0,
    output_formats=("jpeg", "png", "webp"), accelerations=("none", "regular", "high"), max_loras=3,
    size_when_omitted="input", price_per_mp=None, reads_area=None,
    unconfirmed=("everything: not in the pack's table",))

BY_NAME = {spec.name: spec for spec in ENDPOINTS}
BY_ENDPOINT = {spec.endpoint: spec for spec in ENDPOINTS}
MODEL_NAMES = tuple(BY_NAME)


def spec_for(model: str | None = None, endpoint: str | None = None) -> EndpointSpec:
    """The spec of a model name, or of an endpoint id when ``model`` is "custom" (or not given):
    a known id gets its table entry, any other id the generic rules."""
    if model and model != CUSTOM:
        try:
            return BY_NAME[model]
        except KeyError:
            raise ValueError(f"Unknown model {model!r}: use one of {', '.join(MODEL_NAMES)}, or "
                             f"{CUSTOM!r} with an endpoint id.") from None
    endpoint = (endpoint or DEFAULT_ENDPOINT).strip().strip("/")
    known = BY_ENDPOINT.get(endpoint)
    if known is not None:
        return known
    return replace(GENERIC, endpoint=endpoint)
