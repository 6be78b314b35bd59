"""Shared workflows in a real ComfyUI: a Connection node naming a gateway or proxy (trusted by a line of
config.ini, or by nobody), a key_env naming another variable, a URL to a loopback address, a gateway's own
refusal; and no key anywhere afterwards. Issues 24 and 27.

Needs ``COMFYUI_DIR`` (see README, "Tests inside a real ComfyUI"); skipped without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Relay

from comfyui_session import (NEEDS_COMFYUI, OTHER_SECRET, WORKFLOWS, comfy, fal, load, node_id_of,  # noqa: F401
                             places_with_a_key, run, saved_images, trusting)
from conftest import KEY
from unknown_host import UnknownHost

pytestmark = NEEDS_COMFYUI


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
    leaked, pngs = places_with_a_key(comfy)
    assert not leaked, f"key found in {leaked}"
    assert pngs >= 1  # a gateway's and a proxy's outputs were there to scan
