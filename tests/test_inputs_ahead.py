"""Inputs on their way while the edit still decides (nodes/fal/edit/ahead.py): an encoded input is
uploaded while a later one is still being prepared, once the edit is counted against the cap; a
cached result or a resumed job abandons what is going ahead and costs nothing; past the cap nothing
goes ahead, and a cached result is still served."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.edit import ahead
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.state.budget import BudgetError

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

INPUTS = [torch.from_numpy(gradient(40, 56, seed=s))[None] for s in range(3)]
ONE_EDIT = 0.03


@pytest.fixture
def fal():
    server = FakeFal(key=KEY, max_lifetime=120).start()
    server.billable_units = False  # the ledger keeps estimates (settling is tests/test_history.py's)
    yield server
    server.stop()


@pytest.fixture
def last_input_waits_for_an_upload(fal, monkeypatch):
    """The last input's preparation waits (up to 10 s) until the fake has received an upload; the
    returned list says whether one had arrived by then."""
    seen: list[bool] = []
    real = ahead.prepare

    def prepare(frame, reads_area, resize="fit model", **limits):
        if np.array_equal(frame, INPUTS[-1][0].numpy()):
            deadline = time.monotonic() + 10
            while not fal.uploads and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(bool(fal.uploads))
        return real(frame, reads_area, resize, **limits)

    monkeypatch.setattr(ahead, "prepare", prepare)
    return seen


def client(server, state, cap=None):
    return persistent_client(config_for(server), state, retry=FAST_RETRY, budget_usd=cap)


def edit(c, seed=1):
    return c.edit(QwenEditRequest(prompt="p", seed=seed), INPUTS, timeout=30)


def test_an_input_is_uploaded_while_a_later_one_is_still_being_prepared(fal, tmp_path, last_input_waits_for_an_upload):
    with client(fal, tmp_path) as c:
        outcome = edit(c)
        assert c.budget.spent() == pytest.approx(ONE_EDIT)  # counted once, before the first upload
    assert last_input_waits_for_an_upload == [True]
    assert len(fal.uploads) == 3 and fal.submissions == 1
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(INPUTS[0][0].numpy()))


def test_a_cached_result_abandons_what_went_ahead_and_costs_nothing(fal, tmp_path, last_input_waits_for_an_upload):
    with client(fal, tmp_path) as c:
        edit(c)
    fal.uploads.clear()
    with client(fal, tmp_path) as again:  # a new process: its uploads are not remembered
        outcome = edit(again)
        assert outcome.source == "cache" and again.budget.spent() == pytest.approx(ONE_EDIT)
    assert last_input_waits_for_an_upload == [True, True] and fal.submissions == 1


def test_past_the_cap_nothing_goes_ahead_and_a_cached_result_is_still_served(fal, tmp_path):
    with client(fal, tmp_path, cap=ONE_EDIT) as c:
        edit(c)
    uploads = len(fal.uploads)
    with client(fal, tmp_path, cap=ONE_EDIT) as again:
        assert edit(again).source == "cache"  # free, so the cap does not stand in its way
        with pytest.raises(BudgetError, match="Nothing was uploaded or submitted"):
            edit(again, seed=2)
    assert len(fal.uploads) == uploads and fal.submissions == 1
