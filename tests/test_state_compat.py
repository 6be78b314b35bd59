"""The state folder written by the last release (tests/fixtures/state_c0b86bf) is still read as it was.

Its result cache entry must be found by the same edit (so the edit's identity is unchanged) and served
with no request to fal; its journal entries, ledger line and remembered way must read as written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fal.state.budget import Budget
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.queue.way_memory import WayMemory

FIXTURE = Path(__file__).parent / "fixtures" / "state_c0b86bf"
CACHED_REQUEST_ID = "a24ba606-1feb-4105-9e53-b4086d8e38c8"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    shutil.copytree(FIXTURE, folder)
    return folder


def the_edit_of_the_fixture() -> tuple[QwenEditRequest, torch.Tensor]:
    image = torch.zeros((1, 64, 96, 3))
    image[..., 0] = 0.25
    image[:, :32, :, 1] = 1.0
    return QwenEditRequest(prompt="make it red", seed=7), image


def test_cached_result_is_served_without_a_request(state, fake_fal, monkeypatch):
    config = load_config(mode="fal", environ={"FAL_KEY": fake_fal.key, "FAL_QUEUE_BASE": fake_fal.url,
                                              "FAL_REST_BASE": fake_fal.url, "FAL_QWEN_EDIT_CONFIG": "/nonexistent"})
    client = persistent_client(config, state, budget_usd=5.0)
    request, image = the_edit_of_the_fixture()
    outcome = client.edit(request, [image])
    assert outcome.handle.request_id == CACHED_REQUEST_ID
    assert fake_fal.submissions == 0 and fake_fal.uploads == [] and fake_fal.requests == []
    assert outcome.source == "cache"
    pixels = outcome.images
    assert pixels.shape == (1, 64, 96, 3)
    # the fake inverted the input when the release wrote this entry
    assert np.allclose(pixels[0, 40, 10], [0.75, 1.0, 1.0], atol=1 / 255)
    assert np.allclose(pixels[0, 10, 10], [0.75, 0.0, 1.0], atol=1 / 255)


def test_journal_entries_read_as_written(state):
    journal = Journal(state / "journal")
    entry = journal.pending("0" * 64, max_age=float("inf"))
    assert entry is not None and entry.handle is not None
    assert entry.handle.request_id == "9c08e7d8-312c-402d-a691-c207a9cb8121"
    assert entry.handle.response_url.endswith("/requests/9c08e7d8-312c-402d-a691-c207a9cb8121")
    unanswered = journal.pending("1" * 64, max_age=float("inf"))
    assert unanswered is not None and unanswered.handle is None
    assert unanswered.endpoint == "fal-ai/qwen-image-edit-2511"


def test_ledger_and_remembered_way_read_as_written(state, monkeypatch):
    line = json.loads((state / "spend.jsonl").read_text())
    # the ledger counts the last 24 h: read it as at the moment it was written
    monkeypatch.setattr("time.time", lambda: line["t"] + 60)
    assert Budget(state / "spend.jsonl", 5.0).spent() == pytest.approx(0.03)
    (key, saved), = json.loads((state / "ways.json").read_text()).items()
    monkeypatch.setattr("time.time", lambda: saved["at"] + 60)
    assert WayMemory(state / "ways.json").first_way(key) == "stream"
