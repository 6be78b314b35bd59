"""The "Qwen Image Edit Plus (fal)" node: a thin V3 shell over ``fal.pipeline``.

Caching: no ``fingerprint_inputs`` on purpose. ComfyUI re-runs a node only
when an input changes, so an unchanged graph (seed control "fixed") never
submits a second paid job, while "randomize"/"increment" change the seed
widget before each queueing and so intentionally make a new request. Across
restarts the pipeline's result cache and job journal do the same job.
"""

from __future__ import annotations

import asyncio
import json

import torch
from comfy_api.latest import io

import comfy.model_management

from .comfy_progress import node_errors, node_progress
from .connection_node import FalConnection
from .fal.edit.connection import client_for
from .fal.edit.node_values import BATCH_MODES, endpoint_from_widgets, estimate_for_widgets, request_from_widgets
from .fal.models.endpoints import CUSTOM, MODEL_NAMES
from .fal.media.images import MISMATCH_MODES
from .fal.edit.outcome import run_info, total_estimate
from .fal.models.pricing import PRICE_UNKNOWN
from .fal.edit.pipeline import DEFAULT_TIMEOUT, EditOutcome, combine
from .fal.wire.config import input_defaults
from .fal.wire.guards import PRIORITIES, resolve_guards
from .fal.media.inputs import UPLOAD_FORMATS
from .fal.models.sizing import RESIZE_MODES
from .fal.models.qwen import (ACCELERATIONS, DEFAULT_ENDPOINT, GUIDANCE_RANGE, IMAGE_SIZE_PRESETS, NUM_IMAGES_RANGE,
                       OUTPUT_FORMATS, SIDE_RANGE, STEPS_RANGE)
from .lora_node import FalLoras
from .schema_features import advanced, search_aliases

CATEGORY = "fal/Qwen Edit"
SEED_MAX = 2**32 - 1


def done_text(outcomes: list[EditOutcome], seconds: float) -> str:
    """The node's final text: where the images came from, what they cost, and the request ids."""
    how = {"job": "done", "resumed": "resumed an earlier run's job", "cache": "from the result cache (free)"}
    lines = [f"fal: {len(outcomes)} edits in {seconds:.1f} s" if len(outcomes) > 1 else
             f"fal: {how.get(outcomes[0].source, outcomes[0].source)} in {seconds:.1f} s"]
    cost = total_estimate(outcomes)
    if cost is None:  # said plainly, never a made-up figure (models/pricing.py)
        lines.append(f"cost: {PRICE_UNKNOWN} (no table price and none from fal's pricing API yet)")
    elif cost:
        lines.append(f"cost: about ${cost:.3f} (an estimate)")
    lines += [f"request {o.handle.request_id}" for o in outcomes[:4]]
    lines += sorted({o.note for o in outcomes if o.note})  # e.g. a Cancel that came after fal had finished
    flagged = sum(sum(o.result.has_nsfw_concepts) for o in outcomes)
    if flagged:  # the picture itself is usually just black: say why on the node, not only in info
        lines.append(f"⚠ fal's safety checker flagged {flagged} output(s); they are likely blacked out")
    return "\n".join(lines)


def input_sizes(**images: torch.Tensor | None) -> dict[str, tuple[int, int, int]]:
    """(width, height, frames) of each connected IMAGE input."""
    return {name: (t.shape[2], t.shape[1], t.shape[0]) for name, t in images.items() if t is not None}


class QwenImageEditPlusNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        image_help = "Reference image (each may be a batch: every frame is sent). The model works best with 1-3."
        return io.Schema(
            node_id="FalQwenImageEditPlus",
            display_name="Qwen Image Edit Plus (fal)",
            category=CATEGORY,
            **search_aliases("qwen edit", "qwen image edit", "qwen image edit plus", "qwen 2511", "fal qwen",
                             "edit image api"),
            description="Edits images with Qwen-Image-Edit-Plus on fal (or a gateway). Paid per run: an "
                        "unchanged graph re-uses the last result instead of paying again.",
            inputs=[
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="What to change. Refer to inputs as 'image 1', 'image 2'… "
                                        "e.g. 'the woman from image 1 in front of the car from image 2'."),
                io.Image.Input("image_1", tooltip=image_help),
                io.Image.Input("image_2", optional=True, tooltip=image_help),
                io.Image.Input("image_3", optional=True, tooltip=image_help),
                io.String.Input("negative_prompt", multiline=True, default="",
                                tooltip="What to avoid. Empty: fal's default (' ')."),
                io.Combo.Input("image_size", options=["auto", *IMAGE_SIZE_PRESETS, "custom"], default="auto",
                               tooltip="Output size. auto: fal derives it from the inputs. square_hd 1024², "
                                       "square 512², portrait/landscape 4:3 and 16:9 at 1024 px on the long "
                                       "side; custom uses width and height."),
                io.Int.Input("width", default=1024, min=SIDE_RANGE[0], max=SIDE_RANGE[1], step=8,
                             tooltip=f"Output width when image_size is custom ({SIDE_RANGE[0]}-{SIDE_RANGE[1]})."),
                io.Int.Input("height", default=1024, min=SIDE_RANGE[0], max=SIDE_RANGE[1], step=8,
                             tooltip=f"Output height when image_size is custom ({SIDE_RANGE[0]}-{SIDE_RANGE[1]})."),
                io.Int.Input("num_inference_steps", default=50, min=STEPS_RANGE[0], max=STEPS_RANGE[1],
                             tooltip=f"Denoising steps, {STEPS_RANGE[0]}-{STEPS_RANGE[1]} (fal default 50). "
                                     "Fewer is faster and cheaper to wait for."),
                io.Float.Input("guidance_scale", default=4.0, min=GUIDANCE_RANGE[0], max=GUIDANCE_RANGE[1],
                               step=0.1, tooltip="How closely to follow the prompt, 0-20 (fal default 4)."),
                io.Int.Input("num_images", default=1, min=NUM_IMAGES_RANGE[0], max=NUM_IMAGES_RANGE[1],
                             tooltip=f"Images per edit, 1-4 (Qwen-Image-2 and Max: 1-{NUM_IMAGES_RANGE[1]}). "
                                     "Each one is billed."),
                io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True,
                             tooltip="Seed sent to fal. 'fixed' re-uses the cached result; 'randomize' "
                                     "makes a new (paid) edit every run."),
                io.Boolean.Input("fal_picks_seed", **advanced(), default=False,
                                 tooltip="Let fal choose the seed (the seed output tells which it used)."),
                io.Boolean.Input("enable_safety_checker", default=True,
                                 tooltip="fal's NSFW checker; flagged images come back black and are "
                                         "reported in the info output."),
                io.Combo.Input("output_format", options=list(OUTPUT_FORMATS), default="png",
                               tooltip="Format fal encodes the outputs in (png is lossless)."),
                io.Combo.Input("acceleration", **advanced(), options=["default", *ACCELERATIONS], default="default",
                               tooltip="Speed/quality trade-off where the endpoint supports it; default "
                                       "leaves it to fal."),
                io.Boolean.Input("sync_mode", **advanced(), default=False,
                                 tooltip="Ask fal to return images inline; they are then not kept in your "
                                         "fal request history."),
                io.Combo.Input("batch_mode", options=list(BATCH_MODES), default=BATCH_MODES[0],
                               tooltip="all images in one edit: every frame of every input is a reference. "
                                       "one edit per image_1 frame: a separate edit for each frame of "
                                       "image_1, with image_2/image_3 as shared references."),
                io.Int.Input("concurrency", **advanced(), default=4, min=1, max=16,
                             tooltip="Jobs on fal at once in per-frame mode; the next frames are encoded and "
                                     "uploaded while they run."),
                io.Combo.Input("size_mismatch", **advanced(), options=list(MISMATCH_MODES), default="pad",
                               tooltip="Outputs of different sizes in one batch: pad (centre on black, padding "
                                       "marked in the mask), resize to the first, or error."),
                io.Int.Input("timeout", **advanced(), default=int(DEFAULT_TIMEOUT), min=10, max=7200,
                             tooltip="Seconds to wait for the whole edit; on timeout the request id is "
                                     "reported so the result is not lost."),
                io.Boolean.Input("force_new_job", **advanced(), default=False,
                                 tooltip="Submit a new (paid) job even when this exact edit is in the result "
                                         "cache or an earlier run's job can be resumed."),
                io.String.Input("endpoint", **advanced(), default=DEFAULT_ENDPOINT,
                                tooltip="fal endpoint id, used when model is 'custom' (a known id gets its own "
                                        "fields and ranges; any other id the generic rules)."),
                io.String.Input("image_urls", **advanced(), multiline=True, default="", optional=True,
                                tooltip="Extra already-hosted image URLs, one per line (e.g. from fal Upload "
                                        "Image); sent before the image inputs."),
                FalConnection.Input("connection", optional=True,
                                    tooltip="From a fal Connection node. Empty: FAL_KEY / config.ini."),
                io.Combo.Input("model", options=[CUSTOM, *MODEL_NAMES], default=CUSTOM, optional=True,
                               tooltip="Which Qwen edit endpoint on fal: plus (2509), 2511, their LoRA versions, "
                                       "or the first one-image release; each gets its own fields, ranges and "
                                       "price. custom: the endpoint field (fal-ai/qwen-image-edit-plus unless "
                                       "changed). Run fal-qwen-edit --list-models for the table."),
                FalLoras.Input("loras", optional=True,
                               tooltip="From fal LoRA nodes; only for models that take LoRAs (…-lora)."),
                io.Combo.Input("input_resize", **advanced(), options=list(RESIZE_MODES), default=RESIZE_MODES[0], optional=True,
                               tooltip="fit model: inputs larger than the model reads (about 1 MP, the size "
                                       "Qwen's pipeline resizes every input to) are downscaled before upload, "
                                       "so a 12 MP photo uploads ~12x faster; the output size is kept. off: "
                                       "send every pixel."),
                io.Combo.Input("upload_format", **advanced(), options=list(UPLOAD_FORMATS), default=UPLOAD_FORMATS[0],
                               optional=True,
                               tooltip="How inputs are encoded for upload: png (lossless), webp_lossless "
                                       "(lossless, smaller, slower to encode), jpeg_95 (smallest, lossy, "
                                       "drops alpha)."),
                io.Int.Input("start_timeout", **advanced(), default=-1, min=-1, max=86400, optional=True,
                             tooltip="Queue deadline in seconds. -1 = automatic (shown as 'auto'): "
                                     "FAL_START_TIMEOUT or config.ini, else what is left of timeout, as fal's own "
                                     "client does. 0 = none. Otherwise fal drops the job, unrun and unbilled, if "
                                     "no runner has started it this many seconds after the submit (sent as "
                                     "X-Fal-Request-Timeout, more than 1)."),
                io.Combo.Input("priority", **advanced(), options=["default", *PRIORITIES], default="default",
                               optional=True,
                               tooltip="fal's queue priority (X-Fal-Queue-Priority): low lets a large batch that "
                                       "is not urgent yield to interactive work. default: FAL_QUEUE_PRIORITY or "
                                       "config.ini, else normal."),
                # New inputs go last: saved workflows store widget values by position.
                io.Boolean.Input("enable_prompt_expansion", default=True, optional=True,
                                 tooltip="Qwen-Image-2 and Max only: fal rewrites the prompt with an LLM first "
                                         "(fal's default: on). Off: the prompt is used as written."),
            ],
            outputs=[
                io.Image.Output(display_name="images", tooltip="All outputs as one batch."),
                io.Int.Output(display_name="seed", tooltip="The seed fal actually used."),
                io.String.Output(display_name="info", tooltip="Request id(s), timings, NSFW flags (JSON)."),
                io.Mask.Output(display_name="mask", tooltip="1 - alpha, and 1 where padding was added."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    async def execute(cls, prompt: str, image_1: torch.Tensor, negative_prompt: str, image_size: str,
                      width: int, height: int, num_inference_steps: int, guidance_scale: float,
                      num_images: int, seed: int, fal_picks_seed: bool, enable_safety_checker: bool,
                      output_format: str, acceleration: str, sync_mode: bool, batch_mode: str,
                      concurrency: int, size_mismatch: str, timeout: int, force_new_job: bool,
                      endpoint: str,
                      image_2: torch.Tensor | None = None, image_3: torch.Tensor | None = None,
                      image_urls: str = "", connection=None, model: str | None = None,
                      loras=None, input_resize: str | None = None, upload_format: str | None = None,
                      start_timeout: int | None = None, priority: str | None = None,
                      enable_prompt_expansion: bool | None = None) -> io.NodeOutput:
        values = dict(prompt=prompt, negative_prompt=negative_prompt, image_size=image_size, width=width,
                      height=height, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                      num_images=num_images, seed=seed, fal_picks_seed=fal_picks_seed,
                      enable_safety_checker=enable_safety_checker, output_format=output_format,
                      acceleration=acceleration, sync_mode=sync_mode, image_urls=image_urls, model=model,
                      endpoint=endpoint, batch_mode=batch_mode,
                      enable_prompt_expansion=True if enable_prompt_expansion is None else enable_prompt_expansion)
        return await run_edit(cls.hidden.unique_id, values, image_1, image_2, image_3, loras=loras, connection=connection,
                              concurrency=concurrency,
                              size_mismatch=size_mismatch, timeout=timeout, force_new_job=force_new_job,
                              input_resize=input_resize, upload_format=upload_format,
                              start_timeout=start_timeout, priority=priority)


async def run_edit(node_id: str | None, values: dict, image_1: torch.Tensor, image_2: torch.Tensor | None = None,
                   image_3: torch.Tensor | None = None, *, loras=None,
                   connection=None, concurrency: int = 4, size_mismatch: str = "pad",
                   timeout: float = DEFAULT_TIMEOUT, force_new_job: bool = False, input_resize: str | None = None,
                   upload_format: str | None = None, start_timeout: int | None = None, priority: str | None = None,
                   shown_names: dict[str, str] | None = None) -> io.NodeOutput:
    """One run of a Qwen edit node (this one, and the Multiple Angles node): ``values`` are its widgets as
    ``node_values`` reads them, the images its IMAGE inputs by that module's names; ``shown_names`` renames
    them for the sizes the frontend keeps (the node's own input names)."""
    with node_errors(node_id):
        loras = list(loras or ())
        request = request_from_widgets(values, loras)
        spec = endpoint_from_widgets(values)
        references = [image for image in (image_2, image_3) if image is not None]
        per_frame = values.get("batch_mode") == BATCH_MODES[1]
        frames_per_edit = (1 if per_frame else image_1.shape[0]) + sum(r.shape[0] for r in references)
        # A bad field (or too many images) fails here, before any key lookup or upload.
        request.validate(spec, images_to_come=frames_per_edit)
        default_resize, default_format = input_defaults()  # a prompt saved before these inputs existed
        input_resize, upload_format = input_resize or default_resize, upload_format or default_format
        start, priority = resolve_guards(None if start_timeout in (None, -1) else start_timeout, priority)
        jobs = image_1.shape[0] if per_frame else 1
        sizes = input_sizes(image_1=image_1, image_2=image_2, image_3=image_3)
        client = await asyncio.to_thread(client_for, connection)
        # The price rule of the run itself (the table, else fal's price this machine has cached).
        cost = estimate_for_widgets({**values, "input_resize": input_resize}, sizes, loras,
                                    price_of=client.prices.price_for)
        with node_progress(node_id, jobs=jobs) as progress:
            progress.estimate = cost.what()
            options = dict(endpoint=spec.endpoint, on_progress=progress, timeout=float(timeout),
                           input_resize=input_resize, upload_format=upload_format,
                           should_cancel=comfy.model_management.processing_interrupted, mismatch=size_mismatch,
                           fresh=force_new_job, start_timeout=start, priority=priority)
            if per_frame:
                outcomes = await asyncio.to_thread(client.edit_each, request, image_1, references,
                                                   concurrency=concurrency, **options)
            else:
                outcomes = [await asyncio.to_thread(client.edit, request, [image_1, *references], **options)]
            progress.summary = done_text(outcomes, progress.elapsed())
        images_out, mask = combine(outcomes, size_mismatch) if len(outcomes) > 1 else \
            (outcomes[0].images, outcomes[0].mask)
        used_seed = outcomes[0].result.seed if isinstance(outcomes[0].result.seed, int) else values.get("seed")
    # The sizes go to the frontend, which prices this node by them before the next run.
    shown = {(shown_names or {}).get(name, name): size for name, size in sizes.items()}
    return io.NodeOutput(torch.from_numpy(images_out), used_seed, json.dumps(run_info(outcomes), indent=1),
                         torch.from_numpy(mask), ui={"fal_input_sizes": [shown]})
