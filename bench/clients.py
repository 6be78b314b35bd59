"""The clients compared: this pack, a bare ``requests`` reference, fal-client,
and ComfyUI's core API-node polling pattern (simulated).

Every edit client takes a list of IMAGE tensors ([1,H,W,3] float32) and
returns the outputs as one float32 [B,H,W,3] array, so all of them do the
same work end to end: encode, transport, wait, fetch, decode.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import requests
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png, split_batch, to_uint8
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.queue.client import WaitSettings

from common import ENDPOINT, KEY, PROMPT, Server, pack_config

SEED = 1234  # the node always sends one (its seed widget) unless fal_picks_seed


class Skip(Exception):
    """A client that cannot run here; the message says why."""


def pillow_png(image) -> bytes:
    """What a bare client typically writes: Pillow's default PNG encoder."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(split_batch(image)[0])).save(buffer, format="PNG")
    return buffer.getvalue()


def pack_png(image) -> bytes:
    return encode_png(split_batch(image)[0])


def decode_plain(data: bytes) -> np.ndarray:
    """PNG bytes -> float32 [H,W,3] 0..1, the minimum a client must do."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return pixels.astype(np.float32) * np.float32(1.0 / 255.0)


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# ------------------------------------------------------------------ (a) this pack
class PackClient:
    """The pack as the ComfyUI node runs it: the job journal and the result cache on disk
    (in a temporary directory here), and a fixed seed, so every result is also cached."""

    def __init__(self, server: Server, upload: str = "data_uri", use_sse: bool = True):
        self.state = tempfile.mkdtemp(prefix="bench-pack-")
        self.client = persistent_client(pack_config(server, upload), Path(self.state), verify=server.verify,
                                        wait_settings=WaitSettings(use_sse=use_sse))

    def edit(self, images) -> np.ndarray:
        return self.client.edit(QwenEditRequest(prompt=PROMPT, seed=SEED), images).images

    def settle(self) -> None:
        """Wait for the work the pack does after handing the result back (the history's thumbnails),
        outside the timed edit, so it does not land in the next client's turn."""
        if self.client.history is not None:
            self.client.history.settle()

    def edit_each(self, batch, concurrency: int):
        return self.client.edit_each(QwenEditRequest(prompt=PROMPT, seed=SEED), batch, concurrency=concurrency)

    # completion detection only: submit, then wait for the result JSON
    def submit(self, arguments: dict):
        handle = self.client.queue.submit(ENDPOINT, arguments)
        return handle.request_id, lambda: self.client.queue.wait(handle)

    def close(self) -> None:
        self.client.close()
        shutil.rmtree(self.state, ignore_errors=True)


# ------------------------------------------------------------------ (b) bare reference
class ReferenceClient:
    """Only the minimum: encode, data URIs, submit, poll every 50 ms, result, fetch, decode."""

    POLL = 0.05

    def __init__(self, server: Server, encoder: Callable[[object], bytes] = pack_png):
        self.base = server.fake.url
        self.encoder = encoder
        self.session = requests.Session()
        self.session.verify = server.verify
        self.session.headers["Authorization"] = f"Key {KEY}"

    def edit(self, images) -> np.ndarray:
        uris = [png_uri(self.encoder(image)) for image in images]
        reply = self.session.post(f"{self.base}/{ENDPOINT}", json={"prompt": PROMPT, "image_urls": uris})
        reply.raise_for_status()
        job = reply.json()
        while self.session.get(job["status_url"]).json()["status"] != "COMPLETED":
            time.sleep(self.POLL)
        result = self.session.get(job["response_url"]).json()
        outputs = [decode_plain(self.session.get(image["url"]).content) for image in result["images"]]
        return np.stack(outputs)

    def close(self) -> None:
        self.session.close()


# ------------------------------------------------------------------ (c) fal-client
def load_fal_client(server: Server):
    """Import fal-client pointed at the fake server, or raise Skip with the reason.

    fal-client builds its queue URL once, at import, from FAL_QUEUE_RUN_HOST
    (https only), and reads FAL_KEY; httpx trusts SSL_CERT_FILE. Its storage
    host (rest.fal.ai) is a constant, so it gets data URIs like the others.
    """
    if not server.tls:
        raise Skip(f"fal-client speaks https only: {server.note}")
    os.environ["FAL_KEY"] = KEY
    os.environ["FAL_QUEUE_RUN_HOST"] = server.fake.url.split("://", 1)[1]
    os.environ.setdefault("FAL_RUN_HOST", "127.0.0.1:9")  # unused by subscribe; never fal.run
    try:
        import fal_client
        import fal_client.client as fal_module
        import httpx
    except ImportError as exc:
        raise Skip(f"fal-client is not installed ({exc.name}); pip install -e '.[bench]'") from None
    want = f"https://{os.environ['FAL_QUEUE_RUN_HOST']}/"
    if fal_module.QUEUE_URL_FORMAT != want:
        raise Skip(f"fal-client was imported before its host was set ({fal_module.QUEUE_URL_FORMAT})")
    return fal_client, httpx


class FalClientClient:
    def __init__(self, server: Server):
        fal_client, httpx = load_fal_client(server)
        self.fal = fal_client
        self.client = fal_client.SyncClient(key=KEY)
        self.http = httpx.Client(timeout=60.0)  # outputs: fal-client has no download helper

    def edit(self, images) -> np.ndarray:
        uris = [self.fal.encode(pack_png(image), "image/png") for image in images]
        result = self.client.subscribe(ENDPOINT, {"prompt": PROMPT, "image_urls": uris})
        return np.stack([decode_plain(self.http.get(image["url"]).content) for image in result["images"]])

    def submit(self, arguments: dict):
        # subscribe() is exactly submit() + handle.get(interval=0.1) when no callback is given;
        # splitting it lets the benchmark learn the request id before waiting.
        handle = self.client.submit(ENDPOINT, arguments)
        return handle.request_id, handle.get

    def close(self) -> None:
        self.http.close()
        self.client._client.close()


# ------------------------------------------------------------------ ComfyUI core API nodes
class ComfyPollClient:
    """ComfyUI's ``poll_op``: poll the status at once, then every 5 s; on a
    completed status, one more request for the result (fal keeps it apart)."""

    INTERVAL = 5.0

    def __init__(self, server: Server):
        self.base = server.fake.url
        self.session = requests.Session()
        self.session.verify = server.verify
        self.session.headers["Authorization"] = f"Key {KEY}"

    def submit(self, arguments: dict):
        reply = self.session.post(f"{self.base}/{ENDPOINT}", json=arguments)
        reply.raise_for_status()
        job = reply.json()

        def wait() -> dict:
            while self.session.get(job["status_url"]).json()["status"] != "COMPLETED":
                time.sleep(self.INTERVAL)
            return self.session.get(job["response_url"]).json()

        return job["request_id"], wait

    def close(self) -> None:
        self.session.close()
