"""Every example workflow as shipped, in a real ComfyUI, against the fake fal server: through fal direct
(``FAL_KEY``) and through a gateway (``FAL_GATEWAY_URL`` + ``FAL_GATEWAY_TOKEN``, no fal key at all), the
two ways the README sets a machine up. The examples carry no connection specifics, so the machine's
settings alone decide where they go. Needs ``COMFYUI_DIR`` (README, "Tests inside a real ComfyUI").
"""

from __future__ import annotations

import json
import os

import pytest

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal

from comfyui_harness import ROOT, ComfyUI, comfyui_location, install_inputs
from conftest import KEY, client_environ
from workflow_convert import ui_to_api

LOCATION = comfyui_location()
pytestmark = pytest.mark.skipif(LOCATION is None, reason="no real ComfyUI: set COMFYUI_DIR (docs/testing.md)")
WORKFLOWS = ROOT / "example_workflows"
EXAMPLES = sorted(WORKFLOWS.glob("*.json"))
JOBS = {"qwen_edit_batch": 2}  # one edit per frame of its two-frame input; every other example: one
ENDPOINTS = {"qwen_edit_lora_chain": "fal-ai/qwen-image-edit-plus-lora", "qwen_edit_2511": "fal-ai/qwen-image-edit-2511",
             "qwen_multiple_angles": "fal-ai/qwen-image-edit-2511-multiple-angles",
             "qwen_edit_qwen_image_2": "fal-ai/qwen-image-2/edit"}
DEPRECATED_CORE = {"ImageBatch", "CheckpointLoader", "ControlNetApply"}


def test_the_examples_are_written_as_shipped():
    """What the examples may not carry: a custom model, connection specifics, a deprecated core node."""
    for path in EXAMPLES:
        workflow = json.loads(path.read_text())
        for node in workflow["nodes"]:
            assert node["type"] not in DEPRECATED_CORE, f"{path.name}: {node['type']} is deprecated in ComfyUI"
            if node["type"] == "FalQwenImageEditPlus":
                assert node["widgets_values"][22] != "custom", f"{path.name}: the edit node names no model"
            if node["type"] == "FalQwenConnection":
                mode, base_url, key_env = node["widgets_values"][:3]
                assert (mode, base_url, key_env) == ("auto", "", ""), f"{path.name}: connection specifics"


@pytest.fixture(scope="module", params=["fal", "gateway"])
def setup(request, tmp_path_factory):
    folder, python = LOCATION
    fal = FakeFal(key=KEY, mode=request.param, max_lifetime=1200).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(client_environ(fal), FAL_QWEN_EDIT_CONFIG=str(tmp_path_factory.mktemp("noconfig") / "config.ini"),
               FAL_QWEN_EDIT_STATE_DIR=str(tmp_path_factory.mktemp("state")))
    comfy = ComfyUI(folder, python, env, tmp_path_factory.mktemp(f"comfyui-{request.param}"))
    install_inputs(comfy.input_dir)
    try:
        yield request.param, comfy.start(), fal
    finally:
        comfy.stop()
        fal.stop()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_runs_as_shipped(setup, path):
    mode, comfy, fal = setup
    workflow = json.loads(path.read_text())
    jobs_before = set(fal.jobs)
    prompt_id = comfy.queue(ui_to_api(workflow, comfy.get("/object_info")), workflow)
    entry = comfy.wait(prompt_id, 180)
    errors = [e["exception_message"] for e in comfy.events("execution_error", prompt_id)]
    assert entry["status"]["status_str"] == "success", f"{path.stem} through {mode}: {errors}"
    new_jobs = [fal.jobs[r] for r in set(fal.jobs) - jobs_before]
    assert len(new_jobs) == JOBS.get(path.stem, 1)
    assert {job.endpoint for job in new_jobs} == {ENDPOINTS.get(path.stem, "fal-ai/qwen-image-edit-plus")}
    saves = [str(n["id"]) for n in workflow["nodes"] if n["type"] == "SaveImage"]
    assert saves and all(entry["outputs"].get(node, {}).get("images") for node in saves)
