"""One real ComfyUI with the fake fal server, and the helpers that run example workflows in it: shared by
tests/test_comfyui.py (the examples, progress, cache, Cancel, errors) and tests/test_comfyui_trust.py (shared
workflows naming hosts, gateways and proxies, keys). Each module that imports the fixtures starts its own.

Needs ``COMFYUI_DIR`` (see README, "Tests inside a real ComfyUI"); the modules skip without it.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal

from comfyui_harness import ROOT, ComfyUI, comfyui_location, install_inputs
from conftest import KEY
from workflow_convert import ui_to_api

LOCATION = comfyui_location()
NEEDS_COMFYUI = pytest.mark.skipif(
    LOCATION is None,
    reason="no real ComfyUI: set COMFYUI_DIR to a ComfyUI folder with its own .venv "
           "(README: 'Tests inside a real ComfyUI')")

WORKFLOWS = ROOT / "example_workflows"
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


@contextlib.contextmanager
def trusting(comfy: ComfyUI, host: str):
    """config.ini of the running ComfyUI says ``trusted_hosts = host`` (read at each run) until the block ends."""
    ini = Path(comfy.env["FAL_QWEN_EDIT_CONFIG"])
    ini.write_text(f"[connection]\ntrusted_hosts = {host}\n")
    try:
        yield ini
    finally:
        ini.unlink()


def places_with_a_key(comfy: ComfyUI) -> tuple[list[str], int]:
    """(where the fal key, or the variable not meant for the pack, shows: the example workflows, every
    saved PNG's metadata, the history, the websocket's messages, the log; how many PNGs were scanned)."""
    secret = KEY.encode()
    places = {path: path.read_bytes() for path in WORKFLOWS.glob("*.json")}
    pngs = 0
    for path in comfy.output_dir.rglob("*.png"):
        data = path.read_bytes()
        places[path], pngs = data, pngs + 1
        assert b"workflow" in data or b"prompt" in data  # metadata is really there, and scanned
    places["history"] = json.dumps(comfy.get("/history")).encode()
    places["websocket"] = json.dumps(comfy.messages).encode() + str(comfy.progress_texts).encode()
    places["log"] = comfy.log_path.read_bytes()
    leaked = [str(name) for name, data in places.items()
              if secret in data or secret.split(b":")[1] in data or OTHER_SECRET.encode() in data]
    return leaked, pngs
