"""What the edit nodes' widgets mean: widget values → the request, the endpoint and the estimate.

One place for the nodes' ``execute`` and for the price the frontend shows before Run
(``POST /fal_qwen_edit/estimate``), so the badge and the run can never disagree; and what each model
takes, for the frontend to show its own widgets and ranges (``GET /fal_qwen_edit/models``). Plain Python:
the inputs' sizes come as (width, height, frames), not tensors. The Multiple Angles node's widgets
are the edit node's with the camera instead of a prompt (``angles_values``): one rule for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..base.errors import FalError, InputError
from ..media.inputs import estimate_run
from ..models.endpoint_table import SNAPSHOT_READ_ON
from ..models.endpoints import (ALL_ENDPOINTS, ANGLES, CAMERA_FIELDS, CUSTOM, GENERIC, MODEL_NAMES, EndpointSpec,
                               spec_for)
from ..models.pricing import PER_MEGAPIXEL, PRICE_UNKNOWN, Estimate, PriceLookup, table_price, unknown_reason
from ..models.qwen import DEFAULT_ENDPOINT, OPTIONAL_FIELDS, Lora, QwenEditRequest

BATCH_MODES = ("all images in one edit", "one edit per image_1 frame")
IMAGE_INPUTS = ("image_1", "image_2", "image_3")
EDIT_NODE, ANGLES_NODE = "FalQwenImageEditPlus", "FalQwenMultipleAngles"
ANGLES_IMAGE = "image"  # the Multiple Angles node's one image input: image_1 of the rules here
Size = tuple[int, int, int]  # width, height, frames


def parse_urls(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def request_from_widgets(values: Mapping[str, Any], loras: Sequence[Lora] = ()) -> QwenEditRequest:
    size = values.get("image_size", "auto")
    image_size = (int(values.get("width", 1024)), int(values.get("height", 1024))) if size == "custom" else \
        None if size == "auto" else size
    acceleration = values.get("acceleration", "default")
    expansion = values.get("enable_prompt_expansion")
    camera = {name: values.get(name) for name in CAMERA_FIELDS}
    camera["additional_prompt"] = (camera["additional_prompt"] or "").strip() or None
    request = QwenEditRequest(
        prompt=values.get("prompt", ""), image_urls=parse_urls(values.get("image_urls")),
        negative_prompt=(values.get("negative_prompt") or "").strip() or None, image_size=image_size,
        num_inference_steps=int(values.get("num_inference_steps", 50)),
        guidance_scale=float(values.get("guidance_scale", 4.0)), num_images=int(values.get("num_images", 1)),
        seed=None if values.get("fal_picks_seed") else int(values.get("seed", 0)),
        enable_safety_checker=bool(values.get("enable_safety_checker", True)),
        output_format=values.get("output_format", "png"), sync_mode=True if values.get("sync_mode") else None,
        acceleration=None if acceleration == "default" else acceleration, loras=list(loras),
        enable_prompt_expansion=None if expansion is None else bool(expansion), **camera)
    # The widgets the chosen model does not take (hidden on the node) are never sent.
    return request.for_model(endpoint_from_widgets(values))


def angles_values(widgets: Mapping[str, Any]) -> dict[str, Any]:
    """The Multiple Angles node's widgets as the values above: its own model, no prompt (fal builds it
    from the camera), its one image as the edit's only one."""
    return {**widgets, "model": ANGLES.name, "prompt": "", "batch_mode": BATCH_MODES[0]}


def endpoint_from_widgets(values: Mapping[str, Any]) -> EndpointSpec:
    """``model`` None: a prompt saved before that input existed, which meant the endpoint field."""
    return spec_for(values.get("model"), values.get("endpoint") or DEFAULT_ENDPOINT)


@dataclass(frozen=True)
class RunShape:
    """How many jobs a run makes and the (width, height) of every image each job sends."""
    jobs: int
    input_sizes: list[tuple[int, int]]


def run_shape(batch_mode: str, sizes: Mapping[str, Size | None]) -> RunShape:
    """``sizes`` by input name; an absent input is left out. Per-frame mode: one job per frame of
    image_1, each with one frame of it plus every frame of image_2/image_3."""
    per_frame = batch_mode == BATCH_MODES[1]
    present = [(name, size) for name in IMAGE_INPUTS if (size := sizes.get(name)) is not None]
    first = sizes.get("image_1")
    jobs = first[2] if per_frame and first is not None else 1
    frames = []
    for name, (width, height, count) in present:
        frames += [(width, height)] * (1 if per_frame and name == "image_1" else count)
    return RunShape(jobs, frames)


def estimate_for_widgets(values: Mapping[str, Any], sizes: Mapping[str, Size | None],
                         loras: Sequence[Lora] = (), price_of: PriceLookup = table_price) -> Estimate:
    spec = endpoint_from_widgets(values)
    request = request_from_widgets(values, loras)
    shape = run_shape(values.get("batch_mode", BATCH_MODES[0]), sizes)
    return estimate_run(spec, request, shape.input_sizes, values.get("input_resize") or "fit model", shape.jobs,
                        price_of)


def price_preview(values: Mapping[str, Any], sizes: Mapping[str, Size | None],
                  connected: Sequence[str] = (), price_of: PriceLookup = table_price) -> dict[str, Any]:
    """What the frontend shows on the node before Run, as JSON.

    ``sizes`` holds the inputs whose size the frontend knows; ``connected`` names every image input
    that is wired, known or not. When an unknown size decides the total (a per-megapixel price and an
    output size that follows the inputs, or per-frame mode's frame count), the answer is the rate, not a
    made-up total; when the price itself is unknown, the answer says so ("price unknown"), with no figure.
    ``price_of``: the run's price rule (models/pricing.py; the route reads the state folder's cache of
    fal's prices, as the run does)."""
    spec = endpoint_from_widgets(values)
    per_frame = values.get("batch_mode") == BATCH_MODES[1]
    unknown = [name for name in connected if sizes.get(name) is None]
    known_sizes = {name: size for name, size in sizes.items() if name in connected or not connected}
    estimate = estimate_for_widgets(values, known_sizes, price_of=price_of)
    price = estimate.price
    base = {"endpoint": spec.endpoint, "model": spec.name, "num_images": estimate.images,
            "price_known": price is not None, "price_confirmed": price is not None,
            "unit_price_usd": price.usd if price else None, "price_unit": price.unit if price else None,
            "price_source": price.source if price else None,
            "rate_usd_per_mp": price.usd if price and price.unit == PER_MEGAPIXEL else None}
    if price is None:
        return {**base, "known": False, "usd": None, "jobs": None, "per": None, "per_usd": None,
                "badge": PRICE_UNKNOWN, "text": unknown_reason(spec.name)}
    output_follows_inputs = values.get("image_size", "auto") == "auto" and spec.size_when_omitted == "input"
    frames_unknown = per_frame and "image_1" in unknown
    # A per-image price does not depend on the output's size: only the frame count can leave it open.
    sizes_unknown = price.unit == PER_MEGAPIXEL and output_follows_inputs and (bool(unknown) or not known_sizes)
    if sizes_unknown or frames_unknown:
        unit = "frame" if frames_unknown and not sizes_unknown else "MP"
        per = estimate.per_job() if unit == "frame" else price.usd
        return {**base, "known": False, "usd": None, "jobs": None, "per": unit, "per_usd": per,
                "badge": f"${per:g}/{unit}",
                "text": f"{price.rule()} on {spec.name}; the total follows the inputs' "
                        f"{'frame count' if unit == 'frame' else 'sizes'}, known after the first run"}
    return {**base, "known": True, "usd": estimate.usd, "jobs": estimate.jobs, "per": None, "per_usd": None,
            "badge": f"≈${estimate.usd:.3f}", "text": estimate.what()}


def check_model_name(model: Any) -> None:
    if model is not None and model not in (CUSTOM, *MODEL_NAMES):
        raise InputError([f"model {model!r} is not one of {', '.join((CUSTOM, *MODEL_NAMES))}"])


def parse_sizes(raw: Any) -> dict[str, tuple[int, int, int]]:
    sizes = {}
    for name, size in (raw or {}).items():
        if name not in IMAGE_INPUTS or size is None:
            continue
        if not (isinstance(size, (list, tuple)) and len(size) == 3 and all(isinstance(v, int) and 0 < v < 10**6
                                                                            for v in size)):
            raise ValueError(f"sizes.{name} must be [width, height, frames] as positive integers")
        sizes[name] = (size[0], size[1], size[2])
    return sizes


def estimate_answer(body: Any, price_of: PriceLookup = table_price) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("widgets"), dict):
        return 400, {"error": 'send {"widgets": {name: value}, "sizes": {"image_1": [w, h, frames]}, '
                              '"connected": ["image_1", …]}'}
    try:
        widgets, sizes, connected = _node_question(body.get("node") or EDIT_NODE, body)
        return 200, price_preview(widgets, parse_sizes(sizes), [name for name in connected if name in IMAGE_INPUTS],
                                  price_of)
    except (FalError, ValueError, TypeError, KeyError) as exc:
        return 400, {"error": f"cannot price these widget values: {exc}"}


def widgets_not_sent(spec: EndpointSpec) -> list[str]:
    """The node's widgets whose field ``spec``'s endpoint does not take: ``QwenEditRequest.for_model`` drops
    them, so the frontend hides them for that model (loras is an input, refused rather than dropped)."""
    return [name for name in OPTIONAL_FIELDS if name != "loras" and not spec.takes(name)]


def model_facts(spec: EndpointSpec) -> dict[str, Any]:
    """One model as ``GET /fal_qwen_edit/models`` answers it: the table's own facts, as JSON."""
    return {"name": spec.name, "endpoint": spec.endpoint, "title": spec.title, "listed": spec.listed, "node": spec.node,
            "fields": sorted(spec.fields), "not_sent": widgets_not_sent(spec), "integers": sorted(spec.integers),
            "ranges": {name: list(bounds) for name, bounds in spec.ranges.items()},
            "enums": {name: list(options) for name, options in spec.enums.items()}, "defaults": dict(spec.defaults),
            "max_lengths": dict(spec.max_lengths), "seed_range": list(spec.seed_range),
            "size_when_omitted": spec.size_when_omitted, "image_field": spec.image_field,
            "image_count": [spec.min_images, spec.max_images],
            "output_pixels": list(spec.output_pixels) if spec.output_pixels else None,
            "descriptions": dict(spec.descriptions)}


def models_answer() -> dict[str, Any]:
    """What the edit node's frontend needs to show each model's own widgets, ranges and defaults: every model
    of the table by name, ``custom`` (the generic rules for an endpoint id the table lacks), and which name
    each known endpoint id has (``custom`` with a known id is that model, as ``spec_for`` decides)."""
    models = {spec.name: model_facts(spec) for spec in ALL_ENDPOINTS}
    models[CUSTOM] = model_facts(GENERIC)
    return {"snapshot_read_on": SNAPSHOT_READ_ON, "default_endpoint": DEFAULT_ENDPOINT, "custom": CUSTOM,
            "listed": [CUSTOM, *MODEL_NAMES], "models": models,
            "endpoints": {spec.endpoint: spec.name for spec in ALL_ENDPOINTS}}


def _node_question(node: Any, body: dict) -> tuple[dict[str, Any], dict, list]:
    """A question from either node as the edit node's: widgets, sizes and wired inputs by image_1's name."""
    widgets, sizes, connected = body["widgets"], body.get("sizes") or {}, list(body.get("connected") or ())
    if not isinstance(sizes, dict):
        raise ValueError("sizes must be {input name: [width, height, frames]}")
    if node == EDIT_NODE:
        check_model_name(widgets.get("model"))
        return widgets, sizes, connected
    if node == ANGLES_NODE:
        rename = {ANGLES_IMAGE: "image_1"}
        return angles_values(widgets), {rename[name]: size for name, size in sizes.items() if name in rename}, \
            [rename[name] for name in connected if name in rename]
    raise ValueError(f"node {node!r} is not {EDIT_NODE} or {ANGLES_NODE}")
