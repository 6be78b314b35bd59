"""The endpoint table: each Qwen edit endpoint gets exactly its own fields, checked against its own
ranges before anything is uploaded; LoRAs go only where they are taken and are part of an edit's
identity. The fake fal server refuses any field an endpoint does not have (422), so the bodies
asserted here are the ones fal's schemas accept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import ENDPOINTS, GENERIC, MODEL_NAMES, spec_for
from comfyui_fal_qwen_edit.nodes.fal.base.errors import InputError
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import Lora, QwenEditRequest

from conftest import FAST_RETRY, client_environ, config_for, gradient, to_u8

IMAGE = gradient(20, 24, seed=3)
BIG_ENOUGH = gradient(400, 416, seed=3)  # the Qwen-Image-2 family takes 384-5000 px a side


def image_for(spec) -> np.ndarray:
    return BIG_ENOUGH if spec.image_side else IMAGE
LORA = "https://huggingface.co/dx8152/Qwen-Edit-2509-Multiple-angles/resolve/main/angles.safetensors"
COMMON = {"prompt", "negative_prompt", "image_size", "num_inference_steps", "guidance_scale", "num_images", "seed",
          "enable_safety_checker", "output_format", "acceleration"}


def full_request(spec, loras=()) -> QwenEditRequest:
    """Every field this endpoint takes set, to a value inside its own ranges."""
    taken = lambda name, value: value if spec.takes(name) else None  # noqa: E731
    return QwenEditRequest(prompt="p", negative_prompt="blur", image_size="square",
                           num_inference_steps=taken("num_inference_steps", (spec.steps or (0,))[0]),
                           guidance_scale=taken("guidance_scale", (spec.guidance or (0, 0))[1]), num_images=1, seed=5,
                           enable_safety_checker=False, output_format=spec.output_formats[-1],
                           acceleration=spec.accelerations[-1] if spec.accelerations else None, loras=list(loras),
                           enable_prompt_expansion=taken("enable_prompt_expansion", False))


def expected_fields(spec) -> set[str]:
    """The whole schema but sync_mode (the client leaves it to fal)."""
    assert spec.takes("prompt") and spec.fields - {"sync_mode"} >= COMMON - {"num_inference_steps", "guidance_scale",
                                                                              "acceleration"}
    return set(spec.fields) - {"sync_mode"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_endpoint_gets_exactly_its_fields_through_the_client(name, fal, tmp_path):
    spec = spec_for(name)
    loras = [Lora(LORA, 0.8)] if spec.takes_loras else []
    updates = []
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        outcome = client.edit(full_request(spec, loras), [torch.from_numpy(image_for(spec))[None]], model=name,
                              on_progress=updates.append, timeout=20)
    [job] = fal.jobs.values()
    assert job.endpoint == spec.endpoint and set(job.arguments) == expected_fields(spec)
    if spec.takes_loras:
        assert job.arguments["loras"] == [{"path": LORA, "scale": 0.8}]
        assert any(f"loading LoRA {LORA} (scale 0.8)" in line for u in updates for line in u.new_logs)
    assert outcome.images.shape == (1, 512, 512, 3)  # "square", inverted then scaled by the fake
    assert outcome.handle.endpoint == spec.endpoint and fal.submissions == 1


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_endpoint_gets_exactly_its_fields_through_the_cli(name, fal, tmp_path):
    spec = spec_for(name)
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(image_for(spec))).save(source)
    steps = ["--steps", str(spec.steps_default)] if spec.takes("num_inference_steps") else []
    expansion = ["--prompt-expansion", "off"] if spec.takes("enable_prompt_expansion") else []
    args = [str(source), "--prompt", "p", "--model", name, "--seed", "9", *steps, *expansion,
            "--format", "png", "--out", str(tmp_path / "o")]
    if spec.takes_loras:
        args += ["--lora", f"{LORA}:1.5", "--lora", "owner/repo"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(HOME=str(tmp_path), FAL_QWEN_EDIT_CONFIG="/nonexistent.ini", **client_environ(fal))
    done = subprocess.run([sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--json", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [job] = fal.jobs.values()
    sent = {"prompt", spec.image_field, "seed", "output_format", "num_images", *(["num_inference_steps"] if steps else []),
            *(["enable_prompt_expansion"] if expansion else [])}
    assert job.endpoint == spec.endpoint and set(job.arguments) == sent | ({"loras"} if spec.takes_loras else set())
    if spec.takes_loras:
        assert job.arguments["loras"] == [{"path": LORA, "scale": 1.5}, {"path": "owner/repo", "scale": 1.0}]
    if expansion:
        assert job.arguments["enable_prompt_expansion"] is False
    info = json.loads(done.stdout)
    edited = np.asarray(Image.open(info["files"][0]))
    assert np.array_equal(edited, 255 - to_u8(image_for(spec)))
    assert info["run"]["cost_usd_estimate"] == info["cost_usd_estimate"]
    if spec.price_per_mp is not None:
        assert info["cost_usd_estimate"] > 0 and f"{spec.name}: about $" in done.stderr
    else:  # a fresh state folder and no table price: said plainly, never a figure made up
        assert info["cost_usd_estimate"] is None and f"{spec.name}: price unknown: " in done.stderr
        # fal's pricing API, asked at the submit, prices the bill (the fake's: per image for the family)
        told = fal.unit_prices.get(spec.endpoint)
        assert info.get("cost_usd_billed") == (round(told * 1, 4) if told else None)


@pytest.mark.parametrize("name, change, text", [
    ("qwen-edit-2511", {"num_inference_steps": 60}, "num_inference_steps: 60 is out of range for qwen-edit-2511; use 1-50"),
    ("qwen-edit-2511", {"guidance_scale": 0.5}, "use 1-20"),
    ("qwen-edit-plus-lora", {"num_inference_steps": 80}, "use 2-50"),
    ("qwen-edit-plus", {"output_format": "webp"}, "not offered for qwen-edit-plus"),
    ("qwen-edit-plus", {"loras": [Lora(LORA)]}, "takes no LoRAs"),
    ("qwen-edit-2511", {"loras": [Lora(LORA)]}, "takes no LoRAs"),
    ("qwen-edit-2511-lora", {"loras": [Lora(LORA)] * 4}, "at most 3"),
    ("qwen-edit-2511-lora", {"loras": [Lora(LORA, 4.5)]}, "scale 4.5 is out of range; use 0-4"),
    ("qwen-edit-2511-lora", {"loras": [Lora("https://civitai.com/api/download/models/1?token=abc")]},
     "carries a token"),
    ("qwen-edit-2511-lora", {"loras": [Lora("ftp://x/y.safetensors")]}, "neither an https URL"),
])
def test_a_bad_field_for_the_endpoint_stops_before_any_request(name, change, text, fal, tmp_path):
    request = QwenEditRequest(**{"prompt": "p", "seed": 1, **change})
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        with pytest.raises(InputError) as info:
            client.edit(request, [torch.from_numpy(IMAGE)[None]], model=name)
    assert text in str(info.value) and fal.requests == []
    assert "abc" not in str(info.value)  # a token in a LoRA URL is not echoed either


def test_a_one_image_endpoint_refuses_two_before_any_upload(fal, tmp_path):
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        with pytest.raises(InputError, match="edits exactly one image and 2 are given"):
            client.edit(QwenEditRequest(prompt="p"), [torch.from_numpy(IMAGE)[None]] * 2, model="qwen-edit")
    assert fal.requests == []


def test_a_custom_endpoint_id_keeps_the_generic_rules(fal, tmp_path):
    request = QwenEditRequest(prompt="p", seed=2, num_inference_steps=100, acceleration="high", loras=[Lora(LORA)])
    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        client.edit(request, [torch.from_numpy(IMAGE)[None]], endpoint="someone/qwen-edit-next")
    [job] = fal.jobs.values()
    assert job.endpoint == "someone/qwen-edit-next" and job.arguments["loras"] == [{"path": LORA, "scale": 1.0}]
    assert spec_for(endpoint="someone/qwen-edit-next").steps == GENERIC.steps
    assert spec_for(endpoint="fal-ai/qwen-image-edit-2511/lora").name == "qwen-edit-2511-lora"  # a known id


def test_loras_are_part_of_an_edits_identity(fal, tmp_path):
    def run(client, *loras):
        request = QwenEditRequest(prompt="p", seed=4, loras=list(loras))
        return client.edit(request, [torch.from_numpy(IMAGE)[None]], model="qwen-edit-plus-lora")

    with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY) as client:
        assert run(client, Lora(LORA, 1.0)).source == "job"
        assert run(client, Lora(LORA, 1.0)).source == "cache"
        assert run(client, Lora(LORA, 0.5)).source == "job"  # another weight: another edit
        assert run(client).source == "job"
    assert fal.submissions == 3


def test_every_table_entry_names_its_sources_and_what_is_unconfirmed():
    for spec in ENDPOINTS:
        assert spec.sources and spec.endpoint.startswith("fal-ai/qwen-image")
        if spec.price_per_mp is None:
            assert any("price" in note for note in spec.unconfirmed), spec.name


def test_list_models_and_the_readme_tell_the_same_table(capsys, monkeypatch, tmp_path):
    """--list-models (on a fresh state folder: nothing from fal's pricing API yet, on a fake "today"), the
    README's table and the docs' one are one rendering of the endpoint table (cli/models_table.py): every
    model with its price rule ("price unknown" where the table has none), the aliases marked, the snapshot's
    date; tools/make_readme_models.py --check fails when a file holds another table."""
    from pathlib import Path
    from comfyui_fal_qwen_edit.nodes.fal.cli import main as cli, models_table
    from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import ALIASES, SNAPSHOT_READ_ON
    monkeypatch.setattr(models_table, "today", lambda: "2026-12-25")
    monkeypatch.setenv("FAL_QWEN_EDIT_STATE_DIR", str(tmp_path))
    assert cli.main(["--list-models"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"fal's input schemas read on {SNAPSHOT_READ_ON} (20 days ago)")
    rows = models_table.rows()
    assert [row.spec.name for row in rows[:len(ENDPOINTS)]] == list(MODEL_NAMES)
    for row, line in zip(rows, printed[1:]):
        name, endpoint, images, loras, price, source = row.cells(markdown=False)
        assert line.split()[0] == row.spec.name and line.startswith(name) and endpoint in line
        assert f"{price:<31} source: {source}" in line
        assert price == (row.spec.price_rule() if row.spec.price_per_mp is not None else "price unknown")
    assert printed[len(rows) + 1].startswith("custom")
    for alias in ALIASES:
        assert any(line.startswith(f"{alias.name} (alias of {alias.alias_of})") for line in printed)
    for unknown in ("qwen-image-2-edit", "qwen-image-2-pro-edit", "qwen-image-max-edit", "qwen-edit-2509"):
        assert "price unknown" in next(line for line in printed if line.split()[0] == unknown)

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert models_table.with_table(readme, models_table.README_MARKERS, models_table.readme_table()) == readme
    docs = (root / "docs" / "models-and-costs.md").read_text()
    assert models_table.with_table(docs, models_table.DOCS_MARKERS, models_table.docs_table()) == docs
    for row in rows:
        assert f"| {' | '.join(row.cells(markdown=True))} |" in readme
    tool = [sys.executable, str(root / "tools" / "make_readme_models.py"), "--check"]
    assert subprocess.run(tool, capture_output=True, text=True, timeout=60).returncode == 0


def test_list_models_says_what_fals_pricing_api_told_this_machine(capsys, monkeypatch, tmp_path):
    from comfyui_fal_qwen_edit.nodes.fal.cli import main as cli
    (tmp_path / "prices.json").write_text(json.dumps({"fal-ai/qwen-image-2/edit": {
        "unit_price": 0.035, "unit": "image", "currency": "USD", "fetched_at": 1}}))
    monkeypatch.setenv("FAL_QWEN_EDIT_STATE_DIR", str(tmp_path))
    assert cli.main(["--list-models"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("qwen-image-2-edit "))
    assert "price unknown" in line and "fal's pricing API told this machine $0.035 per image" in line


def test_the_readme_check_fails_on_another_table(tmp_path, monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.cli import models_table
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    edited = readme.replace("| qwen-image-2-edit |", "| qwen-image-2-edit (cheap!) |", 1)
    assert edited != readme
    assert models_table.with_table(edited, models_table.README_MARKERS, models_table.readme_table()) == readme
    with pytest.raises(ValueError, match="markers"):
        models_table.with_table("no table here", models_table.README_MARKERS, models_table.readme_table())
