"""What the pack adds to fal's schema for each Qwen edit endpoint: reviewed by hand, kept beside the
snapshot (``fal_schemas.json``) that every field, range, enum and default comes from.

* ``name``: what the node's ``model`` combo, the CLI's ``--model`` and a manifest say; ``listed``
  False for an alias (another id for the same model), which is still known by its endpoint id;
* ``price_per_mp``: USD per megapixel of output, from fal's model page ([LLMS]); None where no page
  states it (the pricing API's unit price then, or "price unknown", never a guess);
* ``size_when_omitted``: what fal makes when ``image_size`` is left out: a preset, or ``"input"``
  (from the final input: about 1 MP in its aspect for the open models; for an endpoint with a stated
  output budget, the Qwen-Image-2 family, its own size within that budget: sizing.py), from the field's
  own description in the snapshot;
* ``reads_area``: input pixels the model reads (sizing.py; diffusers' pipeline for the open models),
  None when unknown (every pixel is sent). The hosted-only Qwen-Image-2 family publishes no pipeline: its
  ``fit model`` size is the pack's decision, its output budget (2048 x 2048 pixels, ``BUDGET_AREA``): the
  output follows the last input's size within 512²-2048², so pixels past 2048² never reach the output, and
  fewer bytes keep each input under its 10 MB cap;
* ``alias_of``: for an alias, the name of the listed model it is another id of;
* ``node``: which node offers it ("edit": the edit node's ``model`` list; "angles": its own node).

Sources: [LLMS] ``https://fal.ai/models/<endpoint id>/llms.txt`` (read 2026-11-30); [REG]
gokayfem/ComfyUI-fal-API ``data/fal_registry.json`` (entries up to 2026-08-24).
"""

from __future__ import annotations

from dataclasses import dataclass

from .sizing import VAE_AREA

BUDGET_AREA = 2048 * 2048  # the Qwen-Image-2 family's largest output ("between 512x512 and 2048x2048")

LLMS_READ_ON = "2026-11-30"
MEGAPIXEL_ROUNDING = "how megapixels are rounded for billing"


@dataclass(frozen=True)
class Note:
    name: str
    endpoint: str
    title: str
    price_per_mp: float | None = None
    size_when_omitted: str = "input"
    reads_area: int | None = VAE_AREA
    listed: bool = True
    node: str = "edit"
    unconfirmed: tuple[str, ...] = ()
    alias_of: str | None = None

    def sources(self) -> tuple[str, ...]:
        page = () if self.price_per_mp is None else \
            (f"https://fal.ai/models/{self.endpoint}/llms.txt (read {LLMS_READ_ON})",)
        return (*page, "fal_schemas.json (fal's input schema)")


NOTES: tuple[Note, ...] = (
    Note("qwen-edit-plus", "fal-ai/qwen-image-edit-plus", "Qwen Image Edit Plus (2509)", price_per_mp=0.03,
         size_when_omitted="square_hd", unconfirmed=(MEGAPIXEL_ROUNDING,)),
    Note("qwen-edit-plus-lora", "fal-ai/qwen-image-edit-plus-lora", "Qwen Image Edit Plus (2509) with LoRAs",
         price_per_mp=0.035, unconfirmed=(MEGAPIXEL_ROUNDING, "whether each LoRA costs extra")),
    Note("qwen-edit-2511", "fal-ai/qwen-image-edit-2511", "Qwen Image Edit 2511", price_per_mp=0.03,
         unconfirmed=(MEGAPIXEL_ROUNDING,)),
    Note("qwen-edit-2511-lora", "fal-ai/qwen-image-edit-2511/lora", "Qwen Image Edit 2511 with LoRAs",
         price_per_mp=0.035, unconfirmed=(MEGAPIXEL_ROUNDING, "whether each LoRA costs extra")),
    Note("qwen-image-2-edit", "fal-ai/qwen-image-2/edit", "Qwen Image 2 Edit", reads_area=BUDGET_AREA,
         unconfirmed=("the price: the table has none (fal's pricing API, when reachable)",)),
    Note("qwen-image-2-pro-edit", "fal-ai/qwen-image-2/pro/edit", "Qwen Image 2 Pro Edit", reads_area=BUDGET_AREA,
         unconfirmed=("the price: the table has none (fal's pricing API, when reachable)",)),
    Note("qwen-image-max-edit", "fal-ai/qwen-image-max/edit", "Qwen Image Max Edit", reads_area=BUDGET_AREA,
         unconfirmed=("the price: the table has none (fal's pricing API, when reachable)",)),
    Note("qwen-edit", "fal-ai/qwen-image-edit", "Qwen Image Edit (first release, one image)", price_per_mp=0.03,
         unconfirmed=(MEGAPIXEL_ROUNDING, "the output size when image_size is omitted (taken as the input's)")),
    Note("qwen-edit-lora", "fal-ai/qwen-image-edit-lora", "Qwen Image Edit (first release, one image) with LoRAs",
         unconfirmed=("the price: no fal page found", "the output size when image_size is omitted")),
    # Aliases: fal serves the plus models under these ids too (endpoints.ts maps plus to the 2509 types).
    Note("qwen-edit-2509", "fal-ai/qwen-image-edit-2509", "Qwen Image Edit 2509 (the plus model's other id)",
         size_when_omitted="square_hd", listed=False, alias_of="qwen-edit-plus",
         unconfirmed=("the price: no fal page read for this id (the plus model's says $0.03/MP)",)),
    Note("qwen-edit-2509-lora", "fal-ai/qwen-image-edit-2509-lora",
         "Qwen Image Edit 2509 with LoRAs (the plus LoRA model's other id)", listed=False,
         alias_of="qwen-edit-plus-lora",
         unconfirmed=("the price: no fal page read for this id (the plus LoRA model's says $0.035/MP)",)),
    Note("qwen-edit-2511-angles", "fal-ai/qwen-image-edit-2511-multiple-angles",
         "Qwen Image Edit 2511 Multiple Angles (camera control)", node="angles",
         unconfirmed=("the price: the table has none (fal's pricing API, when reachable)",)),
)
