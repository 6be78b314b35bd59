"""fal's Qwen image edit endpoints: what each one takes, its ranges and defaults, and its price.

Two sources, joined here and nowhere else: ``endpoint_table.py``, generated from fal's own input
schemas (``fal_schemas.json``, by ``tools/make_endpoint_table.py``): every field, range, enum, default
and stated limit; and ``endpoint_notes.py``, what the pack adds after review: names, prices, how the
output size is derived, what the model reads. An endpoint id in neither (``custom``) gets ``GENERIC``:
the union of the edit endpoints' fields and ranges, and no price: fal's 422 has the last word there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .endpoint_notes import NOTES, Note
from .endpoint_table import SCHEMAS, SNAPSHOT_READ_ON
from .sizing import VAE_AREA

DEFAULT_ENDPOINT = "fal-ai/qwen-image-edit-plus"
CUSTOM = "custom"
IMAGE_SIZE_PRESETS = ("square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
# fal's ImageSize presets in pixels (width, height), as fal's image models document them; no Qwen edit page
# repeats them, so they are the pack's assumption for estimates only (never sent: the preset name is).
PRESET_PIXELS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
                 "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
SIDE_MAX = 14142  # fal's ImageSize: width and height ≤ 14142, no minimum in the schema
SIDE_MIN = 64     # the pack's floor: below it nothing useful comes back
MAX_REFERENCE_IMAGES = 10  # no schema sets maxItems on image_urls; the plus models are built for 1-3
SEED_RANGE = (0, 2**63 - 1)  # where the schema states none
LORA_SCALE = (0.0, 4.0)      # fal's LoraWeight.scale
MAX_LORAS = 3                # "You can use up to 3 LoRAs" (the loras field's description)
SNAPSHOT_MAX_AGE_DAYS = 90   # --check says when the snapshot is older than this
CAMERA_FIELDS = ("horizontal_angle", "vertical_angle", "zoom", "lora_scale", "additional_prompt")


@dataclass(frozen=True)
class EndpointSpec:
    name: str                       # what the node's combo and --model show
    endpoint: str                   # fal's endpoint id
    title: str
    fields: frozenset[str] = frozenset()
    image_field: str = "image_urls"  # "image_url": exactly one input image
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    integers: frozenset[str] = frozenset()
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)
    image_count: tuple[int, int] = (1, MAX_REFERENCE_IMAGES)
    image_side: tuple[int, int] | None = None   # each input's width and height, when the schema states it
    image_megabytes: float | None = None        # each input's size cap
    image_alpha: bool = True                    # False: PNG inputs are flattened before upload
    output_pixels: tuple[int, int] | None = None  # the output's total pixel budget
    seed_range: tuple[int, int] = SEED_RANGE
    size_when_omitted: str = "square_hd"  # a preset, or "input": from the final input image's size
    reads_area: int | None = VAE_AREA     # input pixels the model reads (sizing.py); None: unknown, send all
    price_per_mp: float | None = None     # USD per megapixel of output; None: no source states it
    listed: bool = True
    node: str = "edit"
    sources: tuple[str, ...] = ()
    unconfirmed: tuple[str, ...] = field(default=())
    alias_of: str | None = None  # an alias: the listed model it is another id of

    def takes(self, name: str) -> bool:
        return name in self.fields

    def range_of(self, name: str) -> tuple[float, float] | None:
        return self.ranges.get(name)

    @property
    def steps(self) -> tuple[int, int] | None:
        return self.ranges.get("num_inference_steps")  # type: ignore[return-value]

    @property
    def steps_default(self) -> int | None:
        return self.defaults.get("num_inference_steps")

    @property
    def guidance(self) -> tuple[float, float] | None:
        return self.ranges.get("guidance_scale")

    @property
    def guidance_default(self) -> float | None:
        return self.defaults.get("guidance_scale")

    @property
    def num_images(self) -> tuple[int, int]:
        return self.ranges.get("num_images", (1, 4))  # type: ignore[return-value]

    @property
    def output_formats(self) -> tuple[str, ...]:
        return self.enums.get("output_format", ())

    @property
    def accelerations(self) -> tuple[str, ...]:
        return self.enums.get("acceleration", ())

    @property
    def max_loras(self) -> int:
        return MAX_LORAS if self.takes("loras") else 0

    @property
    def lora_scale(self) -> tuple[float, float]:
        return LORA_SCALE

    @property
    def max_images(self) -> int:
        return 1 if self.image_field == "image_url" else self.image_count[1]

    @property
    def min_images(self) -> int:
        return self.image_count[0]

    @property
    def takes_loras(self) -> bool:
        return self.takes("loras")

    def price_rule(self) -> str:
        if self.price_per_mp is None:
            return "price unknown"
        return f"${self.price_per_mp:g} per megapixel of output"


def _spec(note: Note) -> EndpointSpec:
    facts = SCHEMAS[note.endpoint]
    stated = facts["stated"]
    image_count = (1, 1) if facts["image_field"] == "image_url" else stated.get("image_count", (1, MAX_REFERENCE_IMAGES))
    return EndpointSpec(
        note.name, note.endpoint, note.title, fields=frozenset(facts["fields"]), image_field=facts["image_field"],
        ranges=dict(facts["ranges"]), integers=frozenset(facts["integers"]), enums=dict(facts["enums"]),
        defaults=dict(facts["defaults"]), max_lengths=dict(facts["max_lengths"]),
        descriptions=dict(facts["descriptions"]), image_count=image_count, image_side=stated.get("image_side"),
        image_megabytes=stated.get("image_megabytes"), image_alpha=stated.get("image_alpha", True),
        output_pixels=stated.get("output_pixels"), seed_range=stated.get("seed", SEED_RANGE),
        size_when_omitted=note.size_when_omitted, reads_area=note.reads_area, price_per_mp=note.price_per_mp,
        listed=note.listed, node=note.node, sources=note.sources(), unconfirmed=note.unconfirmed,
        alias_of=note.alias_of)


ALL_ENDPOINTS: tuple[EndpointSpec, ...] = tuple(_spec(note) for note in NOTES)
# The edit node's and the CLI's model list (the camera-control model has a node of its own).
ENDPOINTS: tuple[EndpointSpec, ...] = tuple(s for s in ALL_ENDPOINTS if s.listed and s.node == "edit")
ALIASES: tuple[EndpointSpec, ...] = tuple(s for s in ALL_ENDPOINTS if s.alias_of is not None)
ANGLES = next(s for s in ALL_ENDPOINTS if s.node == "angles")


def _union(specs: tuple[EndpointSpec, ...]) -> EndpointSpec:
    """Every field any edit endpoint takes, each at its widest range: what an unknown id is checked by."""
    ranges: dict[str, tuple[float, float]] = {}
    enums: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        for name, (low, high) in spec.ranges.items():
            old = ranges.get(name, (low, high))
            ranges[name] = (min(low, old[0]), max(high, old[1]))
        for name, options in spec.enums.items():
            enums[name] = tuple(dict.fromkeys([*enums.get(name, ()), *options]))
    base = specs[0]
    return EndpointSpec(
        CUSTOM, "", "any other endpoint id (generic rules: fal's 422 has the last word)",
        fields=frozenset().union(*(s.fields for s in specs)) - {"image_url"}, ranges=ranges,
        integers=frozenset().union(*(s.integers for s in specs)), enums=enums, defaults=base.defaults,
        descriptions=base.descriptions, size_when_omitted="input", price_per_mp=None, reads_area=None,
        unconfirmed=("everything: not in the pack's table",))


GENERIC = _union(ENDPOINTS)
BY_NAME = {spec.name: spec for spec in ALL_ENDPOINTS}
BY_ENDPOINT = {spec.endpoint: spec for spec in ALL_ENDPOINTS}
MODEL_NAMES = tuple(spec.name for spec in ENDPOINTS)


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


def snapshot_age_days(today: str) -> int:
    """Days between the schema snapshot's reading and ``today`` (YYYY-MM-DD)."""
    from datetime import date
    return (date.fromisoformat(today) - date.fromisoformat(SNAPSHOT_READ_ON)).days
