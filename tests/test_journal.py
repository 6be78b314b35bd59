"""The job journal's edge cases: cancels fal did not honour, uncertain submits, identical edits at
once, another connection, unreadable entries, outputs that are gone. Each ends with the fake
server's submission counter saying exactly how many jobs were paid for."""

from __future__ import annotations

import json
import logging
import os
import threading

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (CancelledError, FalTimeoutError, OutputGoneError,
                                                     TransportError)
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import prepare
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal, request_key
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = gradient(24, 32, seed=11)
INVERTED = 255 - to_u8(IMAGE)


def client(server, state, **kw):
    return persistent_client(config_for(server), state, retry=FAST_RETRY, **kw)


def edit(c, seed=7, **kw):
    return c.edit(QwenEditRequest(prompt="make it night", seed=seed), [torch.from_numpy(IMAGE)[None]], **kw)


def entries(state):
    return Journal(state / "journal").entries()


def lift(fault: Fault) -> None:
    fault.times = 0  # spent: the fake stops applying it


def cancel_when(status: str):
    """A cancel hook that fires once the job reports ``status``, and the progress callback that arms it."""
    fired = threading.Event()
    return fired.is_set, lambda progress: fired.set() if progress.status == status else None


def test_a_cancel_answered_already_completed_returns_the_paid_result_and_ends_the_entry(fake_fal, tmp_path):
    fake_fal.run_time = 0.8
    fake_fal.add_fault(Fault("cancel", "status", code=400, body={"status": "ALREADY_COMPLETED"}))
    should_cancel, on_progress = cancel_when("IN_PROGRESS")
    with client(fake_fal, tmp_path) as c:
        outcome = edit(c, should_cancel=should_cancel, on_progress=on_progress)
    assert should_cancel() and [r for r, _ in fake_fal.cancel_requests] == [outcome.handle.request_id]
    assert np.array_equal(to_u8(outcome.images[0]), INVERTED) and "Cancel came too late" in outcome.note
    assert entries(tmp_path) == []  # its result is in hand: nothing left to resume
    with client(fake_fal, tmp_path) as c:
        again = edit(c)
    assert again.source == "cache" and fake_fal.submissions == 1  # the paid result, kept


@pytest.mark.parametrize("answer", [Fault("cancel", "reset", times=None)], ids=["cancel-request-lost"])
def test_a_cancel_fal_did_not_honour_keeps_the_job_for_the_rerun(fake_fal, tmp_path, answer):
    fake_fal.run_time = 0.8
    fake_fal.add_fault(answer)
    should_cancel, on_progress = cancel_when("IN_PROGRESS")
    with client(fake_fal, tmp_path) as c, pytest.raises(CancelledError) as info:
        edit(c, should_cancel=should_cancel, on_progress=on_progress)
    [entry] = entries(tmp_path)
    assert info.value.by_user and entry["request_id"] in str(info.value)
    with client(fake_fal, tmp_path) as c:
        again = edit(c)
    assert again.source == "resumed" and again.handle.request_id == entry["request_id"]
    assert fake_fal.submissions == 1 and np.array_equal(to_u8(again.images[0]), INVERTED)
    assert entries(tmp_path) == []


def test_a_honoured_cancel_lets_the_rerun_submit_a_new_job(fake_fal, tmp_path):
    fake_fal.queue_time, fake_fal.queue_positions = 5.0, 2
    should_cancel, on_progress = cancel_when("IN_QUEUE")
    with client(fake_fal, tmp_path) as c, pytest.raises(CancelledError) as info:
        edit(c, should_cancel=should_cancel, on_progress=on_progress)
    assert "CANCELLATION_REQUESTED" in str(info.value) and len(entries(tmp_path)) == 1
    fake_fal.queue_time = 0.0
    with client(fake_fal, tmp_path) as c:
        again = edit(c)  # asks fal about the journalled job, learns it was cancelled, submits anew
    assert again.source == "job" and again.handle.request_id != info.value.request_id
    assert fake_fal.submissions == 2 and np.array_equal(to_u8(again.images[0]), INVERTED)


def test_submit_that_certainly_failed_leaves_nothing_behind(fake_fal, tmp_path):
    refused = fake_fal.add_fault(Fault("submit", "status", code=503, times=None))  # ingress: never reached the app
    with client(fake_fal, tmp_path) as c, pytest.raises(Exception, match="HTTP 503"):
        edit(c)
    assert entries(tmp_path) == [] and fake_fal.submissions == 0
    lift(refused)
    with client(fake_fal, tmp_path) as c:
        assert edit(c).source == "job" and fake_fal.submissions == 1


def test_two_identical_edits_at_once_share_one_job(fake_fal, tmp_path):
    fake_fal.run_time = 0.5
    results, errors = [], []

    def run():
        try:
            with client(fake_fal, tmp_path) as c:  # separate clients, as two processes would be
                results.append(edit(c))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 3
    assert fake_fal.submissions == 1 and len({r.handle.request_id for r in results}) == 1
    assert all(np.array_equal(to_u8(r.images[0]), INVERTED) for r in results)


def test_duplicate_frames_in_per_frame_mode_are_paid_once(fake_fal, tmp_path):
    frames = torch.from_numpy(np.stack([IMAGE, IMAGE]))
    with client(fake_fal, tmp_path) as c:
        outcomes = c.edit_each(QwenEditRequest(prompt="p", seed=1), frames, concurrency=2)
    assert fake_fal.submissions == 1 and len(outcomes) == 2
    assert outcomes[0].handle.request_id == outcomes[1].handle.request_id


def test_duplicate_frames_with_fal_picking_the_seed_are_separate_edits(fake_fal, tmp_path):
    fake_fal.run_time = 0.3  # both jobs in flight together
    frames = torch.from_numpy(np.stack([IMAGE, IMAGE]))
    with client(fake_fal, tmp_path) as c:
        outcomes = c.edit_each(QwenEditRequest(prompt="p"), frames, concurrency=2)
    assert fake_fal.submissions == 2 and outcomes[0].handle.request_id != outcomes[1].handle.request_id


def test_the_journal_is_per_connection(fake_fal, tmp_path):
    fake_fal.run_time = 1.0
    with client(fake_fal, tmp_path) as c, pytest.raises(FalTimeoutError):
        edit(c, seed=None, timeout=0.3)  # no seed: not cacheable, so only the journal can help
    with FakeFal(key=KEY, max_lifetime=60.0).start() as other:
        with client(other, tmp_path) as c:  # same edit, another queue: its job is not visible there
            assert edit(c, seed=None).source == "job" and other.submissions == 1
    with client(fake_fal, tmp_path) as c:
        assert edit(c, seed=None).source == "resumed" and fake_fal.submissions == 1


def test_resumed_job_unknown_to_fal_is_reported_and_forgotten(fake_fal, tmp_path):
    fake_fal.run_time = 1.0
    with client(fake_fal, tmp_path) as c, pytest.raises(FalTimeoutError):
        edit(c, timeout=0.3)
    fake_fal.jobs.clear()  # fal no longer knows it (expired, or another account)
    with client(fake_fal, tmp_path) as c:
        with pytest.raises(Exception, match="unknown to fal"):
            edit(c)
        assert entries(tmp_path) == []
        assert edit(c).source == "job" and fake_fal.submissions == 2


@pytest.mark.parametrize("content", ["[]", "null", '{"submitted_at": "x"}', '{"submitted_at": 1e12}',
                                     "{not json", '{"endpoint": "e", "submitted_at": 1e12, "request_id": 5}'])
def test_an_unreadable_journal_entry_never_stops_an_edit(fake_fal, tmp_path, content, caplog):
    with client(fake_fal, tmp_path) as c:
        key = c._journal_key(_key_of(c))
        (tmp_path / "journal").mkdir(parents=True, exist_ok=True)
        (tmp_path / "journal" / f"{key}.json").write_text(content)
        with caplog.at_level(logging.WARNING):
            outcome = edit(c)
    assert outcome.source == "job" and fake_fal.submissions == 1
    assert "unreadable journal entry" in caplog.text and entries(tmp_path) == []


def _key_of(c) -> str:
    """The request key ``edit(c)`` computes for IMAGE."""
    request = QwenEditRequest(prompt="make it night", seed=7)
    return request_key("fal-ai/qwen-image-edit-plus", request.arguments_without_images(),
                       [prepare(IMAGE, None).digest, "input_resize=fit model", "upload_format=png"])


def test_a_failed_journal_write_after_submit_still_returns_the_paid_result(fake_fal, tmp_path, monkeypatch,
                                                                          caplog):
    def disk_full(self, key, handle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Journal, "record", disk_full)
    with client(fake_fal, tmp_path) as c, caplog.at_level(logging.WARNING):
        outcome = edit(c)
    assert fake_fal.submissions == 1 and np.array_equal(to_u8(outcome.images[0]), INVERTED)
    assert f"could not journal request {outcome.handle.request_id}" in caplog.text


def test_outputs_that_are_gone_end_the_journal_entry(fake_fal, tmp_path):
    gone = fake_fal.add_fault(Fault("files", "status", code=404, times=None))
    with client(fake_fal, tmp_path) as c, pytest.raises(OutputGoneError, match="Run the edit again") as info:
        edit(c)
    assert info.value.request_id in str(info.value) and entries(tmp_path) == []
    lift(gone)
    with client(fake_fal, tmp_path) as c:
        assert edit(c).source == "job" and fake_fal.submissions == 2


def test_a_download_broken_by_the_network_keeps_the_job_for_the_rerun(fake_fal, tmp_path):
    broken = fake_fal.add_fault(Fault("files", "reset", times=None))
    with client(fake_fal, tmp_path) as c, pytest.raises(Exception) as info:
        edit(c)
    [entry] = entries(tmp_path)
    assert entry["request_id"] in str(info.value)
    lift(broken)
    with client(fake_fal, tmp_path) as c:
        again = edit(c)
    assert again.source == "resumed" and fake_fal.submissions == 1
    assert np.array_equal(to_u8(again.images[0]), INVERTED)


def test_result_outage_is_not_a_failed_job(fake_fal, tmp_path):
    outage = fake_fal.add_fault(Fault("result", "status", code=503, times=None))
    with client(fake_fal, tmp_path) as c, pytest.raises(Exception) as info:
        edit(c)
    assert "failed on fal" not in str(info.value) and len(entries(tmp_path)) == 1
    lift(outage)
    with client(fake_fal, tmp_path) as c:
        assert edit(c).source == "resumed" and fake_fal.submissions == 1


def test_result_by_id_of_a_running_job_waits_for_it(fake_fal, tmp_path):
    fake_fal.run_time = 0.8
    with client(fake_fal, tmp_path) as c, pytest.raises(FalTimeoutError) as info:
        edit(c, timeout=0.2)
    with client(fake_fal, tmp_path / "elsewhere") as c:
        fetched = c.result_by_id(info.value.request_id)
    assert fake_fal.submissions == 1 and np.array_equal(to_u8(fetched.images[0]), INVERTED)


def test_no_journal_entry_outlives_its_day(tmp_path):
    journal = Journal(tmp_path)
    journal.record_submitting("old", "fal-ai/x")
    journal.record_submitting("new", "fal-ai/x")
    old = tmp_path / "old.json"
    stamp = json.loads(old.read_text())["submitted_at"] - 2 * 24 * 3600
    os.utime(old, (stamp, stamp))
    journal.sweep()
    assert [e["key"] for e in journal.entries()] == ["new"]


def test_network_failure_before_submit_leaves_no_entry(tmp_path):
    with FakeFal(key=KEY, max_lifetime=60.0).start() as server:
        config = config_for(server)
    # the server is gone: every connection is refused, so nothing can have been sent
    with persistent_client(config, tmp_path, retry=FAST_RETRY) as c, pytest.raises(TransportError):
        c.edit(QwenEditRequest(prompt="p", seed=1, image_urls=["data:image/png;base64,AAAA"]))
    assert entries(tmp_path) == []


def test_cancel_while_fetching_a_running_result_by_id_leaves_the_job_alone(fake_fal, tmp_path):
    fake_fal.run_time = 5.0
    with client(fake_fal, tmp_path) as c, pytest.raises(FalTimeoutError) as info:
        edit(c, timeout=0.2)
    should_cancel, on_progress = cancel_when("IN_PROGRESS")
    with client(fake_fal, tmp_path / "elsewhere") as c, pytest.raises(CancelledError, match="left running"):
        c.result_by_id(info.value.request_id, should_cancel=should_cancel, on_progress=on_progress)
    assert fake_fal.cancel_requests == [] and fake_fal.jobs[info.value.request_id].error is None
