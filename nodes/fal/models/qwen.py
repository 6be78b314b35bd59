"""An edit request for fal's Qwen image edit endpoints, and the response model.

Every input field, checked against the chosen endpoint's ranges (endpoints.py)
*before* any upload or submit, with one message per bad field that says what to
change. The body carries only the fields that endpoint has; fields left as
``None`` are not sent, so fal applies its own default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Optional, Union
from urllib.parse import parse_qsl, urlsplit

from .endpoints import (CAMERA_FIELDS, DEFAULT_ENDPOINT, GENERIC, IMAGE_SIZE_PRESETS,  # noqa: F401
                        MAX_REFERENCE_IMAGES, PRESET_PIXELS, SEED_RANGE, SIDE_MAX, SIDE_MIN, EndpointSpec, spec_for)
from ..base.errors import InputError

# The widest ranges of the table (the node's widgets and the CLI offer these; each endpoint checks its own).
OUTPUT_FORMATS = GENERIC.output_formats
ACCELERATIONS = GENERIC.accelerations
STEPS_RANGE: tuple[int, int] = GENERIC.steps  # type: ignore[assignment]
GUIDANCE_RANGE: tuple[float, float] = GENERIC.guidance  # type: ignore[assignment]
NUM_IMAGES_RANGE = GENERIC.num_images
SIDE_RANGE = (SIDE_MIN, SIDE_MAX)
# A download link that carries a credential (Civitai's ?token=…) would put a key into the workflow.
SECRET_QUERY = re.compile(r"(?i)^(token|api_?key|key|access_token|auth|signature|x-amz-signature)$")

ImageSize = Union[str, tuple[int, int], None]


@dataclass(frozen=True)
class Lora:
    """One LoRA for fal's ``loras`` list: a Hugging Face, Civitai or fal-hosted ``.safetensors``
    URL (or a Hugging Face ``owner/repo`` path, which fal also takes) and its weight."""

    path: str
    scale: float = 1.0

    def problems(self, spec: EndpointSpec) -> list[str]:
        found = []
        path = self.path.strip() if isinstance(self.path, str) else ""
        parts = urlsplit(path)
        if not path:
            found.append("loras: a LoRA has no URL; give its .safetensors URL.")
        elif parts.scheme not in ("https", "") or (parts.scheme == "" and not re.fullmatch(r"[\w.-]+/[\w.-]+", path)):
            found.append(f"loras: {path[:80]!r} is neither an https URL nor a Hugging Face 'owner/repo' path.")
        elif any(SECRET_QUERY.match(name) for name, _ in parse_qsl(parts.query)) or "@" in parts.netloc:
            found.append("loras: this LoRA URL carries a token or password, which would be saved in the workflow; "
                         "use a public URL (e.g. upload the file to fal storage or Hugging Face).")
        low, high = spec.lora_scale
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not low <= self.scale <= high:
            found.append(f"loras: scale {self.scale!r} is out of range; use {low:g}-{high:g}.")
        return found

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path.strip(), "scale": float(self.scale)}


def parse_lora(text: str) -> Lora:
    """``URL[:SCALE]`` (the CLI's --lora, a CSV manifest's loras): the scale is what follows the last
    colon, when it is a number."""
    url, sep, scale = text.rpartition(":")
    try:
        return Lora(url, float(scale)) if sep and url and not scale.startswith("//") else Lora(text)
    except ValueError:
        return Lora(text)


@dataclass
class QwenEditRequest:
    prompt: str
    image_urls: list[str] = field(default_factory=list)
    negative_prompt: Optional[str] = None
    image_size: ImageSize = None  # preset name, (width, height), or None: fal's default for the endpoint
    num_inference_steps: Optional[int] = None
    guidance_scale: Optional[float] = None
    num_images: int = 1
    seed: Optional[int] = None  # None: fal picks one (reported back in the result)
    enable_safety_checker: Optional[bool] = None
    output_format: Optional[str] = None
    sync_mode: Optional[bool] = None
    acceleration: Optional[str] = None
    loras: list[Lora] = field(default_factory=list)
    enable_prompt_expansion: Optional[bool] = None  # Qwen-Image-2 and Max: fal rewrites the prompt first
    # The multiple-angles endpoint's camera (it builds its prompt from these; additional_prompt is appended).
    horizontal_angle: Optional[float] = None
    vertical_angle: Optional[float] = None
    zoom: Optional[float] = None
    lora_scale: Optional[float] = None
    additional_prompt: Optional[str] = None

    def for_model(self, spec: EndpointSpec) -> "QwenEditRequest":
        """A copy without the fields ``spec``'s endpoint does not take: what a node's widgets mean for
        the chosen model (a hidden widget still holds a value; it is never sent)."""
        # LoRAs are a connected input, not a widget: on a model without them they stay, and are refused.
        dropped: dict[str, Any] = {name: None for name in OPTIONAL_FIELDS if name != "loras" and not spec.takes(name)}
        if not spec.takes("prompt"):
            dropped["prompt"] = ""
        return replace(self, **dropped)

    def summary(self) -> str:
        """What the job history shows as the job's prompt: the prompt, or the camera fal writes one from."""
        camera = [f"{label} {value:g}{unit}" for label, value, unit in (
            ("horizontal", self.horizontal_angle, "°"), ("vertical", self.vertical_angle, "°"), ("zoom", self.zoom, ""))
            if isinstance(value, (int, float))]
        if self.prompt or not camera:
            return self.prompt
        return f"camera: {', '.join(camera)}" + (f"; {self.additional_prompt}" if self.additional_prompt else "")

    def problems(self, spec: EndpointSpec | None = None, *, images_to_come: int | None = 0) -> list[str]:
        """Every out-of-range field for ``spec``'s endpoint (the default endpoint when None),
        as sentences that say what to change.

        ``images_to_come``: input images that will be appended to ``image_urls``
        after upload (counted now, so nothing is uploaded for a request that
        cannot be sent); None when that number is not known yet.
        """
        spec = spec or spec_for(endpoint=DEFAULT_ENDPOINT)
        on = f" for {spec.name}" if spec.name != GENERIC.name else ""
        found: list[str] = []
        if spec.takes("prompt"):
            if not isinstance(self.prompt, str) or not self.prompt.strip():
                found.append("prompt: write what to change in the image(s); it is empty.")
        elif self.prompt:
            found.append(f"prompt: {spec.name} builds its prompt from the camera settings; put extra words in "
                         "additional_prompt instead.")
        if images_to_come is not None:
            found += _count_problems(spec, len(self.image_urls) + images_to_come)
        for url in self.image_urls:
            if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
                found.append(f"image_urls: {str(url)[:60]!r} is not an http(s) URL or data:image URI.")
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if name == "loras" and value and not spec.takes_loras:
                found.append(f"loras: {spec.name} ({spec.endpoint}) takes no LoRAs; pick a LoRA model "
                             "(e.g. qwen-edit-plus-lora or qwen-edit-2511-lora), or disconnect the LoRAs.")
            elif name != "loras" and value is not None and not spec.takes(name):
                found.append(f"{name}: {spec.name} ({spec.endpoint}) does not take it; leave it out or pick a "
                             "model that takes it.")
        found += _size_problems(self.image_size, spec)
        for name, bounds in spec.ranges.items():
            if spec.takes(name) and hasattr(self, name):
                _check_range(found, name, getattr(self, name), bounds, on, integer=name in spec.integers)
        _check_range(found, "seed", self.seed, spec.seed_range, "", integer=True)
        for name, limit in spec.max_lengths.items():
            value = getattr(self, name, None)
            if isinstance(value, str) and len(value) > limit:
                found.append(f"{name}: {len(value)} characters; {spec.name} takes at most {limit}, shorten it.")
        for name in ("output_format", "acceleration"):
            value, allowed = getattr(self, name), spec.enums.get(name, ())
            if value is not None and spec.takes(name) and value not in allowed:
                found.append(f"{name}: {value!r} is not offered{on}; use {', '.join(allowed)}.")
        for name in ("enable_safety_checker", "sync_mode", "enable_prompt_expansion"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                found.append(f"{name}: use true or false, not {value!r}.")
        for name in ("negative_prompt", "additional_prompt"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                found.append(f"{name}: must be text.")
        if len(self.loras) > spec.max_loras and spec.takes_loras:
            found.append(f"loras: {len(self.loras)} given; {spec.name} merges at most {spec.max_loras}.")
        if spec.takes_loras:
            for lora in self.loras:
                found += lora.problems(spec)
        return found

    def validate(self, spec: EndpointSpec | None = None, *, images_to_come: int | None = 0) -> "QwenEditRequest":
        found = self.problems(spec, images_to_come=images_to_come)
        if found:
            raise InputError(found)
        return self

    def to_arguments(self, spec: EndpointSpec | None = None) -> dict[str, Any]:
        """The JSON body ``spec``'s endpoint expects: its fields only; unset optional fields left out."""
        spec = spec or spec_for(endpoint=DEFAULT_ENDPOINT)
        self.validate(spec)
        urls = list(self.image_urls)
        images: dict[str, str | list[str]] = \
            {"image_url": urls[0]} if spec.image_field == "image_url" and urls else {"image_urls": urls}
        return {**self._prompt(spec), **images, **self._fields(spec)}

    def arguments_without_images(self, spec: EndpointSpec | None = None) -> dict[str, Any]:
        """Every field but the images (what identifies an edit besides its pixels)."""
        spec = spec or spec_for(endpoint=DEFAULT_ENDPOINT)
        self.validate(spec, images_to_come=None)
        return {**self._prompt(spec), **self._fields(spec)}

    def _prompt(self, spec: EndpointSpec) -> dict[str, Any]:
        return {"prompt": self.prompt} if spec.takes("prompt") else {}

    def _fields(self, spec: EndpointSpec) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if isinstance(self.image_size, str):
            args["image_size"] = self.image_size
        elif self.image_size is not None:
            args["image_size"] = {"width": int(self.image_size[0]), "height": int(self.image_size[1])}
        floats = ("guidance_scale", "horizontal_angle", "vertical_angle", "zoom", "lora_scale")
        for name in OPTIONAL_FIELDS:
            value = getattr(self, name)
            if name == "loras":
                value = [lora.to_json() for lora in self.loras] or None
            elif name in floats and value is not None:
                value = float(value)
            if value is not None:
                args[name] = value
        # Never a field the endpoint does not take (validate refused those set by hand; this is the guarantee).
        return {name: value for name, value in args.items() if spec.takes(name)}


# The optional body fields, in the order they are sent (image_size goes first, by _fields).
OPTIONAL_FIELDS = ("negative_prompt", "num_inference_steps", "guidance_scale", "num_images", "seed",
                   "enable_safety_checker", "output_format", "sync_mode", "acceleration", "loras",
                   "enable_prompt_expansion", *CAMERA_FIELDS)


def _count_problems(spec: EndpointSpec, count: int) -> list[str]:
    low, high = spec.min_images, spec.max_images
    if not count:
        return ["image_urls: connect at least one input image."]
    if spec.image_field == "image_url" and count != 1:
        return [f"image_url: {spec.name} edits exactly one image and {count} are given; connect one (a batch of "
                "one frame), or pick a model that takes several."]
    if high == 1 and count > 1:
        return [f"image_urls: {spec.name} takes exactly one image and {count} are given; connect one (a batch "
                "of one frame)."]
    if count > high or count < low:
        built = " (the model is built for 1-3)" if high == MAX_REFERENCE_IMAGES else ""
        return [f"image_urls: {count} images given; {spec.name} takes {low}-{high}{built}."]
    return []


def _size_problems(size: ImageSize, spec: EndpointSpec) -> list[str]:
    if size is None:
        return []
    if isinstance(size, str):
        if size not in IMAGE_SIZE_PRESETS:
            return [f"image_size: {size!r} is not a preset; use one of {', '.join(IMAGE_SIZE_PRESETS)}, "
                    "or a custom width and height."]
        return _budget_problems(PRESET_PIXELS[size], spec, f"the preset {size}")
    if not isinstance(size, (tuple, list)):
        return ["image_size: use a preset name, (width, height), or leave it empty for auto."]
    if len(size) != 2 or not all(_is_int(v) for v in size):
        return ["image_size: a custom size needs two whole numbers, width and height."]
    found = [f"image_size: custom {name} {value} is out of range; use {SIDE_RANGE[0]}-{SIDE_RANGE[1]} pixels."
             for name, value in zip(("width", "height"), size) if not SIDE_RANGE[0] <= value <= SIDE_RANGE[1]]
    return found or _budget_problems((size[0], size[1]), spec, f"{size[0]} x {size[1]}")


def _budget_problems(size: tuple[int, int], spec: EndpointSpec, what: str) -> list[str]:
    """The output's total pixels against the endpoint's stated budget (Qwen-Image-2: 512² to 2048²)."""
    if spec.output_pixels is None:
        return []
    low, high = spec.output_pixels
    pixels = size[0] * size[1]
    if low <= pixels <= high:
        return []
    side = lambda n: int(round(n ** 0.5))  # noqa: E731
    return [f"image_size: {what} is {pixels:,} pixels; {spec.name} makes between {side(low)}x{side(low)} and "
            f"{side(high)}x{side(high)} pixels in all ({low:,}-{high:,}); pick a size in that range."]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(found: list[str], name: str, value: Any, bounds: tuple, on: str, integer: bool = False) -> None:
    if value is None:
        return
    low, high = bounds
    if integer and not _is_int(value):
        found.append(f"{name}: use a whole number between {low} and {high}, not {value!r}.")
        return
    if not integer and (isinstance(value, bool) or not isinstance(value, (int, float))):
        found.append(f"{name}: use a number between {low:g} and {high:g}, not {value!r}.")
        return
    if not low <= value <= high:
        dash = " to " if low < 0 else "-"  # vertical_angle's -30 to 90, not "-30-90"
        span = f"{low}{dash}{high}" if integer else f"{low:g}{dash}{high:g}"
        found.append(f"{name}: {value} is out of range{on}; use {span}.")


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
