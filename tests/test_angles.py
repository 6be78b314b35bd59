"""The Multiple Angles node's model (fal-ai/qwen-image-edit-2511-multiple-angles) on the edit pipeline: its widgets
mean a request with the camera and no prompt, refused before any upload when a value is out of fal's range,
cached, cancelled and priced like any edit. Real HTTP to the fake fal server, real tensors. The node itself (a
thin V3 shell over these) runs in a real ComfyUI through its example workflow (tests/test_comfyui.py,
test_examples.py, test_frontend.py).
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import requests
import torch

from comfyui_fal_qwen_edit.nodes.fakefal.schemas import Num, schema_for
from comfyui_fal_qwen_edit.nodes.fal.base.errors import CancelledError, InputError
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import (ANGLES_NODE, angles_values, endpoint_from_widgets,
                                                             estimate_answer, price_preview, request_from_widgets)
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import ANGLES, spec_for

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = torch.from_numpy(gradient(24, 32, seed=5))[None]
# What the node hands on besides its image and the run's options (nodes/angles_node.py), as a new node has it.
WIDGETS = dict(horizontal_angle=90.0, vertical_angle=30.0, zoom=7.5, additional_prompt="", negative_prompt="",
               lora_scale=1.0, image_size="auto", width=1024, height=1024, num_inference_steps=28, guidance_scale=4.5,
               num_images=1, seed=11, fal_picks_seed=False, enable_safety_checker=True, output_format="png",
               acceleration="default", sync_mode=False)
CAMERA_BODY = {"image_urls", "horizontal_angle", "vertical_angle", "zoom", "lora_scale", "num_inference_steps",
               "guidance_scale", "num_images", "seed", "enable_safety_checker", "output_format"}


def request_of(widgets):
    values = angles_values(widgets)
    return request_from_widgets(values), endpoint_from_widgets(values)


def run(client, widgets, image=IMAGE, **options):
    """What the node's run does with these values (run_edit in nodes/qwen_edit_node.py), without ComfyUI."""
    request, spec = request_of(widgets)
    request.validate(spec, images_to_come=image.shape[0])
    return client.edit(request, [image], endpoint=spec.endpoint, timeout=20, **options)


def test_the_widgets_mean_the_angles_model_with_the_camera_and_no_prompt():
    request, spec = request_of({**WIDGETS, "additional_prompt": "  soft evening light ", "acceleration": "none"})
    assert spec is ANGLES and spec == spec_for("qwen-edit-2511-angles")
    body = request.arguments_without_images(spec)
    assert "prompt" not in body
    assert {k: body[k] for k in ("horizontal_angle", "vertical_angle", "zoom", "lora_scale", "additional_prompt",
                                 "acceleration")} == {"horizontal_angle": 90.0, "vertical_angle": 30.0, "zoom": 7.5,
                                                      "lora_scale": 1.0, "additional_prompt": "soft evening light",
                                                      "acceleration": "none"}
    # the same camera values on an edit model's widgets are never sent: that model has no such fields
    edit = request_from_widgets({**WIDGETS, "prompt": "p", "model": "qwen-edit-2511"})
    assert not {"horizontal_angle", "zoom", "lora_scale"} & set(edit.arguments_without_images(spec_for("qwen-edit-2511")))


def test_the_body_fal_gets_has_exactly_the_angles_fields(fal, tmp_path):
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        outcome = run(client, WIDGETS)
    job = fal.jobs[outcome.handle.request_id]
    assert job.endpoint == "fal-ai/qwen-image-edit-2511-multiple-angles"
    assert set(job.arguments) == CAMERA_BODY
    assert (job.arguments["horizontal_angle"], job.arguments["vertical_angle"], job.arguments["zoom"]) == (90.0, 30.0, 7.5)
    assert len(job.arguments["image_urls"]) == 1 and job.arguments["seed"] == 11
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE[0])[:, :, :3])  # the fake's "model"
    # the job history shows the camera where an edit shows its prompt
    [job_seen] = client.history.jobs()
    assert job_seen["model"] == "qwen-edit-2511-angles"
    assert job_seen["prompt"] == "camera: horizontal 90°, vertical 30°, zoom 7.5"


@pytest.mark.parametrize("name,value,words", [
    ("horizontal_angle", 400.0, "horizontal_angle: 400.0 is out of range for qwen-edit-2511-angles; use 0-360."),
    ("vertical_angle", -45.0, "vertical_angle: -45.0 is out of range for qwen-edit-2511-angles; use -30 to 90."),
    ("zoom", 10.5, "zoom: 10.5 is out of range for qwen-edit-2511-angles; use 0-10."),
    ("lora_scale", 5.0, "lora_scale: 5.0 is out of range for qwen-edit-2511-angles; use 0-4."),
    ("num_inference_steps", 60, "num_inference_steps: 60 is out of range for qwen-edit-2511-angles; use 1-50."),
    ("guidance_scale", 0.5, "guidance_scale: 0.5 is out of range for qwen-edit-2511-angles; use 1-20."),
])
def test_an_out_of_range_value_is_refused_before_any_upload(fal, tmp_path, name, value, words):
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client, \
            pytest.raises(InputError) as refused:
        run(client, {**WIDGETS, name: value})
    assert words in str(refused.value)
    assert fal.requests == [] and fal.uploads == [] and fal.submissions == 0


def test_a_batch_of_frames_is_refused_before_any_upload(fal, tmp_path):
    two = torch.from_numpy(np.stack([gradient(8, 8, seed=1), gradient(8, 8, seed=2)]))
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client, \
            pytest.raises(InputError) as refused:
        run(client, WIDGETS, two)
    assert "qwen-edit-2511-angles takes exactly one image and 2 are given" in str(refused.value)
    assert fal.requests == []


def test_unchanged_values_are_served_from_the_cache_and_a_new_angle_is_a_new_job(fal, tmp_path):
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        first = run(client, WIDGETS)
        again = run(client, dict(WIDGETS))
        assert (first.source, again.source) == ("job", "cache") and fal.submissions == 1
        assert again.handle.request_id == first.handle.request_id and np.array_equal(again.images, first.images)
        turned = run(client, {**WIDGETS, "horizontal_angle": 180.0})
    assert turned.source == "job" and fal.submissions == 2
    assert fal.jobs[turned.handle.request_id].arguments["horizontal_angle"] == 180.0


def test_cancel_reaches_fal(fal, tmp_path):
    fal.run_time = 30.0
    cancel = threading.Event()

    def press_cancel_once_submitted():
        deadline = time.monotonic() + 10
        while not fal.jobs and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.set()

    threading.Thread(target=press_cancel_once_submitted, daemon=True).start()
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client, pytest.raises(CancelledError):
        run(client, WIDGETS, should_cancel=cancel.is_set)
    [request_id] = fal.jobs
    assert [r for r, _ in fal.cancel_requests] == [request_id]


def test_the_estimate_route_prices_the_angles_nodes_widgets():
    from comfyui_fal_qwen_edit.nodes.fal.models.pricing import FROM_FAL, PER_MEGAPIXEL, UnitPrice
    fal_price = lambda spec: UnitPrice(0.03, PER_MEGAPIXEL, FROM_FAL)  # noqa: E731 - as fal's pricing API told
    question = {"node": ANGLES_NODE, "widgets": WIDGETS, "sizes": {"image": [1200, 900, 1]}, "connected": ["image"]}
    status, answer = estimate_answer(json.loads(json.dumps(question)), fal_price)
    assert status == 200, answer
    assert (answer["model"], answer["endpoint"]) == (ANGLES.name, ANGLES.endpoint)
    # the node's one input is the edit rule's image_1: the same answer as the run's own rule gives
    assert answer == price_preview(angles_values(WIDGETS), {"image_1": (1200, 900, 1)}, ["image_1"], fal_price)
    unknown = estimate_answer({**question, "sizes": {}}, fal_price)[1]
    assert unknown == price_preview(angles_values(WIDGETS), {}, ["image_1"], fal_price) and unknown != answer
    custom = {**WIDGETS, "image_size": "custom", "width": 1536, "height": 1024}
    sized = estimate_answer({**question, "widgets": custom, "sizes": {}}, fal_price)[1]
    assert sized == price_preview(angles_values(custom), {}, ["image_1"], fal_price) and sized not in (answer, unknown)
    # a model widget in the question cannot turn the node into another model
    assert estimate_answer({**question, "widgets": {**WIDGETS, "model": "qwen-edit-plus"}}, fal_price)[1] == answer
    # no price in the table and none from fal: said plainly, never a made-up figure
    unpriced = estimate_answer(question)[1]
    assert unpriced["price_known"] is False and unpriced["usd"] is None


def test_the_estimate_route_refuses_a_node_it_does_not_price():
    status, answer = estimate_answer({"node": "SaveImage", "widgets": {}})
    assert status == 400 and "FalQwenMultipleAngles" in answer["error"]
    status, answer = estimate_answer({"node": ANGLES_NODE, "widgets": WIDGETS, "sizes": [1, 2]})
    assert status == 400 and "sizes" in answer["error"]


def test_the_fake_reads_fals_schema_as_the_table_does():
    """Two independent readings of zQwenImageEdit2511MultipleAnglesInput: the fake server's and the pack's table."""
    fake = schema_for(ANGLES.endpoint)
    assert fake.known() == set(ANGLES.fields)
    numbers = fake.numbers()
    for name, (low, high) in ANGLES.ranges.items():
        assert (numbers[name].low, numbers[name].high) == (low, high), name
    assert all(isinstance(numbers[name], Num) for name in ANGLES.integers)
    assert set(fake.formats) == set(ANGLES.output_formats) and set(fake.accelerations) == set(ANGLES.accelerations)


def test_the_fake_answers_fals_422_for_a_prompt_an_out_of_range_angle_or_a_second_image(fal):
    url = f"{fal.url}/{ANGLES.endpoint}"
    image = "data:image/png;base64,iVBORw0KGgo="
    bad = {"image_urls": [image, image], "prompt": "turn it", "horizontal_angle": 361, "vertical_angle": "up",
           "zoom": -1, "additional_prompt": 5}
    answer = requests.post(url, json=bad, headers={"Authorization": f"Key {KEY}"}, timeout=5)
    assert answer.status_code == 422
    assert answer.json() == {"detail": [
        {"loc": ["body", "prompt"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"},
        {"loc": ["body", "image_urls"], "msg": "List should have at most 1 item after validation, not 2",
         "type": "too_long"},
        {"loc": ["body", "additional_prompt"], "msg": "Input should be a valid string", "type": "string_type"},
        {"loc": ["body", "horizontal_angle"], "msg": "Input should be less than or equal to 360",
         "type": "less_than_equal"},
        {"loc": ["body", "vertical_angle"], "msg": "Input should be a valid finite number", "type": "float_type"},
        {"loc": ["body", "zoom"], "msg": "Input should be greater than or equal to 0", "type": "greater_than_equal"},
    ]}
    assert fal.submissions == 0
    fal.fail_job = "not rendered"  # validation happens at submit
    good = {"image_urls": [image], "horizontal_angle": 360, "vertical_angle": -30, "zoom": 0, "lora_scale": 4,
            "additional_prompt": "", "acceleration": "none"}
    assert requests.post(url, json=good, headers={"Authorization": f"Key {KEY}"}, timeout=5).status_code == 200
