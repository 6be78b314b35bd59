"""The fake fal server's own reading of fal's schemas for the Qwen-Image-2 family and the 2509 aliases
(nodes/fakefal/schemas.py, written apart from the pack's table), over raw HTTP: a field out of range, a
field the model does not take, an image over its per-image limits: each a 422 in fal's error shape
(``{"detail": [{"loc": ["body", field, ...], "msg", "type"}]}``), nothing queued. And its pricing API: a unit
price in fal's unit, and results billed in that unit."""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from fake_http import KEY, data_uri, submit

QWEN_2 = ("fal-ai/qwen-image-2/edit", "fal-ai/qwen-image-2/pro/edit", "fal-ai/qwen-image-max/edit")
PICTURE = np.random.default_rng(2).integers(0, 256, (400, 420, 3), dtype=np.uint8)  # 420 x 400: within 384-5000


def refusal(response) -> list[tuple[tuple, str]]:
    assert response.status_code == 422, response.text
    return [(tuple(entry["loc"]), entry["type"]) for entry in response.json()["detail"]]


@pytest.mark.parametrize("endpoint", QWEN_2)
def test_the_family_takes_its_own_fields(endpoint, make, http):
    srv = make(key="test-key")
    ok = submit(http, srv, endpoint=endpoint, image_urls=[data_uri(PICTURE)], num_images=6, seed=2147483647,
                enable_prompt_expansion=False, negative_prompt="n" * 500, prompt="p" * 800, output_format="webp",
                image_size={"width": 2048, "height": 2048})
    assert ok.status_code == 200, ok.text
    assert srv.submissions == 1


@pytest.mark.parametrize("endpoint", QWEN_2)
@pytest.mark.parametrize("change, loc, kind", [
    ({"num_inference_steps": 20}, ("body", "num_inference_steps"), "extra_forbidden"),
    ({"guidance_scale": 4}, ("body", "guidance_scale"), "extra_forbidden"),
    ({"acceleration": "regular"}, ("body", "acceleration"), "extra_forbidden"),
    ({"loras": []}, ("body", "loras"), "extra_forbidden"),
    ({"num_images": 7}, ("body", "num_images"), "less_than_equal"),
    ({"seed": 2147483648}, ("body", "seed"), "less_than_equal"),
    ({"seed": -1}, ("body", "seed"), "greater_than_equal"),
    ({"prompt": "p" * 801}, ("body", "prompt"), "string_too_long"),
    ({"negative_prompt": "n" * 501}, ("body", "negative_prompt"), "string_too_long"),
    ({"enable_prompt_expansion": "yes"}, ("body", "enable_prompt_expansion"), "bool_type"),
    ({"output_format": "gif"}, ("body", "output_format"), "enum"),
    ({"image_size": {"width": 4096, "height": 2048}}, ("body", "image_size"), "value_error"),
    ({"image_size": {"width": 500, "height": 500}}, ("body", "image_size"), "value_error"),
])
def test_the_family_refuses_what_its_schema_does_not_allow(endpoint, change, loc, kind, make, http):
    srv = make(key="test-key")
    response = submit(http, srv, endpoint=endpoint, image_urls=[data_uri(PICTURE)], **change)
    assert refusal(response) == [(loc, kind)]
    assert srv.submissions == 0


def test_the_family_takes_at_most_three_images(make, http):
    srv = make(key="test-key")
    response = submit(http, srv, endpoint=QWEN_2[0], image_urls=[data_uri(PICTURE)] * 4)
    assert refusal(response) == [(("body", "image_urls"), "too_long")]
    assert "at most 3 items" in response.json()["detail"][0]["msg"]


def png_uri(pixels: np.ndarray, **save) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", **save)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def test_the_familys_per_image_limits_are_checked_on_what_it_can_read(make, http):
    srv = make(key="test-key")
    small = PICTURE[:300]  # 420 x 300
    alpha = np.dstack([PICTURE, np.full(PICTURE.shape[:2], 128, np.uint8)])
    heavy = np.random.default_rng(3).integers(0, 256, (1900, 1900, 3), dtype=np.uint8)  # ~10.8 MB as PNG
    response = submit(http, srv, endpoint=QWEN_2[0], image_urls=[png_uri(small), png_uri(alpha), png_uri(heavy)])
    detail = response.json()["detail"]
    assert refusal(response) == [(("body", "image_urls", i), "value_error") for i in range(3)]
    assert "420x300 is out of range" in detail[0]["msg"] and "384-5000px" in detail[0]["msg"]
    assert "alpha" in detail[1]["msg"] and "10MB" in detail[2]["msg"]
    # an outside URL is not fetched at the submit: fal's own download of it decides later
    assert submit(http, srv, endpoint=QWEN_2[0], image_urls=["https://example.com/a.png"]).status_code == 200


def test_the_2509_aliases_are_the_plus_models(make, http):
    srv = make(key="test-key")
    assert submit(http, srv, endpoint="fal-ai/qwen-image-edit-2509", num_inference_steps=100,
                  acceleration="regular").status_code == 200
    assert refusal(submit(http, srv, endpoint="fal-ai/qwen-image-edit-2509", acceleration="high")) == \
        [(("body", "acceleration"), "enum")]
    assert refusal(submit(http, srv, endpoint="fal-ai/qwen-image-edit-2509", loras=[])) == \
        [(("body", "loras"), "extra_forbidden")]
    assert refusal(submit(http, srv, endpoint="fal-ai/qwen-image-edit-2509-lora", num_inference_steps=51)) == \
        [(("body", "num_inference_steps"), "less_than_equal")]
    assert refusal(submit(http, srv, endpoint="fal-ai/qwen-image-edit-2509", enable_prompt_expansion=True)) == \
        [(("body", "enable_prompt_expansion"), "extra_forbidden")]


def test_the_pricing_api_names_each_prices_unit_and_bills_in_it(make, http):
    srv = make(key="test-key")
    prices = http.get(f"{srv.url}/v1/models/pricing", params=[("endpoint_id", QWEN_2[0]),
                                                              ("endpoint_id", "fal-ai/qwen-image-edit-2509")],
                      headers=KEY).json()["prices"]
    assert {(p["endpoint_id"], p["unit"]) for p in prices} == {(QWEN_2[0], "image"),
                                                              ("fal-ai/qwen-image-edit-2509", "megapixels")}
    job = submit(http, srv, endpoint=QWEN_2[0], image_urls=[data_uri(PICTURE)], num_images=3).json()
    result = http.get(job["response_url"], headers=KEY)
    while result.status_code != 200:
        time.sleep(0.05)
        result = http.get(job["response_url"], headers=KEY)
    assert result.headers["X-Fal-Billable-Units"] == "3.0"  # three images, whatever their size
