"""The fake fal server's strictness and fault injection, over raw HTTP: fal's 422 for every bad
field, and each fault kind as a client would meet it."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import requests
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fakefal.edit import PRESETS

from fake_http import EP, KEY, RGB, data_uri, pixels, read_events, result, submit

BAD = {"prompt": ["", 5, None], "image_urls": ["x.png", [], [5], None],
       "negative_prompt": [5, None, ["a"]], "image_size": ["huge", {"width": 0, "height": 8}, {"width": 8}, 3],
       "num_inference_steps": [1, 101, 5.0, "5", True], "guidance_scale": [-0.1, 20.5, "4", True, float("nan")],
       "num_images": [0, 5, 1.0, None], "seed": [1.5, "7", True],
       "enable_safety_checker": ["true", 1, None], "sync_mode": ["false", 0, None],
       "output_format": ["gif", "PNG", None, "webp"], "acceleration": ["turbo", "", None, 1, "high"],
       "loras": [[{"path": "https://x/l.safetensors"}]], "unknown_field": ["fal ignores it; the fake refuses it"]}
GOOD = {"negative_prompt": ["", " "], "image_size": [None, {"width": 14142, "height": 1}, *sorted(PRESETS)],
        "num_inference_steps": [2, 100], "guidance_scale": [0, 20, 4.5], "num_images": [1, 4],
        "seed": [0, 2**40, None], "enable_safety_checker": [True, False], "sync_mode": [True, False],
        "output_format": ["png", "jpeg"], "acceleration": ["none", "regular"]}


def post_raw(http, srv, body) -> requests.Response:
    # json.dumps, not requests' json=, so NaN goes out as fal would receive it from a buggy client.
    return http.post(f"{srv.url}/{EP}", data=json.dumps(body), timeout=5,
                     headers={**KEY, "Content-Type": "application/json"})


def test_validation_422_names_each_bad_field(make, http):
    srv = make()
    base = {"prompt": "p", "image_urls": [data_uri(RGB)]}
    for name, values in BAD.items():
        for value in values:
            r = post_raw(http, srv, {**base, name: value})
            detail = r.json()["detail"] if r.status_code == 422 else r.text
            assert r.status_code == 422 and len(detail) == 1, (name, value, r.status_code, detail)
            assert detail[0]["loc"][:2] == ["body", name] and detail[0]["msg"] and detail[0]["type"], detail
    missing = post_raw(http, srv, {}).json()["detail"]
    assert [(d["loc"], d["type"]) for d in missing] == [(["body", "prompt"], "missing"),
                                                        (["body", "image_urls"], "missing")]
    assert post_raw(http, srv, [base]).json()["detail"][0]["loc"] == ["body"]
    assert http.post(f"{srv.url}/{EP}", headers=KEY, data=b"{nope").status_code == 422
    assert srv.submissions == 0 and srv.jobs == {}


def test_validation_accepts_every_good_value(make, http):
    srv = make()
    srv.fail_job = "not rendered"  # validation happens at submit; skip drawing 1024 px outputs
    base = {"prompt": "p", "image_urls": [data_uri(RGB), "https://example.com/x.png"]}
    for name, values in GOOD.items():
        for value in values:
            r = post_raw(http, srv, {**base, name: value})
            assert r.status_code == 200, (name, value, r.text)
    assert srv.submissions == sum(len(v) for v in GOOD.values())


def test_faults_on_submit(make, http):
    srv = make()
    srv.add_fault(Fault("submit", "status", code=503, headers={"Retry-After": "0"}))
    r = submit(http, srv)
    assert (r.status_code, r.json(), r.headers["Retry-After"]) == (503, {"detail": "injected 503"}, "0")
    for kind, accepted in (("reset", 0), ("reset_after", 1)):  # lost before / after the job exists
        srv.add_fault(Fault("submit", kind))
        with pytest.raises(requests.ConnectionError):
            submit(http, srv)
        assert srv.submissions == accepted and len(srv.jobs) == accepted
    assert submit(http, srv).status_code == 200 and srv.submissions == 2
    assert all(f.spent for f in srv.faults)


def test_faults_on_status_and_result(make, http):
    srv = make()
    sub = submit(http, srv).json()
    srv.add_fault(Fault("status", "stall", delay=0.2))
    t0 = time.monotonic()
    assert http.get(sub["status_url"], headers=KEY).status_code == 200
    assert time.monotonic() - t0 >= 0.2
    srv.add_fault(Fault("status", "flap", times=2))
    codes = [http.get(sub["status_url"], headers=KEY).status_code for _ in range(5)]
    assert codes == [503, 200, 503, 200, 200]
    srv.add_fault(Fault("status", "malformed"))
    r = http.get(sub["status_url"], headers=KEY)
    assert r.status_code == 200 and r.text == '{"status": '
    with pytest.raises(ValueError):
        r.json()
    srv.add_fault(Fault("result", "status", code=500, skip=1, body={"detail": "x"}))
    codes = [http.get(sub["response_url"], headers=KEY).status_code for _ in range(3)]
    assert codes == [200, 500, 200]
    srv.add_fault(Fault("cancel", "status", code=429, times=None))
    assert [http.put(sub["cancel_url"], headers=KEY).status_code for _ in range(2)] == [429, 429]
    assert len(srv.cancel_requests) == 2  # recorded even when a fault answers


def test_faults_on_stream(make, http):
    srv = make(run_time=2.0, logs=())
    sub = submit(http, srv).json()
    srv.add_fault(Fault("stream", "drop"))
    with http.get(sub["status_url"] + "/stream", headers=KEY, stream=True) as s:
        assert [e["status"] for _, e in read_events(s)] == ["IN_PROGRESS"]
    srv.add_fault(Fault("stream", "stall", delay=0.2))
    t0 = time.monotonic()
    with http.get(sub["status_url"] + "/stream", headers=KEY, stream=True) as s:
        assert [e["status"] for _, e in read_events(s)] == ["IN_PROGRESS"]
    assert 0.2 <= time.monotonic() - t0 < 1.5
    srv.add_fault(Fault("stream", "reset"))
    with pytest.raises(requests.ConnectionError):
        http.get(sub["status_url"] + "/stream", headers=KEY, stream=True)


def test_faults_on_files(make, http, monkeypatch):
    srv = make()
    url = result(http, srv)["images"][0]["url"]
    srv.add_fault(Fault("files", "drop"))
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        http.get(url)
    srv.add_fault(Fault("files", "not_image"))
    r = http.get(url)
    assert r.headers["Content-Type"] == "text/html" and r.text == "<html>not an image</html>"
    srv.add_fault(Fault("files", "status", code=410))
    assert http.get(url).status_code == 410
    srv.add_fault(Fault("files", "bomb"))
    bomb = http.get(url)
    assert bomb.headers["Content-Type"] == "image/png" and len(bomb.content) < 2000
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb.content))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert Image.open(io.BytesIO(bomb.content)).size == (40000, 40000)
    assert np.array_equal(pixels(http.get(url).content), 255 - RGB)  # faults spent
