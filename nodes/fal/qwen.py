"""The fal-ai/qwen-image-edit-plus request and response model.

Every input field of the endpoint, checked against its range *before* any
upload or submit, with one message per bad field that says what to change.
Fields left as ``None`` are not sent, so fal applies its own default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .errors import InputError

DEFAULT_ENDPOINT = "fal-ai/qwen-image-edit-plus"
IMAGE_SIZE_PRESETS = ("square_hd", "square", "portrait_4_3", "portrait_16_9",
                      "landscape_4_3", "landscape_16_9")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
ACCELERATIONS = ("none", "regular", "high")
STEPS_RANGE = (2, 100)
GUIDANCE_RANGE = (0.0, 20.0)
NUM_IMAGES_RANGE = (1, 4)
SIDE_RANGE = (64, 14142)  # fal's ImageSize allows up to 14142; below 64 px nothing useful comes back
SEED_RANGE = (0, 2**63 - 1)
MAX_REFERENCE_IMAGES = 10  # the model is built for 1-3; fal accepts a few more

ImageSize = Union[str, tuple[int, int], None]


@dataclass
class QwenEditRequest:
    prompt: str
    image_urls: list[str] = field(default_factory=list)
    negative_prompt: Optional[str] = None
    image_size: ImageSize = None  # preset name, (width, height), or None: derived from the inputs
    num_inference_steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    num_images: int = 1
    seed: Optional[int] = None  # None: fal picks one (reported back in the result)
    enable_safety_checker: Optional[bool] = None
    output_format: Optional[str] = None
    sync_mode: Optional[bool] = None
    acceleration: Optional[str] = None

    def problems(self, *, images_to_come: int | None = 0) -> list[str]:
        """Every out-of-range field, as sentences that say what to change.

        ``images_to_come``: input images that will be appended to ``image_urls``
        after upload (counted now, so nothing is uploaded for a request that
        cannot be sent); None when that number is not known yet.
        """
        found = []
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            found.append("prompt: write what to change in the image(s); it is empty.")
        if images_to_come is not None:
            count = len(self.image_urls) + images_to_come
            if not count:
                found.append("image_urls: connect at least one input image.")
            elif count > MAX_REFERENCE_IMAGES:
                found.append(f"image_urls: {count} images given; use at most "
                             f"{MAX_REFERENCE_IMAGES} (the model is built for 1-3).")
        for url in self.image_urls:
            if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
                found.append(f"image_urls: {str(url)[:60]!r} is not an http(s) URL or data:image URI.")
        size = self.image_size
        if isinstance(size, str):
            if size not in IMAGE_SIZE_PRESETS:
                found.append(f"image_size: {size!r} is not a preset; use one of {', '.join(IMAGE_SIZE_PRESETS)}, "
                             "or a custom width and height.")
        elif isinstance(size, (tuple, list)):
            if len(size) != 2 or not all(_is_int(v) for v in size):
                found.append("image_size: a custom size needs two whole numbers, width and height.")
            else:
                for name, value in zip(("width", "height"), size):
                    if not SIDE_RANGE[0] <= value <= SIDE_RANGE[1]:
                        found.append(f"image_size: custom {name} {value} is out of range; use "
                                     f"{SIDE_RANGE[0]}-{SIDE_RANGE[1]} pixels.")
        elif size is not None:
            found.append("image_size: use a preset name, (width, height), or leave it empty for auto.")
        _check_range(found, "num_inference_steps", self.num_inference_steps, STEPS_RANGE, integer=True)
        _check_range(found, "guidance_scale", self.guidance_scale, GUIDANCE_RANGE)
        _check_range(found, "num_images", self.num_images, NUM_IMAGES_RANGE, integer=True)
        _check_range(found, "seed", self.seed, SEED_RANGE, integer=True)
        if self.output_format is not None and self.output_format not in OUTPUT_FORMATS:
            found.append(f"output_format: {self.output_format!r} is not supported; use {', '.join(OUTPUT_FORMATS)}.")
        if self.acceleration is not None and self.acceleration not in ACCELERATIONS:
            found.append(f"acceleration: {self.acceleration!r} is not supported; use {', '.join(ACCELERATIONS)}.")
        for name in ("enable_safety_checker", "sync_mode"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                found.append(f"{name}: use true or false, not {value!r}.")
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            found.append("negative_prompt: must be text.")
        return found

    def validate(self, *, images_to_come: int | None = 0) -> "QwenEditRequest":
        found = self.problems(images_to_come=images_to_come)
        if found:
            raise InputError(found)
        return self

    def to_arguments(self) -> dict[str, Any]:
        """The JSON body fal expects; unset optional fields are left out."""
        self.validate()
        return {"prompt": self.prompt, "image_urls": list(self.image_urls), **self._fields()}

    def arguments_without_images(self) -> dict[str, Any]:
        """Every field but ``image_urls`` (what identifies an edit besides its pixels)."""
        self.validate(images_to_come=None)
        return {"prompt": self.prompt, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if isinstance(self.image_size, str):
            args["image_size"] = self.image_size
        elif self.image_size is not None:
            args["image_size"] = {"width": int(self.image_size[0]), "height": int(self.image_size[1])}
        optional = {
            "negative_prompt": self.negative_prompt,
            "num_inference_steps": self.num_inference_steps,
            "guidance_scale": None if self.guidance_scale is None else float(self.guidance_scale),
            "num_images": self.num_images,
            "seed": self.seed,
            "enable_safety_checker": self.enable_safety_checker,
            "output_format": self.output_format,
            "sync_mode": self.sync_mode,
            "acceleration": self.acceleration,
        }
        args.update({k: v for k, v in optional.items() if v is not None})
        return args


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(found: list[str], name: str, value: Any, bounds: tuple, integer: bool = False) -> None:
    if value is None:
        return
    low, high = bounds
    if integer and not _is_int(value):
        found.append(f"{name}: use a whole number between {low} and {high}, not {value!r}.")
        return
    if not integer and (isinstance(value, bool) or not isinstance(value, (int, float))):
        found.append(f"{name}: use a number between {low} and {high}, not {value!r}.")
        return
    if not low <= value <= high:
        found.append(f"{name}: {value} is out of range; use {low}-{high}.")


@dataclass
class OutputImage:
    url: str
    width: Optional[int] = None
    height: Optional[int] = None
    content_type: Optional[str] = None
    file_name: Optional[str] = None


@dataclass
class QwenEditResult:
    request_id: str
    images: list[OutputImage]
    seed: Optional[int]
    timings: dict[str, Any]
    has_nsfw_concepts: list[bool]
    prompt: Optional[str] = None

    @classmethod
    def from_json(cls, data: dict[str, Any], request_id: str) -> "QwenEditResult":
        images = []
        for item in data.get("images") or []:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                images.append(OutputImage(item["url"], item.get("width"), item.get("height"),
                                          item.get("content_type"), item.get("file_name")))
        nsfw = [bool(x) for x in (data.get("has_nsfw_concepts") or [])]
        return cls(request_id, images, data.get("seed"), dict(data.get("timings") or {}), nsfw,
                   data.get("prompt"))

    def info(self) -> dict[str, Any]:
        """What the node's info output and the CLI print (no URLs: data URIs can be megabytes)."""
        return {"request_id": self.request_id, "seed": self.seed, "timings": self.timings,
                "has_nsfw_concepts": self.has_nsfw_concepts,
                "images": [{"width": i.width, "height": i.height, "content_type": i.content_type}
                           for i in self.images]}
