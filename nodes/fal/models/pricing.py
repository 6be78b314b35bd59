"""What an edit will cost, estimated before anything is sent.

fal prices its Qwen image edit endpoints per megapixel of output ("$0.03 per
megapixels" on fal-ai/qwen-image-edit-plus's page; endpoints.py has each
endpoint's rate and source). The rule the pack applies, and why:

* output pixels: the custom width × height; a preset's pixels (PRESET_PIXELS);
  with no image_size, the endpoint's documented fallback: ``square_hd`` for
  qwen-image-edit-plus, otherwise the size the pipeline derives from the final
  input image ("If not provided, the size of the final input image will be
  used to calculate the size of the output image": about 1 MP in its aspect,
  sizing.derived_output_size). An input known only by its URL: 1 MP assumed;
* a megapixel is 1024 × 1024 pixels (so fal's "1 MP" presets count as one), not
  rounded: fal does not say how the edit endpoints round. (Its only stated rule in
  the family, fal-ai/qwen-image-2512's "rounded up to the nearest megapixel",
  would double the price of the pipeline's ~1 MP outputs, such as 1184 × 896;
  the pack does not assume it.) Per image, at least a tenth of a megapixel;
* × num_images, × jobs (frames, in per-frame batch mode); inputs are not priced;
* an endpoint whose price no source states is estimated at the family's highest
  rate, $0.035/MP, and marked unconfirmed.

It is an estimate: fal's invoice is the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .endpoints import ENDPOINTS, PRESET_PIXELS, EndpointSpec
from .sizing import derived_output_size

MEGAPIXEL = 1024 * 1024
FALLBACK_RATE = max(spec.price_per_mp for spec in ENDPOINTS if spec.price_per_mp is not None)
ASSUMED_SIZE = (1024, 1024)  # an input known only by its URL


@dataclass(frozen=True)
class Estimate:
    usd: float            # the whole run
    megapixels: float     # billed per output image
    images: int           # outputs per job
    jobs: int
    rate: float           # USD per megapixel
    confirmed: bool       # False: the endpoint's price or the output size is assumed

    def per_job(self) -> float:
        return round(self.usd / self.jobs, 4) if self.jobs else 0.0

    def text(self) -> str:
        count = f"{self.jobs} jobs x " if self.jobs > 1 else ""
        images = f"{self.images} images x " if self.images > 1 else ""
        note = "" if self.confirmed else ", price or size assumed"
        return f"about ${self.usd:.3f} ({count}{images}{self.megapixels:g} MP x ${self.rate:g}/MP{note})"


def output_pixels(spec: EndpointSpec, image_size, input_sizes: Sequence[tuple[int, int] | None]) -> \
        tuple[tuple[int, int], bool]:
    """(width, height) fal will make, and whether that is known rather than assumed."""
    if isinstance(image_size, (tuple, list)):
        return (int(image_size[0]), int(image_size[1])), True
    if isinstance(image_size, str):
        return PRESET_PIXELS[image_size], True
    if spec.size_when_omitted in PRESET_PIXELS:
        return PRESET_PIXELS[spec.size_when_omitted], True
    derived = derived_output_size(input_sizes)
    return (derived, True) if derived else (ASSUMED_SIZE, False)


def estimate(spec: EndpointSpec, image_size, num_images: int, input_sizes: Sequence[tuple[int, int] | None],
             jobs: int = 1) -> Estimate:
    (width, height), size_known = output_pixels(spec, image_size, input_sizes)
    megapixels = max(0.1, round(width * height / MEGAPIXEL, 2))
    rate = spec.price_per_mp if spec.price_per_mp is not None else FALLBACK_RATE
    usd = round(rate * megapixels * num_images * jobs, 4)
    return Estimate(usd, megapixels, num_images, jobs, rate, size_known and spec.price_per_mp is not None)
