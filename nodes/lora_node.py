"""The "fal LoRA" node: one LoRA (URL and weight) for the LoRA endpoints of fal's Qwen image edit family.

Chainable: each node appends its LoRA to the ``loras`` it was given, and the
chain goes into the edit node's ``loras`` input. fal merges up to 3.
"""

from __future__ import annotations

from comfy_api.latest import io

from .comfy_progress import shown_as_short_name
from .fal.models.endpoints import GENERIC
from .fal.base.errors import InputError
from .fal.models.qwen import Lora

FalLoras = io.Custom("FAL_LORAS")


class FalLoraNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        low, high = GENERIC.lora_scale
        return io.Schema(
            node_id="FalQwenLora",
            display_name="fal LoRA",
            category="fal/Qwen Edit",
            description="A LoRA for the Qwen edit LoRA endpoints (qwen-edit-plus-lora, qwen-edit-2511-lora, "
                        "qwen-edit-lora). Chain several into the edit node's loras input; fal merges up to 3.",
            inputs=[
                io.String.Input("url", default="",
                                tooltip="Public URL of the .safetensors file (Hugging Face 'resolve' link, Civitai "
                                        "download link, or fal storage), or a Hugging Face 'owner/repo' path. A "
                                        "URL with a token in it is refused: it would be saved in the workflow."),
                io.Float.Input("scale", default=1.0, min=low, max=high, step=0.05,
                               tooltip=f"How strongly the LoRA applies, {low:g}-{high:g} (fal's default 1)."),
                FalLoras.Input("loras", optional=True, tooltip="LoRAs from another fal LoRA node, to chain."),
            ],
            outputs=[FalLoras.Output(display_name="loras",
                                     tooltip="This LoRA after the chained ones: to the edit node's loras input.")],
        )

    @classmethod
    def execute(cls, url: str, scale: float, loras=None) -> io.NodeOutput:
        lora = Lora(url.strip(), float(scale))
        problems = lora.problems(GENERIC)
        if problems:
            raise shown_as_short_name(InputError(problems))
        return io.NodeOutput((*(loras or ()), lora))
