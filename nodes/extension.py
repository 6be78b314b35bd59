"""The ComfyExtension that registers this pack's nodes (loaded lazily by ``__init__.py``)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .connection_node import FalConnectionNode
from .lora_node import FalLoraNode
from .qwen_edit_node import QwenImageEditPlusNode
from .url_nodes import FalResultByRequestIdNode, FalUploadImageNode, LoadImageFromUrlNode


class FalQwenEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [QwenImageEditPlusNode, FalUploadImageNode, LoadImageFromUrlNode, FalResultByRequestIdNode,
                FalConnectionNode, FalLoraNode]
