"""The optional phase timing the bench reads (nodes/fal/base/phases.py): off, it costs nothing and
records nothing; on, a real edit against the fake server reports each of its phases, from whichever
thread ran it."""

from __future__ import annotations

import threading

import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fal.base import phases
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest

from conftest import FAST_RETRY, config_for, gradient

INPUTS = [torch.from_numpy(gradient(24, 32, seed=s))[None] for s in (1, 2)]


@pytest.fixture
def spans():
    heard: list[tuple[str, float, float, int]] = []
    phases.listen(lambda name, start, end: heard.append((name, start, end, threading.get_ident())))
    try:
        yield heard
    finally:
        phases.listen(None)


def test_off_a_phase_is_one_shared_do_nothing_context():
    assert phases.phase("encode") is phases.phase("submit")
    with phases.phase("encode"):
        pass


@pytest.mark.parametrize("mode", ["fal", "gateway"])
def test_an_edit_reports_every_phase_once_on(spans, fake_fal, gateway_fal, tmp_path, mode):
    server = fake_fal if mode == "fal" else gateway_fal
    with persistent_client(config_for(server, mode), tmp_path / "state", retry=FAST_RETRY) as client:
        client.edit(QwenEditRequest(prompt="p", seed=3), INPUTS, timeout=30)
        names = {name for name, *_ in spans}
        assert set(phases.PHASES) <= names
        assert {"bookkeeping: journal", "bookkeeping: history", "bookkeeping: cache"} <= names
        assert all(start <= end for _, start, end, _ in spans)
        # the two inputs are resized and encoded on worker threads, not the caller's
        assert {ident for name, *_, ident in spans if name == "encode"} - {threading.get_ident()}
        assert sum(name == "resize" for name, *_ in spans) == 2
        phases.listen(None)
        count = len(spans)
        client.edit(QwenEditRequest(prompt="p", seed=4), INPUTS, timeout=30)
        assert len(spans) == count
