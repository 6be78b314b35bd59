"""A submit whose answer was lost: its job looked up in fal's request history (the fake's Platform API,
``expand=payloads``), waited on when found, submitted once when fal certainly never ran it, and
blocked with a message that says why in every other case. Each ends with the fake's submission
counter saying how many jobs were paid for."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import SubmitUncertainError
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.platform import submit_search
from comfyui_fal_qwen_edit.nodes.fal.platform.fingerprints import fingerprint, matches
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal

from conftest import FAST_RETRY, KEY, config_for, gradient, leaked, to_u8

IMAGE = gradient(24, 32, seed=11)
INVERTED = 255 - to_u8(IMAGE)


def client(server, state, mode="fal", **env):
    return persistent_client(config_for(server, mode, **env), state, retry=FAST_RETRY)


def edit(c, **kw):
    return c.edit(QwenEditRequest(prompt="make it night", seed=7), [torch.from_numpy(IMAGE)[None]], **kw)


def entries(state):
    return Journal(state / "journal").entries()


def later(monkeypatch, seconds: float) -> None:
    """Every clock (``time.time``: ours and the fake fal's), ``seconds`` on: what a user who runs the
    edit again much later sees."""
    real = submit_search.time.time
    monkeypatch.setattr(submit_search.time, "time", lambda: real() + seconds)


def test_a_reply_lost_after_fal_took_the_job_is_found_in_its_history_and_waited_on(fake_fal, tmp_path):
    fake_fal.add_fault(Fault("submit", "reset_after"))  # fal takes the job, the answer never arrives
    with client(fake_fal, tmp_path) as c:
        outcome = edit(c)
    assert fake_fal.submissions == 1 and np.array_equal(to_u8(outcome.images[0]), INVERTED)
    assert outcome.handle.request_id == next(iter(fake_fal.jobs)) and entries(tmp_path) == []
    looked = [r for r in fake_fal.requests if r.path == "/v1/models/requests/by-endpoint"]
    assert looked and looked[0].query["expand"] == "payloads" and looked[0].query["start"]


def test_a_run_killed_before_the_answer_is_resumed_by_the_next_from_fals_history(fake_fal, tmp_path):
    fake_fal.add_fault(Fault("submit", "reset_after"))
    history_down = fake_fal.add_fault(Fault("platform_requests", "status", code=500, times=None))
    with client(fake_fal, tmp_path) as c, pytest.raises(SubmitUncertainError, match="could not be read") as info:
        edit(c)  # what a kill in the same place leaves: a "submitting" entry and a job on fal
    assert "force_new_job" in str(info.value) and fake_fal.submissions == 1
    [entry] = entries(tmp_path)
    assert entry["request_id"] is None and entry["fingerprint"] and entry["start_deadline"] > 1
    assert "make it night" not in json.dumps(entry)  # digests of the fields, not the prompt itself
    history_down.times = 0
    with client(fake_fal, tmp_path) as c:
        again = edit(c)
    assert again.source == "resumed" and fake_fal.submissions == 1 and entries(tmp_path) == []
    assert np.array_equal(to_u8(again.images[0]), INVERTED)


def test_a_502_fal_did_not_act_on_is_blocked_until_its_start_deadline_has_passed_then_submitted_once(
        fake_fal, tmp_path, monkeypatch):
    fake_fal.add_fault(Fault("submit", "status", code=502))  # the fake made no job of it
    with client(fake_fal, tmp_path) as c, pytest.raises(SubmitUncertainError, match="HTTP 502") as info:
        edit(c, timeout=60.0)
    message = str(info.value)
    assert "not among the 0 requests" in message and "start deadline" in message and "force_new_job" in message
    with client(fake_fal, tmp_path) as c, pytest.raises(SubmitUncertainError, match="never arrived"):
        edit(c)  # minutes later: fal could still start it
    assert fake_fal.submissions == 0 and len(entries(tmp_path)) == 1
    later(monkeypatch, 60.0 + submit_search.RUN_ALLOWANCE + 5)
    with client(fake_fal, tmp_path) as c:
        outcome = edit(c)  # past the deadline and not listed: fal never ran it
    assert outcome.source == "job" and fake_fal.submissions == 1 and entries(tmp_path) == []


def test_without_a_start_deadline_not_listed_never_counts_as_never_run(fake_fal, tmp_path, monkeypatch):
    fake_fal.add_fault(Fault("submit", "status", code=504))
    with client(fake_fal, tmp_path) as c, pytest.raises(SubmitUncertainError, match="no start deadline"):
        edit(c, start_timeout=0)
    later(monkeypatch, 12 * 3600.0)  # within the journal's day (a day-old entry is not resumed at all)
    with client(fake_fal, tmp_path) as c, pytest.raises(SubmitUncertainError, match="may still wait"):
        edit(c)
    assert fake_fal.submissions == 0


@pytest.mark.parametrize("how", ["keep_on_fal off", "gateway"])
def test_where_fals_history_cannot_show_the_inputs_the_submit_stays_blocked(how, fake_fal, gateway_fal, tmp_path):
    server, mode, env = (fake_fal, "fal", {"FAL_KEEP_ON_FAL": "off"}) if how != "gateway" else \
        (gateway_fal, "gateway", {})
    server.add_fault(Fault("submit", "reset_after"))
    with client(server, tmp_path, mode, **env) as c, pytest.raises(SubmitUncertainError) as info:
        edit(c)
    message = str(info.value)
    assert ("keeps no inputs" if how != "gateway" else "gateway") in message and not leaked([message])
    assert server.submissions == 1
    with client(server, tmp_path, mode, **env) as c, pytest.raises(SubmitUncertainError, match="never arrived"):
        edit(c)
    assert server.submissions == 1


def test_only_a_request_with_every_field_alike_is_the_lost_submit():
    sent = {"prompt": "p", "image_urls": ["https://v3.fal.media/files/a.png"], "seed": 7, "guidance_scale": 4.0}
    prints = fingerprint(sent)
    assert matches(prints, {**sent, "guidance_scale": 4, "num_inference_steps": 50})  # fal's own defaults added
    assert not matches(prints, {**sent, "seed": 8})
    assert not matches(prints, {k: v for k, v in sent.items() if k != "seed"})
    assert not matches(prints, None) and not matches({}, sent)
    assert KEY not in json.dumps(prints)
