"""Shared fixtures: a fake fal server on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.config import load_config
from comfyui_fal_qwen_edit.nodes.fal.pipeline import FalEditClient
from comfyui_fal_qwen_edit.nodes.fal.queue import WaitSettings
from comfyui_fal_qwen_edit.nodes.fal.transport import RetryPolicy

# Looks like a real fal key (id:secret) so a leak of it would be unmistakable in any scan.
KEY = "4f1c2d3e-5a6b-7c8d-9e0f-a1b2c3d4e5f6:0123456789abcdef0123456789abcdef"
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def fake_fal():
    server = FakeFal(key=KEY, max_lifetime=120.0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gateway_fal():
    server = FakeFal(key=KEY, mode="gateway", max_lifetime=120.0).start()
    try:
        yield server
    finally:
        server.stop()


def config_for(server: FakeFal, mode: str = "fal", **overrides):
    environ = {"HOME": "/nonexistent", "FAL_QWEN_EDIT_CONFIG": "/nonexistent/config.ini"}
    if mode == "gateway":
        environ.update(FAL_GATEWAY_URL=server.url, FAL_GATEWAY_TOKEN=KEY)
    else:
        environ.update(FAL_KEY=KEY, FAL_QUEUE_BASE=server.url, FAL_REST_BASE=server.url)
    environ.update(overrides)
    return load_config(environ=environ)


@pytest.fixture
def make_client():
    clients = []

    def make(server: FakeFal, mode: str = "fal", retry: RetryPolicy = FAST_RETRY, **wait) -> FalEditClient:
        client = FalEditClient(config_for(server, mode), retry=retry, wait_settings=WaitSettings(**wait))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def key_scan(caplog):
    """Capture every log record at DEBUG; call the fixture with extra texts to scan for the key."""
    caplog.set_level(logging.DEBUG)

    def scan(*texts: str) -> None:
        everything = [record.getMessage() for record in caplog.records] + [str(t) for t in texts]
        leaked = [text for text in everything if KEY in text or KEY.split(":")[1] in text]
        assert not leaked, f"the key leaked into: {leaked[:3]}"

    return scan


def gradient(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic test picture, float32 0..1, [H, W, C]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1), np.ones_like(x)], -1)
    noise = rng.random((h, w, 4), dtype=np.float32) * 0.1
    return np.clip(base + noise, 0, 1)[:, :, :channels].astype(np.float32)


def to_u8(array) -> np.ndarray:
    return (np.clip(np.asarray(array), 0, 1) * 255 + 0.5).astype(np.uint8)
