"""Proxy mode against a stand-in for fal's server proxy (@fal-ai/server-proxy 1.2.1): every fal call
goes to the proxy URL with the real fal URL in x-fal-target-url; no key leaves this machine."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config
from comfyui_fal_qwen_edit.nodes.fal.base.errors import AuthError, CancelledError
from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import FalEditClient
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest

from conftest import FAST_RETRY, KEY, gradient, to_u8

IMAGE = gradient(16, 20, seed=9)
APP = "https://queue.fal.run/fal-ai/qwen-image-edit-plus"
TOKEN = "proxy-session-token-1234567890"


@pytest.fixture
def proxy():
    server = FakeFal(key=KEY, mode="proxy", run_time=0.3, max_lifetime=120).start()
    yield server
    server.stop()
    assert server.errors == []


def client(server: FakeFal, **env) -> FalEditClient:
    environ = {"HOME": "/nonexistent", "FAL_QWEN_EDIT_CONFIG": "/nonexistent.ini", "FAL_PROXY_URL": server.proxy_url,
               **env}
    return FalEditClient(load_config(environ=environ), retry=FAST_RETRY)


def edit(c: FalEditClient, **options):
    return c.edit(QwenEditRequest(prompt="p", seed=2), [torch.from_numpy(IMAGE)[None]], timeout=20, **options)


def test_the_whole_edit_goes_through_the_proxy_with_the_right_target(proxy, key_scan):
    with client(proxy) as c:
        outcome = edit(c)
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE)) and proxy.submissions == 1
    rid = outcome.handle.request_id
    through = [r for r in proxy.requests if r.origin == proxy.url and r.path == proxy.proxy_path]
    direct = [r for r in proxy.requests if r not in through]
    targets = [(r.method, r.header("x-fal-target-url")) for r in through]
    assert targets[0] == ("POST", "https://rest.fal.ai/storage/upload/initiate?storage_type=fal-cdn-v3")
    assert targets[1] == ("POST", APP)
    assert ("GET", f"{APP}/requests/{rid}/status/stream?logs=1") in targets
    assert targets[-1] == ("GET", f"{APP}/requests/{rid}")
    # Only the presigned upload and the output download go elsewhere, as fal-js does it.
    assert sorted((r.method, r.path.split("/")[1]) for r in direct) == [("GET", "files"), ("PUT", "upload")]
    assert all(r.header("Authorization") is None for r in proxy.requests)  # the proxy adds the key


def test_cancel_goes_through_the_proxy(proxy):
    proxy.run_time = 30.0
    cancel = threading.Event()
    threading.Timer(0.4, cancel.set).start()
    with client(proxy) as c, pytest.raises(CancelledError, match="CANCELLATION_REQUESTED"):
        edit(c, should_cancel=cancel.is_set)
    [rid] = list(proxy.jobs)
    [put] = [r for r in proxy.requests if r.method == "PUT" and r.path == proxy.proxy_path]
    assert put.header("x-fal-target-url") == f"{APP}/requests/{rid}/cancel"
    assert [r for r, _ in proxy.cancel_requests] == [rid]


def test_result_by_id_through_the_proxy(proxy):
    with client(proxy) as c:
        first = edit(c)
        again = c.result_by_id(first.handle.request_id)
    assert again.source == "fetched" and np.array_equal(again.images, first.images) and proxy.submissions == 1


def test_a_proxy_token_goes_to_the_proxy_only(proxy, key_scan):
    proxy.proxy_token = TOKEN
    with client(proxy) as c, pytest.raises(AuthError, match="401"):
        edit(c)  # this proxy checks a token of its own, and none was set
    assert proxy.submissions == 0
    proxy.forget()
    with client(proxy, FAL_PROXY_TOKEN=TOKEN) as c:
        assert edit(c).images.shape[0] == 1
    through = [r for r in proxy.requests if r.path == proxy.proxy_path]
    assert through and all(r.header("Authorization") == f"Bearer {TOKEN}" for r in through)
    assert not any(r.header("Authorization") for r in proxy.requests if r.path != proxy.proxy_path)


def test_the_stand_in_proxy_refuses_what_falls_proxy_refuses(proxy, http):
    post = lambda target=None: http.post(proxy.proxy_url, json={"prompt": "p"},  # noqa: E731
                                         headers={"x-fal-target-url": target} if target else {})
    assert post().status_code == 400  # no target
    assert post("https://evil.example.com/fal-ai/x").status_code == 400
    assert post("https://rest.fal.ai/storage/auth/token?storage_type=fal-cdn-v3").status_code == 400
    assert http.post(proxy.url + "/fal-ai/qwen-image-edit-plus", json={}).status_code == 404  # fal is not reachable
    assert proxy.submissions == 0
