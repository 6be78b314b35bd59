"""The pack inside a real ComfyUI: example workflows, progress, cache, Cancel, errors, no key leaks.

Needs ``COMFYUI_DIR`` (see README, "Tests inside a real ComfyUI"); skipped without it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Relay
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal

from comfyui_harness import ROOT, ComfyUI, comfyui_location, install_inputs
from conftest import KEY
from unknown_host import UnknownHost
from workflow_convert import ui_to_api

LOCATION = comfyui_location()
pytestmark = pytest.mark.skipif(
    LOCATION is None,
    reason="no real ComfyUI: set COMFYUI_DIR to a ComfyUI folder with its own .venv "
           "(README: 'Tests inside a real ComfyUI')")

WORKFLOWS = ROOT / "example_workflows"
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
OTHER_SECRET = "other-secret-5d4c3b2a1908f7e6"  # a variable not meant for the pack: a workflow must not read it


@pytest.fixture(scope="module")
def fal():
    server = FakeFal(key=KEY, queue_time=0.3, queue_positions=2, run_time=0.6,
                     logs=("loading model", "step 10/30", "step 30/30"), max_lifetime=1200).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def comfy(fal, tmp_path_factory):
    folder, python = LOCATION
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=fal.url, FAL_REST_BASE=fal.url, FAL_API_BASE=fal.url, FAL_GATEWAY_TOKEN=KEY,
               FAL_QWEN_EDIT_CONFIG=str(tmp_path_factory.mktemp("noconfig") / "config.ini"),
               FAL_QWEN_EDIT_STATE_DIR=str(tmp_path_factory.mktemp("state")), OTHER_SECRET=OTHER_SECRET)
    instance = ComfyUI(folder, python, env, tmp_path_factory.mktemp("comfyui"))
    install_inputs(instance.input_dir)
    try:
        yield instance.start()
    finally:
        instance.stop()


def load(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def run(comfy: ComfyUI, workflow: dict, timeout: float = 120) -> tuple[str, dict]:
    prompt = ui_to_api(workflow, comfy.get("/object_info"))
    prompt_id = comfy.queue(prompt, workflow)
    return prompt_id, comfy.wait(prompt_id, timeout)


def saved_images(entry: dict, comfy: ComfyUI, node_id: str) -> list[Path]:
    images = entry["outputs"].get(node_id, {}).get("images", [])
    return [comfy.output_dir / img["subfolder"] / img["filename"] for img in images]


def node_id_of(workflow: dict, kind: str) -> str:
    return next(str(n["id"]) for n in workflow["nodes"] if n["type"] == kind)


def info_request_id(entry: dict, workflow: dict) -> str:
    return json.loads(entry["outputs"][node_id_of(workflow, "PreviewAny")]["text"][0])["request_id"]


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


@pytest.mark.parametrize("mode", ["gateway_result_only", "proxy"])
def test_example_workflow_through_a_status_less_gateway_and_a_proxy(mode, comfy):
    """The three-image example with its Connection node pointed at a gateway that offers only submit +
    result, or at fal's server proxy: right pixels, one submit, and the second run asks no /status."""
    with FakeFal(key=KEY, mode=mode, queue_time=0.3, run_time=0.4, max_lifetime=300).start() as server, \
            trusting(comfy, server.url.split("//")[1]):  # a gateway only the workflow names: trusted by one line
        workflow = load("qwen_edit_three_images")
        connection = next(n for n in workflow["nodes"] if n["type"] == "FalQwenConnection")
        connection["widgets_values"][:3] = ["gateway", server.url, "FAL_GATEWAY_TOKEN"] if mode != "proxy" \
            else ["proxy", server.proxy_url, ""]
        edit = next(n for n in workflow["nodes"] if n["type"] == "FalQwenImageEditPlus")
        outputs = []
        for seed in ((8080, 8081) if mode != "proxy" else (8082, 8083)):  # seeds of their own: no cache hit
            edit["widgets_values"][8] = seed
            prompt_id, entry = run(comfy, workflow)
            errors = [e["exception_message"] for e in comfy.events("execution_error", prompt_id)]
            assert entry["status"]["status_str"] == "success", errors
            [output] = saved_images(entry, comfy, node_id_of(workflow, "SaveImage"))
            outputs.append(output)
        assert server.submissions == 2
        first, second = sorted(server.jobs.values(), key=lambda job: job.arguments["seed"])
        asked = {job.request_id: [(r.header("x-fal-target-url") or r.path).split("?")[0].split(job.request_id)[1]
                                  for r in server.requests
                                  if job.request_id in (r.header("x-fal-target-url") or r.path)]
                 for job in (first, second)}
        if mode != "proxy":  # the first run learns that /status is missing, the second goes straight on
            assert {"/status", "/status/stream"} <= set(asked[first.request_id])
            assert set(asked[second.request_id]) == {""}, asked
        # The Result by Request ID node, through the same connection: the first job's outputs, no new job.
        mode_widgets = connection["widgets_values"]
        prompt = {"1": {"class_type": "FalQwenConnection",
                        "inputs": dict(zip(("mode", "base_url", "key_env", "upload"), mode_widgets))},
                  "2": {"class_type": "FalQwenResultByRequestId",
                        "inputs": {"request_id": first.request_id, "endpoint": "fal-ai/qwen-image-edit-plus",
                                   "size_mismatch": "pad", "connection": ["1", 0]}},
                  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"by_id_{mode}"}}}
        entry = comfy.wait(comfy.queue(prompt))
        assert entry["status"]["status_str"] == "success" and server.submissions == 2
        [fetched] = saved_images(entry, comfy, "3")
        assert np.array_equal(np.asarray(Image.open(fetched)), np.asarray(Image.open(outputs[0])))
    person = Image.open(WORKFLOWS / "inputs" / "qwen_example_person.png").convert("RGB")
    expected = Image.fromarray(255 - np.asarray(person)).resize((1024, 576), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(Image.open(outputs[0]).convert("RGB")), np.asarray(expected))


@contextlib.contextmanager
def trusting(comfy: ComfyUI, host: str):
    """config.ini of the running ComfyUI says ``trusted_hosts = host`` (read at each run) until the block ends."""
    ini = Path(comfy.env["FAL_QWEN_EDIT_CONFIG"])
    ini.write_text(f"[connection]\ntrusted_hosts = {host}\n")
    try:
        yield ini
    finally:
        ini.unlink()


@pytest.mark.parametrize("mode,key_env", [("gateway", ""), ("gateway", "FAL_GATEWAY_TOKEN"), ("proxy", ""),
                                          ("proxy", "FAL_KEY"), ("auto", "FAL_GATEWAY_TOKEN")])
def test_a_shared_workflow_naming_an_unknown_host_sends_it_nothing(mode, key_env, comfy, fal):
    """Issue 24: the three-image example with its Connection node pointed at a host nobody configured:
    the node fails, its error names the host and the line that would trust it, and not one request
    (no key, no upload, no submit) reaches that host or fal."""
    with UnknownHost() as unknown:
        workflow = load("qwen_edit_three_images")
        connection = next(n for n in workflow["nodes"] if n["type"] == "FalQwenConnection")
        connection["widgets_values"][:3] = [mode, unknown.url, key_env]
        before = len(fal.requests)
        prompt_id, entry = run(comfy, workflow)
        [error] = comfy.events("execution_error", prompt_id)
        assert error["node_type"] == "FalQwenConnection", error
        host = unknown.url.split("//")[1]
        assert f"names {host}, which is not a gateway or proxy configured on this machine" in \
            error["exception_message"] and f"trusted_hosts = {host}" in error["exception_message"]
        assert unknown.requests == [] and len(fal.requests) == before


def test_key_env_naming_another_variable_is_refused_on_the_node_without_its_value(comfy, fal):
    workflow = load("qwen_edit_three_images")
    connection = next(n for n in workflow["nodes"] if n["type"] == "FalQwenConnection")
    connection["widgets_values"][2] = "OTHER_SECRET"
    prompt_id, entry = run(comfy, workflow)
    [error] = comfy.events("execution_error", prompt_id)
    assert "key_env names OTHER_SECRET, a variable not meant for this pack" in error["exception_message"]
    assert OTHER_SECRET not in json.dumps(error) + json.dumps(comfy.messages)


def test_load_image_from_url_refuses_a_loopback_address_nobody_configured(comfy):
    with UnknownHost({"/a.png": (200, {"Content-Type": "image/png"},
                                 (WORKFLOWS / "inputs" / "qwen_example_person.png").read_bytes())}) as unknown:
        prompt = {"1": {"class_type": "FalQwenLoadImageFromUrl",
                        "inputs": {"urls": unknown.named_url + "/a.png", "size_mismatch": "pad"}},
                  "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
        prompt_id = comfy.queue(prompt)
        comfy.wait(prompt_id)
        [error] = comfy.events("execution_error", prompt_id)
        assert "a loopback address" in error["exception_message"] and "[downloads]" in error["exception_message"]
        assert unknown.requests == []


def test_a_gateways_refusal_shows_on_the_node_in_its_own_words(comfy):
    """Issue 27: a reseller's relay (new-api) answers an empty balance: the node's error is the gateway's
    words in real characters with its code, the advice names the gateway's host (not fal's dashboard),
    one POST and no job; once topped up, the same graph runs with one job."""
    with FakeFal(key=KEY, mode="gateway", queue_time=0.2, run_time=0.3, max_lifetime=300).start() as server:
        server.relay = Relay(quota_usd=0.0)
        with trusting(comfy, server.url.split("//", 1)[1]):  # a workflow's base URL: trusted here
            workflow = load("qwen_edit_three_images")
            connection = next(n for n in workflow["nodes"] if n["type"] == "FalQwenConnection")
            connection["widgets_values"][:3] = ["gateway", server.url, "FAL_GATEWAY_TOKEN"]
            next(n for n in workflow["nodes"] if n["type"] == "FalQwenImageEditPlus")["widgets_values"][8] = 2727
            prompt_id, entry = run(comfy, workflow)
            [error] = comfy.events("execution_error", prompt_id)
            message, host = error["exception_message"], server.url.split("//", 1)[1]
            assert error["node_type"] == "FalQwenImageEditPlus"
            assert f"the gateway {host} refused the edit: nothing was queued" in message
            assert "HTTP 403 (insufficient_user_quota): 用户余额不足,需要充值" in message
            assert "top it up in the gateway's console" in message and host in message
            assert "fal dashboard" not in message and "\\u" not in message
            assert server.submissions == 0 and server.relay.submits == 1
            server.relay = Relay()  # topped up
            prompt_id, entry = run(comfy, workflow)
            assert entry["status"]["status_str"] == "success", comfy.events("execution_error", prompt_id)
            assert server.submissions == 1


def test_no_key_in_workflows_metadata_history_or_logs(comfy):
    secret = KEY.encode()
    places = {path: path.read_bytes() for path in WORKFLOWS.glob("*.json")}
    for path in comfy.output_dir.rglob("*.png"):
        data = path.read_bytes()
        places[path] = data
        assert b"workflow" in data or b"prompt" in data  # metadata is really there, and scanned
    places["history"] = json.dumps(comfy.get("/history")).encode()
    places["websocket"] = json.dumps(comfy.messages).encode() + str(comfy.progress_texts).encode()
    places["log"] = comfy.log_path.read_bytes()
    leaked = [str(name) for name, data in places.items()
              if secret in data or secret.split(b":")[1] in data or OTHER_SECRET.encode() in data]
    assert not leaked, f"key found in {leaked}"
    assert len(places) > len(EXPECTED_SUBMISSIONS) + 3
