"""Batch mode (``edit_each``): at most ``concurrency`` jobs on fal at once, a slot
passes to the next frame as soon as a job's result is in (before its outputs
download), and waiting for a slot is free: no submit, no timeout spent."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import CancelledError
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest

from conftest import gradient, to_u8


def frames(count: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([gradient(16, 16, seed=s) for s in range(count)]))


def most_jobs_at_once(server) -> int:
    """The largest number of jobs that were running on the server at the same moment."""
    edges = sorted([(j.submitted_at, 1) for j in server.jobs.values()] +
                   [(j.completed_at, -1) for j in server.jobs.values()])
    running = peak = 0
    for _, step in edges:  # a completion sorts before a submit at the same instant
        running += step
        peak = max(peak, running)
    return peak


def test_never_more_than_concurrency_jobs_on_fal(fake_fal, make_client):
    fake_fal.run_time = 0.2
    batch = frames(6)
    outcomes = make_client(fake_fal).edit_each(QwenEditRequest(prompt="p"), batch, concurrency=2)
    assert fake_fal.submissions == 6 and most_jobs_at_once(fake_fal) == 2
    for k, outcome in enumerate(outcomes):  # results stay in frame order
        assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(batch[k].numpy()))


def test_the_next_job_starts_while_outputs_still_download(fake_fal, make_client):
    fake_fal.run_time = 0.1
    fake_fal.add_fault(Fault("files", "hang", delay=1.5))  # the first output download takes 1.5 s
    outcomes = make_client(fake_fal).edit_each(QwenEditRequest(prompt="p"), frames(2), concurrency=1)
    first, second = (fake_fal.jobs[o.handle.request_id] for o in outcomes)
    assert first.completed_at <= second.submitted_at < first.completed_at + 0.5
    assert most_jobs_at_once(fake_fal) == 1


def test_waiting_for_a_slot_does_not_count_against_the_timeout(fake_fal, make_client):
    fake_fal.run_time = 0.4  # frames 2 and 3 wait 0.4-0.8 s for a slot, then run 0.4 s
    outcomes = make_client(fake_fal).edit_each(QwenEditRequest(prompt="p"), frames(3), concurrency=1,
                                               timeout=0.7)
    assert len(outcomes) == 3 and fake_fal.submissions == 3


def test_cancel_while_frames_wait_for_a_slot_submits_nothing_more(fake_fal, make_client):
    fake_fal.run_time = 3.0
    cancel = threading.Event()

    def press_cancel_once_the_first_job_runs():
        deadline = time.monotonic() + 10
        while fake_fal.submissions == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the other frames are encoded, uploaded and waiting for the slot
        cancel.set()

    threading.Thread(target=press_cancel_once_the_first_job_runs, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(CancelledError):
        make_client(fake_fal).edit_each(QwenEditRequest(prompt="p"), frames(3), concurrency=1,
                                        should_cancel=cancel.is_set)
    assert time.monotonic() - started < 2.0  # not after the first job's 3 s
    assert fake_fal.submissions == 1 and len(fake_fal.cancel_requests) == 1


def test_combine_keeps_pixels_and_masks_of_every_outcome():
    from types import SimpleNamespace

    from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import combine
    rng = np.random.default_rng(3)

    def outcome(count, height, width):
        mask = (rng.random((count, height, width)) > 0.5).astype(np.float32)
        return SimpleNamespace(images=rng.random((count, height, width, 3), dtype=np.float32), mask=mask)

    same = [outcome(2, 4, 6), outcome(1, 4, 6)]
    images, mask = combine(same)
    assert images.shape == (3, 4, 6, 3) and np.array_equal(images[2], same[1].images[0])
    assert np.array_equal(mask[:2], same[0].mask) and np.array_equal(mask[2], same[1].mask[0])
    mixed = [outcome(1, 4, 6), outcome(1, 2, 2)]
    images, mask = combine(mixed, "pad")
    assert images.shape == (2, 4, 6, 3) and np.allclose(images[1, 1:3, 2:4], mixed[1].images[0])
    assert mask[1, 0, 0] == 1.0 and np.allclose(mask[1, 1:3, 2:4], mixed[1].mask[0])
    assert np.allclose(mask[0], mixed[0].mask[0])
