"""What the edit nodes' widgets mean: widget values → the request, the endpoint and the estimate.

One place for the nodes' ``execute`` and for the price the frontend shows before Run
(``POST /fal_qwen_edit/estimate``), so the badge and the run can never disagree. Plain Python:
the inputs' sizes come as (width, height, frames), not tensors. The Multiple Angles node's widgets
are the edit node's with the camera instead of a prompt (``angles_values``): one rule for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..base.errors import FalError, InputError
from ..media.inputs import estimate_run
from ..models.endpoints import ANGLES, CAMERA_FIELDS, CUSTOM, MODEL_NAMES, EndpointSpec, spec_for
from ..models.pricing import FALLBACK_RATE, Estimate
from ..models.qwen import DEFAULT_ENDPOINT, Lora, QwenEditRequest

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
                         loras: Sequence[Lora] = ()) -> Estimate:
    spec = endpoint_from_widgets(values)
    request = request_from_widgets(values, loras)
    shape = run_shape(values.get("batch_mode", BATCH_MODES[0]), sizes)
    return estimate_run(spec, request, shape.input_sizes, values.get("input_resize") or "fit model", shape.jobs)


def price_preview(values: Mapping[str, Any], sizes: Mapping[str, Size | None],
                  connected: Sequence[str] = ()) -> dict[str, Any]:
    """What the frontend shows on the node before Run, as JSON.

    ``sizes`` holds the inputs whose size the frontend knows; ``connected`` names every image input
    that is wired, known or not. When an unknown size decides the total (the output size follows the
    inputs, or per-frame mode's frame count), the answer is the rate, not a made-up total."""
    spec = endpoint_from_widgets(values)
    per_frame = values.get("batch_mode") == BATCH_MODES[1]
    unknown = [name for name in connected if sizes.get(name) is None]
    known_sizes = {name: size for name, size in sizes.items() if name in connected or not connected}
    estimate = estimate_for_widgets(values, known_sizes)
    rate = spec.price_per_mp if spec.price_per_mp is not None else FALLBACK_RATE
    output_follows_inputs = values.get("image_size", "auto") == "auto" and spec.size_when_omitted == "input"
    frames_unknown = per_frame and "image_1" in unknown
    sizes_unknown = output_follows_inputs and (bool(unknown) or not known_sizes)
    base = {"endpoint": spec.endpoint, "model": spec.name, "rate_usd_per_mp": rate,
            "price_confirmed": spec.price_per_mp is not None, "num_images": estimate.images}
    if sizes_unknown or frames_unknown:
        unit = "frame" if frames_unknown and not sizes_unknown else "MP"
        per = round(estimate.per_job(), 4) if unit == "frame" else rate
        return {**base, "known": False, "usd": None, "jobs": None, "per": unit, "per_usd": per,
                "badge": f"${per:g}/{unit}",
                "text": f"${rate:g} per megapixel of output on {spec.name}; the total follows the inputs' "
                        f"{'frame count' if unit == 'frame' else 'sizes'}, known after the first run"}
    return {**base, "known": True, "usd": estimate.usd, "jobs": estimate.jobs, "per": None, "per_usd": None,
            "badge": f"≈${estimate.usd:.3f}", "text": f"{estimate.text()} on {spec.name}"}


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


def estimate_answer(body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("widgets"), dict):
        return 400, {"error": 'send {"widgets": {name: value}, "sizes": {"image_1": [w, h, frames]}, '
                              '"connected": ["image_1", …]}'}
    try:
        widgets, sizes, connected = _node_question(body.get("node") or EDIT_NODE, body)
        return 200, price_preview(widgets, parse_sizes(sizes), [name for name in connected if name in IMAGE_INPUTS])
    except (FalError, ValueError, TypeError, KeyError) as exc:
        return 400, {"error": f"cannot price these widget values: {exc}"}


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
