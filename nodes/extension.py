"""The ComfyExtension that registers this pack's nodes and HTTP routes (loaded lazily by ``__init__.py``)."""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .angles_node import QwenMultipleAnglesNode
from .connection_node import FalConnectionNode
from .lora_node import FalLoraNode
from .qwen_edit_node import QwenImageEditPlusNode
from .routes import keys, panel, price
from .url_nodes import FalResultByRequestIdNode, FalUploadImageNode, LoadImageFromUrlNode

_registered = False


def register_routes() -> None:
    """Add the pack's routes to ComfyUI's route table. ComfyUI turns that table into its aiohttp app
    (also under /api/…) only after every custom node has loaded, so this runs at load time."""
    global _registered
    from server import PromptServer
    server = getattr(PromptServer, "instance", None)
    if server is None or _registered:
        return
    price.register(server.routes)
    keys.register(server.routes)
    panel.register(server.routes, server)
    _registered = True


class FalQwenEditExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [QwenImageEditPlusNode, QwenMultipleAnglesNode, FalUploadImageNode, LoadImageFromUrlNode,
                FalResultByRequestIdNode, FalConnectionNode, FalLoraNode]
