"""IMAGE ⇄ URL nodes: "fal Upload Image", "Load Image from URL", "fal Result by Request ID"."""

from __future__ import annotations

import asyncio
import json

import torch
from comfy_api.latest import io

import comfy.model_management

from .comfy_progress import node_errors, node_progress
from .connection_node import FalConnection
from .fal.edit.connection import client_for
from .fal.media.downloads import download_images
from .fal.media.images import MISMATCH_MODES, stack_batch
from .fal.edit.pipeline import DEFAULT_TIMEOUT
from .fal.models.qwen import DEFAULT_ENDPOINT
from .fal.wire.transport import Transport

CATEGORY = "fal/Qwen Edit"
_keyless = None  # fetching arbitrary URLs never needs (or gets) a key


def _keyless_transport() -> Transport:
    global _keyless
    if _keyless is None:
        _keyless = Transport(None)
    return _keyless


class FalUploadImageNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FalQwenUploadImage",
            display_name="fal Upload Image",
            category=CATEGORY,
            description="Uploads every frame of an IMAGE to fal storage (a data URI through a gateway) and "
                        "returns the URLs, one per line. Identical images upload once per session.",
            inputs=[
                io.Image.Input("image", tooltip="Every frame of the batch becomes one URL."),
                FalConnection.Input("connection", optional=True,
                                    tooltip="From a fal Connection node. Empty: FAL_KEY / config.ini."),
            ],
            outputs=[io.String.Output(display_name="urls", tooltip="One URL per line, in batch order.")],
        )

    @classmethod
    async def execute(cls, image: torch.Tensor, connection=None) -> io.NodeOutput:
        with node_errors():
            client = await asyncio.to_thread(client_for, connection)
            urls = await asyncio.to_thread(client.upload_images, [image])
        return io.NodeOutput("\n".join(urls))


class LoadImageFromUrlNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FalQwenLoadImageFromUrl",
            display_name="Load Image from URL",
            category=CATEGORY,
            description="Downloads http(s) or data: image URLs (one per line) into an IMAGE batch and MASK.",
            inputs=[
                io.String.Input("urls", multiline=True, default="",
                                tooltip="http(s) or data:image URLs, one per line. Downloads are capped at "
                                        "200 MB and 64 MP each. Loopback, private, link-local and cloud metadata "
                                        "addresses are refused unless [downloads] in config.ini allows them."),
                io.Combo.Input("size_mismatch", options=list(MISMATCH_MODES), default="pad",
                               tooltip="Images of different sizes: pad, resize to the first, or error."),
            ],
            outputs=[io.Image.Output(display_name="image", tooltip="Every downloaded image as one batch."),
                     io.Mask.Output(display_name="mask", tooltip="1 - alpha (as LoadImage), 1 on padding.")],
        )

    @classmethod
    async def execute(cls, urls: str, size_mismatch: str) -> io.NodeOutput:
        targets = [line.strip() for line in urls.splitlines() if line.strip()]
        if not targets:
            raise ValueError("Load Image from URL: give at least one URL (one per line).")
        with node_errors():
            frames = await asyncio.to_thread(download_images, _keyless_transport(), targets)
            images, mask = stack_batch(frames, size_mismatch)
        return io.NodeOutput(torch.from_numpy(images), torch.from_numpy(mask))


class FalResultByRequestIdNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FalQwenResultByRequestId",
            display_name="fal Result by Request ID",
            category=CATEGORY,
            description="Fetches the outputs of an earlier fal request (from the info output, the console or "
                        "an error message); waits for it first if it is still running. No new job runs, so "
                        "it costs nothing.",
            inputs=[
                io.String.Input("request_id", default="",
                                tooltip="The request id of a finished or running job, e.g. "
                                        "9c08e7d8-312c-402d-a691-…"),
                io.String.Input("endpoint", default=DEFAULT_ENDPOINT,
                                tooltip="The endpoint the request was made to."),
                io.Combo.Input("size_mismatch", options=list(MISMATCH_MODES), default="pad",
                               tooltip="Outputs of different sizes: pad, resize to the first, or error."),
                FalConnection.Input("connection", optional=True,
                                    tooltip="From a fal Connection node. Empty: FAL_KEY / config.ini."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="The request's outputs as one batch."),
                     io.Mask.Output(display_name="mask", tooltip="1 - alpha, and 1 where padding was added."),
                     io.String.Output(display_name="info", tooltip="Seed, timings, NSFW flags (JSON).")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    async def execute(cls, request_id: str, endpoint: str, size_mismatch: str, connection=None) -> io.NodeOutput:
        with node_errors(cls.hidden.unique_id):
            client = await asyncio.to_thread(client_for, connection)
            with node_progress(cls.hidden.unique_id) as progress:
                # Cancel stops the wait only: this node never cancels the job (it did not start it).
                outcome = await asyncio.to_thread(client.result_by_id, request_id.strip(),
                                                  endpoint=endpoint.strip(), mismatch=size_mismatch,
                                                  on_progress=progress,
                                                  should_cancel=comfy.model_management.processing_interrupted,
                                                  timeout=DEFAULT_TIMEOUT)
        return io.NodeOutput(torch.from_numpy(outcome.images), torch.from_numpy(outcome.mask),
                             json.dumps(outcome.info(), indent=1))
