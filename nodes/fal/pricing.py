"""What an edit will cost, estimated before anything is sent.

fal prices its Qwen image edit endpoints per megapixel of output ("$0.03 per
megapixels" on fal-ai/qwen-image-edit-plus's page; endpoints.py has each
endpoint's rate and source). The rule the pack applies, and why:

* output pixels: the custom width × height; a preset's pixels (PRESET_PIXELS);
  with no image_size, the endpoint's documented fallback: ``square_hd`` for
  qwen-image-edit-plus, otherwise the final input image's size ("If not
  provided, the size of the final input image will be used"). An input given
  only as a URL has no known size: 1 MP is assumed there;
* megapixels are counted as 1024 × 1024 pixels and rounded up per image, as
  fal's only stated rounding rule in this family says (fal-ai/qwen-image-2512:
  "rounded up to the nearest megapixel"); fal does not say how the edit
  endpoints round, so this may overstate by up to one megapixel per image;
* × num_images, × jobs (frames, in per-frame batch mode); inputs are not priced;
* an endpoint whose price no source states is estimated at the family's highest
  rate, $0.035/MP, and marked unconfirmed.

It is an estimate: fal's invoice is the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .endpoints import ENDPOINTS, PRESET_PIXELS, EndpointSpec

MEGAPIXEL = 1024 * 1024
FALLBACK_RATE = max(spec.price_per_mp for spec in ENDPOINTS if spec.price_per_mp is not None)
ASSUMED_SIZE = (1024, 1024)  # an input known only by its URL


@dataclass(frozen=True)
class Estimate:
    usd: float            # the whole run
    megapixels: int       # billed per output image
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
        return f"about ${self.usd:.3f} ({count}{images}{self.megapixels} MP x ${self.rate:g}/MP{note})"


def output_pixels(spec: EndpointSpec, image_size, input_sizes: Sequence[tuple[int, int] | None]) -> \
        tuple[tuple[int, int], bool]:
    """(width, height) fal will make, and whether that is known rather than assumed."""
    if isinstance(image_size, (tuple, list)):
        return (int(image_size[0]), int(image_size[1])), True
    if isinstance(image_size, str):
        return PRESET_PIXELS[image_size], True
    if spec.size_when_omitted in PRESET_PIXELS:
        return PRESET_PIXELS[spec.size_when_omitted], True
    final = input_sizes[-1] if input_sizes else None
    return (final, True) if final else (ASSUMED_SIZE, False)


def estimate(spec: EndpointSpec, image_size, num_images: int, input_sizes: Sequence[tuple[int, int] | None],
             jobs: int = 1) -> Estimate:
    (width, height), size_known = output_pixels(spec, image_size, input_sizes)
    megapixels = max(1, math.ceil(width * height / MEGAPIXEL))
    rate = spec.price_per_mp if spec.price_per_mp is not None else FALLBACK_RATE
    usd = round(rate * megapixels * num_images * jobs, 4)
    return Estimate(usd, megapixels, num_images, jobs, rate, size_known and spec.price_per_mp is not None)
