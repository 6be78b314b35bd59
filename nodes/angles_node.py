"""The "Qwen Multiple Angles (fal)" node: fal-ai/qwen-image-edit-2511-multiple-angles, a camera move on one
image. A thin V3 shell: its widgets mean what ``fal.edit.node_values.angles_values`` says (the edit node's
rules with the camera instead of a prompt) and it runs through the edit node's ``run_edit``, so the result
cache, the job journal, the spending cap, progress, Cancel, the job history and the price are the same.
Ranges and defaults are fal's own, from the endpoint table (``ANGLES``).
"""

from __future__ import annotations

import functools

import torch
from comfy_api.latest import io

from .fal.edit.node_values import ANGLES_IMAGE, angles_values
from .fal.edit.pipeline import DEFAULT_TIMEOUT
from .fal.models.endpoints import ANGLES, IMAGE_SIZE_PRESETS
from .qwen_edit_node import CATEGORY, QwenImageEditPlusNode, run_edit
from .schema_features import advanced, search_aliases


@functools.cache
def _edit_node() -> io.Schema:
    return QwenImageEditPlusNode.define_schema()


def same_as_edit_node(name: str):
    """An input both nodes have, as the edit node defines it: one wording, one range, one place to change it."""
    return next(item for item in _edit_node().inputs if item.id == name)


def number(name: str, kind, tooltip: str, **options):
    """A widget for one of the endpoint's numbers: fal's range and default, said at the end of the tooltip."""
    low, high = ANGLES.ranges[name]
    default = ANGLES.defaults[name]
    return kind.Input(name, default=default, min=low, max=high, **options,
                      tooltip=f"{tooltip} {low:g} to {high:g}; fal's default {default:g}.")


class QwenMultipleAnglesNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        slider = {"display_mode": io.NumberDisplay.slider}
        return io.Schema(
            node_id="FalQwenMultipleAngles",  # node_values.ANGLES_NODE (names written out: test_locales reads them)
            display_name="Qwen Multiple Angles (fal)",
            category=CATEGORY,
            **search_aliases("qwen multiple angles", "camera angle", "rotate camera", "novel view", "fal qwen"),
            description="Shows the picture from another camera position with Qwen Image Edit 2511's Multiple "
                        "Angles LoRA on fal: around the subject, from above or below, closer or further. No "
                        "prompt: fal writes it from the camera values. Paid per run: an unchanged graph re-uses "
                        "the last result instead of paying again.",
            inputs=[
                io.Image.Input("image",  # node_values.ANGLES_IMAGE
                               tooltip="The picture to see from another angle. One image: the model takes "
                                       "exactly one, so a batch of several frames is refused."),
                number("horizontal_angle", io.Float, step=1.0, **slider,
                       tooltip="Where the camera stands around the subject, in degrees: 0° front, 90° right side, "
                               "180° back, 270° left side, 360° front again;"),
                number("vertical_angle", io.Float, step=1.0, **slider,
                       tooltip="How high the camera is, in degrees: -30° low (looking up), 0° eye level, "
                               "30° elevated, 60° high, 90° straight down (bird's-eye view);"),
                number("zoom", io.Float, step=0.1, **slider,
                       tooltip="How close the camera is: 0 wide shot (far away), 5 medium shot, 10 close-up;"),
                io.String.Input("additional_prompt", multiline=True, default="",
                                tooltip="Words added after the prompt fal writes from the camera, e.g. 'soft "
                                        "evening light'. Empty: none."),
                io.String.Input("negative_prompt", multiline=True, default="",
                                tooltip="What to avoid. Empty: none (fal's default)."),
                number("lora_scale", io.Float, step=0.05,
                       tooltip="How strongly the camera-control LoRA applies:"),
                io.Combo.Input("image_size", options=["auto", *IMAGE_SIZE_PRESETS, "custom"], default="auto",
                               tooltip="Output size. auto: from the input's size (fal's default for this model). "
                                       "square_hd 1024², square 512², portrait/landscape 4:3 and 16:9 at 1024 px "
                                       "on the long side; custom uses width and height."),
                same_as_edit_node("width"),
                same_as_edit_node("height"),
                number("num_inference_steps", io.Int,
                       tooltip="Denoising steps (fewer is faster):"),
                number("guidance_scale", io.Float, step=0.1,
                       tooltip="How closely to follow the prompt fal writes:"),
                number("num_images", io.Int, tooltip="Images to make, each one billed:"),
                same_as_edit_node("seed"),
                same_as_edit_node("fal_picks_seed"),
                same_as_edit_node("enable_safety_checker"),
                io.Combo.Input("output_format", options=list(ANGLES.output_formats),
                               default=ANGLES.defaults["output_format"],
                               tooltip="Format fal encodes the outputs in (png is lossless)."),
                io.Combo.Input("acceleration", **advanced(), options=["default", *ANGLES.accelerations],
                               default="default",
                               tooltip="Speed/quality trade-off: none or regular; default leaves it to fal "
                                       "(regular)."),
                same_as_edit_node("sync_mode"),
                same_as_edit_node("timeout"),
                same_as_edit_node("force_new_job"),
                same_as_edit_node("connection"),
                same_as_edit_node("input_resize"),
                same_as_edit_node("upload_format"),
                same_as_edit_node("start_timeout"),
                same_as_edit_node("priority"),
                # New inputs go last: saved workflows store widget values by position.
            ],
            outputs=_edit_node().outputs,  # images, seed, info, mask: the same outputs, the same words
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    async def execute(cls, image: torch.Tensor, timeout: int = int(DEFAULT_TIMEOUT), force_new_job: bool = False,
                      connection=None, input_resize: str | None = None, upload_format: str | None = None,
                      start_timeout: int | None = None, priority: str | None = None, **widgets) -> io.NodeOutput:
        return await run_edit(cls.hidden.unique_id, angles_values(widgets), image,
                              connection=connection, timeout=timeout, force_new_job=force_new_job,
                              input_resize=input_resize, upload_format=upload_format, start_timeout=start_timeout,
                              priority=priority, shown_names={"image_1": ANGLES_IMAGE})
