"""Saved workflows are a contract: a workflow saved by an earlier release gives every saved value to the widget it
was saved for, and the widgets added since take their defaults (no ComfyUI needed).

A workflow stores the edit node's widget values by position, in the order of the schema's widget inputs (seed
followed by its control value). Each release's order is written down here, apart from the schema, and the schema
(read from nodes/qwen_edit_node.py's source) must still begin with it; then each saved file is read the way the
frontend and ComfyUI read it, and what the node would send for it is checked. tests/test_comfyui.py runs the same
files in a real ComfyUI, tests/test_frontend.py loads them in the real frontend.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import endpoint_from_widgets, request_from_widgets

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
EDIT = "FalQwenImageEditPlus"
NOT_WIDGETS = {"Image", "FalConnection", "FalLoras"}  # inputs that are sockets, not widgets

# The edit node's widgets, in the order each release saved them.
WIDGETS_0_1_0 = ["prompt", "negative_prompt", "image_size", "width", "height", "num_inference_steps",
                 "guidance_scale", "num_images", "seed", "fal_picks_seed", "enable_safety_checker", "output_format",
                 "acceleration", "sync_mode", "batch_mode", "concurrency", "size_mismatch", "timeout", "force_new_job",
                 "endpoint", "image_urls"]
WIDGETS_C0B86BF = [*WIDGETS_0_1_0, "model", "input_resize", "upload_format"]
WIDGETS_0B42CFC = [*WIDGETS_C0B86BF, "start_timeout", "priority"]
RELEASES = {"workflows_0_1_0": WIDGETS_0_1_0, "workflows_c0b86bf": WIDGETS_C0B86BF,
            "workflows_0b42cfc": WIDGETS_0B42CFC}
# What the saved examples hold (the same edits in every release; the model named from c0b86bf's 2511 on).
PROMPT_START = {"qwen_edit_single": "Change the jacket", "qwen_edit_three_images": "The woman from image 1",
                "qwen_edit_batch": "Turn this photo", "qwen_edit_mixed_core": "Add light rain",
                "qwen_edit_lora_chain": "Next Scene", "qwen_edit_2511": "The woman from image 1 leans"}


def schema_widgets() -> list[str]:
    """The edit node's widget inputs in schema order, from the source (no ComfyUI needed)."""
    tree = ast.parse((ROOT / "nodes" / "qwen_edit_node.py").read_text())
    schema = next(call for call in ast.walk(tree) if isinstance(call, ast.Call)
                  and getattr(call.func, "attr", None) == "Schema"
                  and any(k.arg == "node_id" and getattr(k.value, "value", None) == EDIT for k in call.keywords))
    inputs = next(k.value for k in schema.keywords if k.arg == "inputs")
    names = []
    for item in inputs.elts:
        kind = item.func.value.attr if isinstance(item.func.value, ast.Attribute) else item.func.value.id
        if kind not in NOT_WIDGETS:
            names.append(item.args[0].value)
    return names


def by_position(values: list, names: list[str]) -> dict:
    """Widget values as the frontend assigns them: one per widget, seed followed by its control value."""
    out, values = {}, list(values)
    for name in names:
        if not values:
            break
        out[name] = values.pop(0)
        if name == "seed":
            out["control_after_generate"] = values.pop(0)
    assert not values, f"values left over: {values}"
    return out


def saved_files():
    return [(release, path) for release in RELEASES for path in sorted((FIXTURES / release).glob("*.json"))]


def edit_values(path: Path) -> list[list]:
    return [node["widgets_values"] for node in json.loads(path.read_text())["nodes"] if node["type"] == EDIT]


def test_the_schema_keeps_every_releases_widgets_in_their_places_and_adds_new_ones_last():
    names = schema_widgets()
    for release, saved in RELEASES.items():
        assert names[:len(saved)] == saved, release
    assert names[len(WIDGETS_0B42CFC):] == ["enable_prompt_expansion"]


@pytest.mark.parametrize("release, path", saved_files(), ids=lambda v: getattr(v, "stem", v))
def test_a_saved_workflow_gives_each_value_to_its_widget_and_sends_the_same_edit(release, path):
    saved_names, now = RELEASES[release], schema_widgets()
    for values in edit_values(path):
        assert len(values) == len(saved_names) + 1  # + seed's control value
        old = by_position(values, saved_names)
        new = by_position(values, now)  # read with today's schema: the same value for every saved widget
        assert new == old
        assert "enable_prompt_expansion" not in new  # saved before it: the node gets its default
        assert new["prompt"].startswith(PROMPT_START[path.stem]) and new["seed"] == 42
        assert new["control_after_generate"] == "fixed" and new["endpoint"] == "fal-ai/qwen-image-edit-plus"
        assert isinstance(new["num_inference_steps"], int) and new["image_urls"] == ""
        spec = endpoint_from_widgets(new)  # no model (0.1.0) or custom: the saved endpoint id decides
        named = new.get("model") not in (None, "custom")
        assert spec.name == (new["model"] if named else "qwen-edit-plus")
        body = request_from_widgets(new).arguments_without_images(spec)
        assert body["prompt"] == new["prompt"] and body["seed"] == 42
        assert body["num_inference_steps"] == new["num_inference_steps"]
        assert body["guidance_scale"] == new["guidance_scale"] and body["num_images"] == new["num_images"]
        assert "enable_prompt_expansion" not in body  # none of these models takes it


@pytest.mark.parametrize("model", ["qwen-image-2-edit", "qwen-image-2-pro-edit", "qwen-image-max-edit"])
def test_a_workflow_without_the_new_widget_leaves_prompt_expansion_to_fal_and_sends_no_steps(model):
    [values] = edit_values(FIXTURES / "workflows_0b42cfc" / "qwen_edit_single.json")
    widgets = {**by_position(values, WIDGETS_0B42CFC), "model": model}
    body = request_from_widgets(widgets).arguments_without_images(endpoint_from_widgets(widgets))
    assert "enable_prompt_expansion" not in body  # fal's own default (on), as the node's execute sends True
    assert not {"num_inference_steps", "guidance_scale", "acceleration"} & set(body)
    off = request_from_widgets({**widgets, "enable_prompt_expansion": False})
    assert off.arguments_without_images(endpoint_from_widgets(widgets))["enable_prompt_expansion"] is False


def test_the_examples_save_every_widget_today():
    for path in sorted((ROOT / "example_workflows").glob("*.json")):
        for values in edit_values(path):
            widgets = by_position(values, schema_widgets())
            assert isinstance(widgets["enable_prompt_expansion"], bool), path.name
