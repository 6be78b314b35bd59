"""What an edit will cost, estimated before anything is sent.

The unit price, by one rule everywhere (the node's badge, the run, the CLI, the batch plan, the cap):

1. the endpoint table's (endpoint_notes.py: the price fal's model page states, per megapixel of output);
2. else fal's own pricing API's (``GET /v1/models/pricing``, cached by platform/price_book.py: asked when
   a job is submitted, and read here from that cache), per megapixel or per image as fal gives it;
3. else none: the estimate says "price unknown", plainly, and never a made-up figure (the daily cap
   then refuses the edit: state/budget.py).

How much of the unit an edit takes:

* per image (fal's unit "image": the Qwen-Image-2 family): the unit price × ``num_images`` × jobs;
* per megapixel: the output's pixels: the custom width × height; a preset's pixels (PRESET_PIXELS);
  with no image_size, the endpoint's documented fallback: ``square_hd`` for qwen-image-edit-plus,
  otherwise the size derived from the final input image (sizing.derived_output_size: about 1 MP in its
  aspect for the open models; for the Qwen-Image-2 family its own size, scaled into its 512²-2048² budget).
  An input known only by its URL: 1 MP assumed, and marked so. A megapixel is 1024 × 1024 pixels (so
  fal's "1 MP" presets count as one), not rounded: fal does not say how the edit endpoints round. (Its
  only stated rule in the family, fal-ai/qwen-image-2512's "rounded up to the nearest megapixel", would
  double the price of the pipeline's ~1 MP outputs, such as 1184 × 896; the pack does not assume it.)
  Per image, at least a tenth of a megapixel; × num_images, × jobs (frames, in per-frame batch mode).
  Inputs are not priced.

It is an estimate: fal's invoice is the truth (and fal's billed units × its unit price, once a job is done).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from .endpoints import PRESET_PIXELS, EndpointSpec
from .sizing import derived_output_size

MEGAPIXEL = 1024 * 1024
ASSUMED_SIZE = (1024, 1024)  # an input known only by its URL
PER_MEGAPIXEL, PER_IMAGE = "megapixel", "image"
FROM_TABLE, FROM_FAL = "endpoint table", "fal pricing API"
PRICE_UNKNOWN = "price unknown"
# fal's pricing API names its billing units (fal's Platform API docs: "unit": "image" in its example; the fal
# Ruby gem's Fal::Price::Unit lists "image", "video", "megapixels", "gpu_second" …). Only these two price an edit.
UNITS = {"megapixels": PER_MEGAPIXEL, "megapixel": PER_MEGAPIXEL, "mp": PER_MEGAPIXEL,
         "image": PER_IMAGE, "images": PER_IMAGE}


@dataclass(frozen=True)
class UnitPrice:
    usd: float
    unit: str      # PER_MEGAPIXEL or PER_IMAGE
    source: str    # FROM_TABLE or FROM_FAL

    @property
    def short_unit(self) -> str:
        return "MP" if self.unit == PER_MEGAPIXEL else "image"

    def rule(self) -> str:
        what = "per megapixel of output" if self.unit == PER_MEGAPIXEL else "per image"
        return f"${self.usd:g} {what}"


PriceLookup = Callable[[EndpointSpec], "UnitPrice | None"]


def table_price(spec: EndpointSpec) -> UnitPrice | None:
    """The table's price (rule 1), or None. Where no pricing API cache is at hand (a test, a throwaway
    client), this is the whole rule."""
    return UnitPrice(spec.price_per_mp, PER_MEGAPIXEL, FROM_TABLE) if spec.price_per_mp is not None else None


def api_price(entry: object) -> UnitPrice | None:
    """A cached answer of fal's pricing API (``{unit_price, unit, currency}``) as a unit price, or None
    when it cannot price an edit (another unit, such as gpu_second, or another currency)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("unit_price"), (int, float)):
        return None
    unit = UNITS.get(str(entry.get("unit") or "").strip().lower())
    if unit is None or str(entry.get("currency") or "USD").upper() != "USD":
        return None
    return UnitPrice(float(entry["unit_price"]), unit, FROM_FAL)


def unknown_reason(model: str) -> str:
    return (f"{PRICE_UNKNOWN}: the pack's table has no price for {model} and fal's pricing API has not told "
            "this machine one yet (it is asked, with a fal key, when a job is submitted)")


@dataclass(frozen=True)
class Estimate:
    usd: float | None        # the whole run; None: the price is unknown
    megapixels: float        # per output image (what a per-megapixel price bills)
    images: int              # outputs per job
    jobs: int
    price: UnitPrice | None  # None: unknown
    size_known: bool         # False: an input's size was assumed (a URL), for a per-megapixel price
    model: str = ""

    @property
    def rate(self) -> float | None:
        return self.price.usd if self.price is not None else None

    @property
    def known(self) -> bool:
        return self.usd is not None

    @property
    def confirmed(self) -> bool:
        """A price from the table or fal, and (for a per-megapixel one) every size known."""
        return self.price is not None and (self.size_known or self.price.unit == PER_IMAGE)

    def per_job(self) -> float | None:
        if self.usd is None:
            return None
        return round(self.usd / self.jobs, 4) if self.jobs else 0.0

    def what(self) -> str:
        """The text and the model, as the ledger and the cap's refusals say it."""
        return self.text() if self.price is None else f"{self.text()} on {self.model}"

    def text(self) -> str:
        if self.price is None:
            return unknown_reason(self.model or "this model")
        count = f"{self.jobs} jobs x " if self.jobs > 1 else ""
        images = f"{self.images} images x " if self.images > 1 else ""
        source = "" if self.price.source == FROM_TABLE else f", {FROM_FAL}"
        if self.price.unit == PER_IMAGE:
            return f"about ${self.usd:.3f} ({count}{images or '1 image x '}${self.price.usd:g}/image{source})"
        note = "" if self.size_known else ", size assumed"
        return (f"about ${self.usd:.3f} ({count}{images}{self.megapixels:g} MP x ${self.price.usd:g}/MP"
                f"{source}{note})")


def output_pixels(spec: EndpointSpec, image_size, input_sizes: Sequence[tuple[int, int] | None]) -> \
        tuple[tuple[int, int], bool]:
    """(width, height) fal will make, and whether that is known rather than assumed."""
    if isinstance(image_size, (tuple, list)):
        return (int(image_size[0]), int(image_size[1])), True
    if isinstance(image_size, str):
        return PRESET_PIXELS[image_size], True
    if spec.size_when_omitted in PRESET_PIXELS:
        return PRESET_PIXELS[spec.size_when_omitted], True
    derived = derived_output_size(input_sizes, budget=spec.output_pixels)
    return (derived, True) if derived else (ASSUMED_SIZE, False)


def estimate(spec: EndpointSpec, image_size, num_images: int, input_sizes: Sequence[tuple[int, int] | None],
             jobs: int = 1, price_of: PriceLookup = table_price) -> Estimate:
    """``price_of``: the price rule's lookup (platform/price_book.py's ``price_for`` where the state
    folder's cache of fal's prices is at hand; the table alone by default)."""
    (width, height), size_known = output_pixels(spec, image_size, input_sizes)
    megapixels = max(0.1, round(width * height / MEGAPIXEL, 2))
    price = price_of(spec)
    if price is None:
        usd = None
    else:
        units = megapixels * num_images if price.unit == PER_MEGAPIXEL else num_images
        usd = round(price.usd * units * jobs, 4)
    return Estimate(usd, megapixels, num_images, jobs, price, size_known, spec.name)
