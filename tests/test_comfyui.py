"""The pack inside a real ComfyUI: example workflows, progress, cache, Cancel, errors, no key leaks.
Shared workflows that name hosts, gateways and proxies: tests/test_comfyui_trust.py.

Needs ``COMFYUI_DIR`` (see README, "Tests inside a real ComfyUI"); skipped without it.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal

from comfyui_harness import ROOT
from comfyui_session import (NEEDS_COMFYUI, WORKFLOWS, comfy, fal, info_request_id, load, node_id_of,  # noqa: F401
                             places_with_a_key, run, saved_images)
from workflow_convert import ui_to_api

pytestmark = NEEDS_COMFYUI

# Paid jobs each example should cause: the batch one edits its two frames separately.
EXPECTED_SUBMISSIONS = {"qwen_edit_single": 1, "qwen_edit_three_images": 1, "qwen_edit_batch": 2,
                        "qwen_edit_mixed_core": 1, "qwen_edit_lora_chain": 1, "qwen_edit_2511": 1,
                        "qwen_multiple_angles": 1}
EXPECTED_ENDPOINTS = {"qwen_edit_lora_chain": "fal-ai/qwen-image-edit-plus-lora",
                      "qwen_edit_2511": "fal-ai/qwen-image-edit-2511",
                      "qwen_edit_qwen_image_2": "fal-ai/qwen-image-2/edit",
                      "qwen_multiple_angles": "fal-ai/qwen-image-edit-2511-multiple-angles"}
OUR_NODES = ("FalQwenImageEditPlus", "FalQwenMultipleAngles", "FalQwenUploadImage", "FalQwenLoadImageFromUrl",
             "FalQwenResultByRequestId", "FalQwenConnection", "FalQwenLora")
# The examples as earlier releases saved them: 0.1.0, c0b86bf, and 0b42cfc (before enable_prompt_expansion).
SAVED_FILES = sorted((ROOT / "tests" / "fixtures").glob("workflows_*/*.json"))


def test_nodes_are_registered_with_tooltips(comfy):
    info = comfy.get("/object_info")
    for node in OUR_NODES:
        assert node in info, f"{node} missing; see {comfy.log_path}"
        assert info[node]["category"] == "fal/Qwen Edit"
        for section in ("required", "optional"):
            for name, spec in info[node]["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    seed = info["FalQwenImageEditPlus"]["input"]["required"]["seed"]
    assert seed[1]["control_after_generate"] is True


def test_the_model_table_route_answers_the_backends_table_and_sends_nothing(comfy, fal):
    from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import models_answer
    requests_before = len(fal.requests)
    assert comfy.get("/fal_qwen_edit/models") == json.loads(json.dumps(models_answer()))
    assert len(fal.requests) == requests_before


@pytest.mark.parametrize("name", sorted(EXPECTED_SUBMISSIONS))
def test_example_workflow_runs(name, comfy, fal):
    workflow = load(name)
    before, jobs_before = fal.submissions, set(fal.jobs)
    prompt_id, entry = run(comfy, workflow)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert fal.submissions - before == EXPECTED_SUBMISSIONS[name]
    new_jobs = [fal.jobs[r] for r in set(fal.jobs) - jobs_before]
    assert {job.endpoint for job in new_jobs} == {EXPECTED_ENDPOINTS.get(name, "fal-ai/qwen-image-edit-plus")}
    if name == "qwen_edit_lora_chain":  # the chain's order and weights reach the LoRA endpoint
        [job] = new_jobs
        assert [(lora["path"].rsplit("/", 1)[1], lora["scale"]) for lora in job.arguments["loras"]] == [
            ("Qwen-Edit-Relight.safetensors", 0.8), ("next-scene_lora_v1-3000.safetensors", 1.0)]
    if name in EXPECTED_ENDPOINTS:
        info = json.loads(entry["outputs"][node_id_of(workflow, "PreviewAny")]["text"][0])
        assert info["endpoint"] == EXPECTED_ENDPOINTS[name]
        # a model the table prices has a figure; one it does not has fal's price once this machine was told
        # it, else none (never a made-up figure)
        cost, priced = info["cost_usd_estimate"], spec_for(None, info["endpoint"]).price_per_mp is not None
        assert cost > 0 if priced else (cost is None or cost > 0)
    save_ids = [str(n["id"]) for n in workflow["nodes"] if n["type"] == "SaveImage"]
    for save_id in save_ids:
        files = saved_images(entry, comfy, save_id)
        assert files and all(f.is_file() for f in files), f"{name}: SaveImage {save_id} wrote nothing"
    if name == "qwen_edit_single":
        [output] = saved_images(entry, comfy, save_ids[0])
        source = np.asarray(Image.open(WORKFLOWS / "inputs" / "qwen_example_person.png").convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(output).convert("RGB")), 255 - source)
    if name == "qwen_edit_mixed_core":  # the upload → URL → IMAGE round trip is lossless
        check_id = next(str(n["id"]) for n in workflow["nodes"]
                        if n["type"] == "SaveImage" and n["widgets_values"] == ["qwen_edit/uploaded_input"])
        [check] = saved_images(entry, comfy, check_id)
        source = np.asarray(Image.open(WORKFLOWS / "inputs" / "qwen_example_highway.png").convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(check).convert("RGB")), source)
    if name == "qwen_edit_batch":
        [save_id] = save_ids
        assert len(saved_images(entry, comfy, save_id)) == 2
    if name == "qwen_multiple_angles":  # the camera and no prompt, exactly the fields its widgets set
        [job] = new_jobs
        assert set(job.arguments) == {"image_urls", "horizontal_angle", "vertical_angle", "zoom", "lora_scale",
                                      "num_inference_steps", "guidance_scale", "num_images", "seed",
                                      "enable_safety_checker", "output_format"}
        assert (job.arguments["horizontal_angle"], job.arguments["vertical_angle"]) == (45.0, 30.0)
        [output] = saved_images(entry, comfy, save_ids[0])
        car = Image.open(WORKFLOWS / "inputs" / "qwen_example_car.png").convert("RGB")
        expected = Image.fromarray(255 - np.asarray(car)).resize(Image.open(output).size, Image.Resampling.NEAREST)
        assert np.array_equal(np.asarray(Image.open(output).convert("RGB")), np.asarray(expected))
        before = fal.submissions  # the same graph again is not paid again
        _, again = run(comfy, workflow)
        assert again["status"]["status_str"] == "success" and fal.submissions == before


@pytest.mark.parametrize("path", SAVED_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_workflow_saved_by_an_earlier_release_runs_with_the_same_values(path, comfy, fal):
    """As an API prompt saved back then (without the inputs added since: model and loras for 0.1.0,
    enable_prompt_expansion for all of them): same endpoint, same fields, none the model does not take."""
    from test_saved_workflows import RELEASES, by_position
    workflow = json.loads(path.read_text())
    prompt = ui_to_api(workflow, comfy.get("/object_info"), saved_before_optional=True)
    edits = [node for node in prompt.values() if node["class_type"] == "FalQwenImageEditPlus"]
    saved = [by_position(n["widgets_values"], RELEASES[path.parent.name]) for n in workflow["nodes"]
             if n["type"] == "FalQwenImageEditPlus"]
    assert edits and all("enable_prompt_expansion" not in node["inputs"] for node in edits)
    for node, values in zip(edits, saved):  # ComfyUI read every saved value into the input it was saved for
        assert {name: node["inputs"][name] for name in values if name != "control_after_generate"} == \
            {name: value for name, value in values.items() if name != "control_after_generate"}
    shutil.rmtree(Path(comfy.env["FAL_QWEN_EDIT_STATE_DIR"]) / "results", ignore_errors=True)  # a real run
    jobs_before = set(fal.jobs)
    entry = comfy.wait(comfy.queue(prompt, workflow))
    assert entry["status"]["status_str"] == "success", entry["status"]
    new_jobs = [fal.jobs[r] for r in set(fal.jobs) - jobs_before]
    assert len(new_jobs) == EXPECTED_SUBMISSIONS[path.stem]
    widgets = edits[0]["inputs"]
    spec = spec_for(widgets.get("model"), widgets["endpoint"])
    for job in new_jobs:
        assert job.endpoint == spec.endpoint and "enable_prompt_expansion" not in job.arguments
        assert ("loras" in job.arguments) == spec.takes_loras
        assert (job.arguments["prompt"], job.arguments["seed"], job.arguments["num_inference_steps"]) == (
            widgets["prompt"], widgets["seed"], widgets["num_inference_steps"])


@pytest.mark.parametrize("model", ["qwen-edit-plus", "qwen-edit-plus-lora", "qwen-edit-2511", "qwen-edit-2511-lora",
                                   "qwen-image-2-edit", "qwen-image-2-pro-edit", "qwen-image-max-edit",
                                   "qwen-edit", "qwen-edit-lora"])
def test_every_model_of_the_table_from_the_node(model, comfy, fal):
    spec = spec_for(model)
    workflow = load("qwen_edit_single")
    edit = next(n for n in workflow["nodes"] if n["type"] == "FalQwenImageEditPlus")
    edit["widgets_values"][22] = model  # by position, as a saved workflow holds it
    edit["widgets_values"][8] = 7000 + len(model)  # a seed of its own: a real job, not a cache hit
    jobs_before = set(fal.jobs)
    _, entry = run(comfy, workflow)
    assert entry["status"]["status_str"] == "success", entry["status"]
    [request_id] = set(fal.jobs) - jobs_before
    job = fal.jobs[request_id]
    assert job.endpoint == spec.endpoint
    widgets = {"prompt", "num_inference_steps", "guidance_scale", "num_images", "seed", "enable_safety_checker",
               "output_format", "enable_prompt_expansion"}  # what the example's widgets set
    assert set(job.arguments) == {spec.image_field} | (widgets & spec.fields)  # and only what the model takes
    [output] = saved_images(entry, comfy, node_id_of(workflow, "SaveImage"))
    source = np.asarray(Image.open(WORKFLOWS / "inputs" / "qwen_example_person.png").convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(output).convert("RGB")), 255 - source)
    info = json.loads(entry["outputs"][node_id_of(workflow, "PreviewAny")]["text"][0])
    assert info["endpoint"] == spec.endpoint
    if spec.price_per_mp is not None:
        assert info["cost_usd_estimate"] > 0
    else:  # no table price: unknown (said, not made up) until fal's pricing API, asked at a submit, told one
        told = fal.unit_prices.get(spec.endpoint)
        assert info["cost_usd_estimate"] in (None, told) and info.get("cost_usd_billed") == told


def test_a_model_without_a_price_says_so_on_the_node_then_runs_at_fals_price(comfy, fal):
    """The node's text and badge for an endpoint the table has no price for (a custom id no other test
    uses, so this ComfyUI has never asked fal about it): "price unknown"; fal's pricing API, asked while the
    first job ran, bills that job and prices the next run and the badge (here per image)."""
    endpoint = "someone/qwen-edit-next"
    fal.unit_prices[endpoint], fal.price_units[endpoint] = 0.05, "image"
    workflow = load("qwen_edit_single")
    edit = next(n for n in workflow["nodes"] if n["type"] == "FalQwenImageEditPlus")
    values = edit["widgets_values"]
    values[22], values[20] = "custom", endpoint  # model, endpoint: by position, as a saved workflow holds them
    edit_id = node_id_of(workflow, "FalQwenImageEditPlus")
    widgets = {"model": "custom", "endpoint": endpoint, "image_size": "auto", "num_images": 2, "seed": 1}
    question = {"widgets": widgets, "sizes": {"image_1": [384, 512, 1]}, "connected": ["image_1"]}
    answer = comfy.post("/fal_qwen_edit/estimate", question)
    assert (answer["price_known"], answer["usd"], answer["badge"]) == (False, None, "price unknown")
    for seed, shown, final in (
            (9101, "estimate: price unknown: the pack's table has no price for custom",
             "cost: price unknown (no table price and none from fal's pricing API yet)"),
            (9102, "estimate: about $0.050 (1 image x $0.05/image, fal pricing API) on custom",
             "cost: about $0.050 (an estimate)")):
        values[8] = seed
        comfy.progress_texts.clear()
        _, entry = run(comfy, workflow)
        assert entry["status"]["status_str"] == "success", entry["status"]
        texts = [text for node, text in comfy.progress_texts if node == edit_id]
        assert any(shown in text for text in texts) and final in texts[-1], texts
        info = json.loads(entry["outputs"][node_id_of(workflow, "PreviewAny")]["text"][0])
        assert info["endpoint"] == endpoint and info["cost_usd_billed"] == 0.05
    answer = comfy.post("/fal_qwen_edit/estimate", question)
    assert (answer["price_known"], answer["usd"], answer["badge"]) == (True, 0.1, "≈$0.100")


def test_progress_text_and_bar_reach_the_node(comfy, fal):
    workflow = load("qwen_edit_single")
    workflow["nodes"][1]["widgets_values"][8] = 4242  # a new seed: a new edit
    prompt_id, entry = run(comfy, workflow)
    assert entry["status"]["status_str"] == "success"
    edit_id = node_id_of(workflow, "FalQwenImageEditPlus")
    texts = [text for node, text in comfy.progress_texts if node == edit_id]
    assert any("in queue (position" in t for t in texts), texts
    assert any("step 30/30" in t for t in texts)
    assert any("estimate: about $0.030 (1 MP x $0.03/MP) on qwen-edit-plus" in t for t in texts), texts
    assert any(t.startswith("fal: done in") and info_request_id(entry, workflow) in t for t in texts)
    bars = [e for e in comfy.events("progress", prompt_id) if e["node"] == edit_id]
    assert bars and bars[-1]["value"] == bars[-1]["max"]


def test_unchanged_graph_is_not_paid_twice(comfy, fal):
    workflow = load("qwen_edit_single")
    workflow["nodes"][1]["widgets_values"][8] = 777
    run(comfy, workflow)
    before = fal.submissions
    _, entry = run(comfy, copy.deepcopy(workflow))
    assert entry["status"]["status_str"] == "success" and fal.submissions == before
    workflow["nodes"][1]["widgets_values"][8] = 778  # what "randomize" does between runs
    run(comfy, workflow)
    assert fal.submissions == before + 1


def test_cancel_reaches_fal_within_a_second(comfy, fal):
    fal.run_time = 60.0
    try:
        workflow = load("qwen_edit_single")
        workflow["nodes"][1]["widgets_values"][8] = 9001
        jobs_before = set(fal.jobs)
        prompt_id = comfy.queue(ui_to_api(workflow, comfy.get("/object_info")), workflow)
        deadline = time.monotonic() + 30
        while set(fal.jobs) == jobs_before and time.monotonic() < deadline:
            time.sleep(0.05)
        [request_id] = set(fal.jobs) - jobs_before
        pressed = time.monotonic()
        comfy.post("/interrupt")
        while not any(r == request_id for r, _ in fal.cancel_requests) and time.monotonic() < pressed + 5:
            time.sleep(0.01)
        seen = next(t for r, t in fal.cancel_requests if r == request_id)
        print(f"\nCancel → fal cancel request: {(seen - pressed) * 1000:.0f} ms")
        assert seen - pressed < 1.0
        entry = comfy.wait(prompt_id)
        assert entry["status"]["status_str"] == "error"
        assert comfy.events("execution_interrupted", prompt_id)
    finally:
        fal.run_time = 0.6


def test_fals_guards_from_the_widgets_reach_the_submit(comfy, fal):
    """start_timeout and priority on the edit node, keep_on_fal on the Connection node: sent as fal's
    headers; with keep_on_fal off the outputs are kept by request id, where Result by Request ID finds them."""
    workflow = load("qwen_edit_three_images")
    edit = next(n for n in workflow["nodes"] if n["type"] == "FalQwenImageEditPlus")
    connection = next(n for n in workflow["nodes"] if n["type"] == "FalQwenConnection")
    edit["widgets_values"][25:27] = [30, "low"]  # start_timeout, priority
    connection["widgets_values"][-1] = "off"
    edit["widgets_values"][8] = 16016
    jobs_before = set(fal.jobs)
    _, entry = run(comfy, workflow)
    assert entry["status"]["status_str"] == "success", entry["status"]
    [request_id] = set(fal.jobs) - jobs_before
    submit = [r for r in fal.requests if r.method == "POST" and r.path.endswith("/qwen-image-edit-plus")][-1]
    assert (submit.header("X-Fal-Request-Timeout"), submit.header("X-Fal-Queue-Priority"),
            submit.header("X-Fal-Store-IO")) == ("30.0", "low", "0")
    job = fal.jobs[request_id]
    assert (job.start_deadline, job.priority, job.store_io) == (30.0, "low", False)
    asked_before = len(fal.requests)  # this machine's copy answers: fal is not asked at all
    prompt = {"1": {"class_type": "FalQwenResultByRequestId",
                    "inputs": {"request_id": request_id, "endpoint": "fal-ai/qwen-image-edit-plus",
                               "size_mismatch": "pad"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "kept"}}}
    entry = comfy.wait(comfy.queue(prompt))
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert len(fal.requests) == asked_before and len(saved_images(entry, comfy, "2")) == 1


def test_errors_show_on_the_node(comfy, fal):
    workflow = load("qwen_edit_three_images")
    connection = next(n for n in workflow["nodes"] if n["type"] == "FalQwenConnection")
    connection["widgets_values"][2] = "FAL_QWEN_TEST_UNSET_VARIABLE"
    prompt_id, entry = run(comfy, workflow)
    errors = comfy.events("execution_error", prompt_id)
    assert len(errors) == 1, entry["status"]
    [error] = errors
    assert "No fal key found" in error["exception_message"]
    assert "FAL_QWEN_TEST_UNSET_VARIABLE" in error["exception_message"]
    # ComfyUI names the error by module and class: short, not the pack's whole import path
    assert error["exception_type"] == "fal.MissingKeyError", error["exception_type"]
    fal.fail_job = "CUDA out of memory"
    try:
        workflow = load("qwen_edit_single")
        workflow["nodes"][1]["widgets_values"][8] = 31337
        jobs_before = set(fal.jobs)
        prompt_id, entry = run(comfy, workflow)
        [error] = comfy.events("execution_error", prompt_id)
        [request_id] = set(fal.jobs) - jobs_before or [error["exception_message"]]
        assert "CUDA out of memory" in error["exception_message"]
        assert request_id in error["exception_message"]
        assert error["node_type"] == "FalQwenImageEditPlus" and error["exception_type"] == "fal.JobFailedError"
        # the node's own last text says why (the frontend keeps it on the node after the run)
        texts = [text for node, text in comfy.progress_texts if node == error["node_id"]]
        assert texts[-1].startswith("✖ fal: JobFailedError") and "CUDA out of memory" in texts[-1]
    finally:
        fal.fail_job = None


def test_nsfw_flags_are_said_on_the_node(comfy, fal):
    fal.nsfw = True
    try:
        workflow = load("qwen_edit_single")
        workflow["nodes"][1]["widgets_values"][8] = 60606
        _, entry = run(comfy, workflow)
    finally:
        fal.nsfw = False
    assert entry["status"]["status_str"] == "success"
    info = json.loads(entry["outputs"][node_id_of(workflow, "PreviewAny")]["text"][0])
    assert info["has_nsfw_concepts"] == [True] and "safety checker flagged" in info["warning"]
    edit_id = node_id_of(workflow, "FalQwenImageEditPlus")
    assert any(node == edit_id and "safety checker flagged 1 output" in text for node, text in comfy.progress_texts)


def test_result_by_request_id_node_fetches_for_free(comfy, fal):
    workflow = load("qwen_edit_single")
    workflow["nodes"][1]["widgets_values"][8] = 555
    _, entry = run(comfy, workflow)
    [original] = saved_images(entry, comfy, node_id_of(workflow, "SaveImage"))
    request_id = info_request_id(entry, workflow)
    before = fal.submissions
    prompt = {"1": {"class_type": "FalQwenResultByRequestId",
                    "inputs": {"request_id": request_id, "endpoint": "fal-ai/qwen-image-edit-plus",
                               "size_mismatch": "pad"}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "by_id"}}}
    entry = comfy.wait(comfy.queue(prompt))
    assert entry["status"]["status_str"] == "success" and fal.submissions == before
    [fetched] = saved_images(entry, comfy, "2")
    assert np.array_equal(np.asarray(Image.open(fetched)), np.asarray(Image.open(original)))


def test_restart_mid_job_resumes_instead_of_paying_again(comfy, fal):
    fal.run_time = 4.0
    try:
        workflow = load("qwen_edit_single")
        workflow["nodes"][1]["widgets_values"][8] = 2024
        prompt = ui_to_api(workflow, comfy.get("/object_info"))
        jobs_before = set(fal.jobs)
        comfy.queue(prompt, workflow)
        journal = Journal(Path(comfy.env["FAL_QWEN_EDIT_STATE_DIR"]) / "journal")
        deadline = time.monotonic() + 30
        while not any(e.get("request_id") in set(fal.jobs) - jobs_before for e in journal.entries()) \
                and time.monotonic() < deadline:
            time.sleep(0.05)  # killed once the request id is on disk, as a crash mid-wait would find it
        comfy.kill()
        submitted = fal.submissions
        comfy.start()
        entry = comfy.wait(comfy.queue(prompt, workflow), timeout=60)
        assert entry["status"]["status_str"] == "success" and fal.submissions == submitted
        info = json.loads(entry["outputs"][node_id_of(workflow, "PreviewAny")]["text"][0])
        assert info["source"] == "resumed" and info["request_id"] in set(fal.jobs) - jobs_before
        edit_id = node_id_of(workflow, "FalQwenImageEditPlus")
        assert any(node == edit_id and "resumed an earlier run's job" in text for node, text in comfy.progress_texts)
    finally:
        fal.run_time = 0.6


def test_no_key_in_workflows_metadata_history_or_logs(comfy):
    leaked, pngs = places_with_a_key(comfy)
    assert not leaked, f"key found in {leaked}"
    assert pngs > 3  # the examples' outputs were there to scan
