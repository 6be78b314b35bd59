"""GET /fal_qwen_edit/models: what the edit node's frontend shows each model by is the endpoint table the run
checks against (``node_values.models_answer``); the route itself is read in a real ComfyUI by
tests/test_comfyui.py and used by the frontend in tests/test_node_ui.py."""

from __future__ import annotations

import json

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import models_answer, request_from_widgets
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import ALL_ENDPOINTS, CUSTOM, GENERIC, MODEL_NAMES, spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import OPTIONAL_FIELDS

# Every widget of the edit node that is one of fal's fields, set to a value the widget can hold.
WIDGETS = {"prompt": "p", "negative_prompt": "n", "image_size": "square_hd", "num_inference_steps": 20,
           "guidance_scale": 4.0, "num_images": 1, "seed": 5, "enable_safety_checker": True, "output_format": "png",
           "sync_mode": True, "acceleration": "regular", "enable_prompt_expansion": False,
           "endpoint": "fal-ai/qwen-image-edit-plus"}


def test_the_answer_is_plain_json_with_every_model_and_the_generic_rules():
    answer = models_answer()
    assert json.loads(json.dumps(answer)) == answer
    assert answer["listed"] == [CUSTOM, *MODEL_NAMES]
    assert set(answer["models"]) == {spec.name for spec in ALL_ENDPOINTS} | {CUSTOM}
    assert answer["endpoints"] == {spec.endpoint: spec.name for spec in ALL_ENDPOINTS}
    assert answer["models"][CUSTOM]["fields"] == sorted(GENERIC.fields)
    text = json.dumps(answer).lower()
    assert "fal_key" not in text and "authorization" not in text


@pytest.mark.parametrize("name", [*MODEL_NAMES, CUSTOM])
def test_each_models_facts_are_the_tables_and_its_hidden_widgets_are_what_the_run_drops(name):
    facts, spec = models_answer()["models"][name], spec_for(name, "someone/else-edit")
    assert facts["ranges"] == {k: list(v) for k, v in spec.ranges.items()}
    assert facts["defaults"] == dict(spec.defaults) and facts["seed_range"] == list(spec.seed_range)
    assert facts["size_when_omitted"] == spec.size_when_omitted
    assert facts["image_count"] == [spec.min_images, spec.max_images]
    request = request_from_widgets({**WIDGETS, "model": name, "endpoint": "someone/else-edit"})
    dropped = [field for field in OPTIONAL_FIELDS if field != "loras" and getattr(request, field) is None]
    assert facts["not_sent"] == dropped
    widgets_hidden = [field for field in facts["not_sent"] if field in WIDGETS]
    if name.startswith("qwen-image-"):
        assert widgets_hidden == ["num_inference_steps", "guidance_scale", "acceleration"]
    elif name == CUSTOM:
        assert widgets_hidden == []
    else:
        assert widgets_hidden == ["enable_prompt_expansion"]
