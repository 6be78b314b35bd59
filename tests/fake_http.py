"""Helpers shared by the fake fal server's own tests: raw HTTP against a FakeFal."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import requests
from PIL import Image

EP = "fal-ai/qwen-image-edit-plus"
KEY = {"Authorization": "Key test-key"}
BEARER = {"Authorization": "Bearer test-key"}
RGB = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)


def data_uri(arr: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def submit(http, srv, headers=KEY, endpoint=EP, **body):
    body = {"prompt": "invert it", "image_urls": [data_uri(RGB)], **body}
    return http.post(f"{srv.url}/{endpoint}", json=body, headers=headers, timeout=5)


def answer(r: requests.Response) -> tuple[int, object]:
    return r.status_code, r.json()


def result(http, srv, **body):
    return http.get(submit(http, srv, **body).json()["response_url"], headers=KEY).json()


def read_events(resp, limit=None):
    """(arrival time, status dict or "ping") for each SSE event, until EOF."""
    buf, out = b"", []
    while limit is None or len(out) < limit:
        chunk = resp.raw.read1(65536)
        if not chunk:
            break
        t = time.monotonic()
        buf += chunk
        while b"\n\n" in buf and (limit is None or len(out) < limit):
            block, buf = buf.split(b"\n\n", 1)
            out.append((t, "ping" if block.startswith(b":") else json.loads(block[6:])))
    return out
