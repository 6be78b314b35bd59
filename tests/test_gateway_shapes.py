"""Every shape of server the pack meets (FAL_PROTOCOL.md §1b): fal itself, a full gateway, a gateway
with only submit + result (400 while running, or task-style 202/200 + status JSON), and fal's server
proxy. Each edit returns the right pixels with exactly one submit; the way of waiting is learned once
and remembered; a paid job is never given up while its result URL may still answer."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (CancelledError, FalError, FalTimeoutError, JobFailedError,
                                                    JobUnknownError)
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.queue.client import WaitSettings

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = gradient(18, 26, seed=5)
SHAPES = ["fal", "gateway", "gateway_result_only", "gateway_task", "proxy"]
# What a job's wait asks, per shape, on the first job (learning) and on every later one.
STATUS_LESS = ("gateway_result_only", "gateway_task")
INVITES_A_NEW_JOB = ("submit a new job", "submits a new job", "run the edit again to submit")


@pytest.fixture
def server_of():
    servers = []

    def start(mode: str, **settings) -> FakeFal:
        server = FakeFal(key=KEY, mode=mode, max_lifetime=120, **settings).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    assert [e for server in servers for e in server.errors] == []


def client_for(server: FakeFal, state, **wait):
    return persistent_client(config_for(server, server.mode), state, retry=FAST_RETRY,
                             wait_settings=WaitSettings(**wait))


def edit(client, seed=1, timeout=20, **options):
    request = QwenEditRequest(prompt="p", seed=seed)
    return client.edit(request, [torch.from_numpy(IMAGE)[None]], timeout=timeout, **options)


def wait_requests(server: FakeFal, request_id: str) -> dict[str, int]:
    """How often this job's stream, status and result were asked for (through a proxy too)."""
    counts = {"stream": 0, "status": 0, "result": 0}
    for recorded in server.requests:
        path = recorded.header("x-fal-target-url") or recorded.path
        if request_id not in path or recorded.method != "GET":
            continue
        kind = "stream" if path.endswith("/status/stream") or "/status/stream?" in path else \
            "status" if "/status" in path else "result"
        counts[kind] += 1
    return counts


@pytest.mark.parametrize("mode", SHAPES)
def test_every_shape_returns_the_image_with_one_submit(mode, server_of, tmp_path):
    server = server_of(mode, queue_time=0.2, queue_positions=2, run_time=0.3)
    updates = []
    with client_for(server, tmp_path) as client:
        outcome = edit(client, on_progress=updates.append)
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))
    assert server.submissions == 1
    assert updates and outcome.handle.request_id in {u.request_id for u in updates}
    if mode == "gateway_task":  # the result URL's status JSON reaches the progress display
        assert any(u.status == "IN_QUEUE" and u.queue_position is not None for u in updates)
        assert any(u.new_logs for u in updates) and {u.via for u in updates} == {"result"}


@pytest.mark.parametrize("mode, first_job, later_job", [
    ("fal", {"stream": 1, "status": 0, "result": 1}, {"stream": 1, "status": 0, "result": 1}),
    # The first job learns that stream and status are missing (one 404 each); later jobs ask nothing extra.
    ("gateway_result_only", {"stream": 1, "status": 1}, {"stream": 0, "status": 0}),
    ("gateway_task", {"stream": 1, "status": 1}, {"stream": 0, "status": 0}),
])
def test_the_way_of_waiting_is_learned_once_and_remembered(mode, first_job, later_job, server_of, tmp_path):
    server = server_of(mode, run_time=0.3)
    with client_for(server, tmp_path) as client:
        first = edit(client, seed=1)
        second = edit(client, seed=2)
    with client_for(server, tmp_path) as client:  # a new process: the memory is on disk, beside the journal
        third = edit(client, seed=3)
    assert server.submissions == 3
    asked = [wait_requests(server, o.handle.request_id) for o in (first, second, third)]
    for key, count in first_job.items():
        assert asked[0][key] == count, asked
    for counts in asked[1:]:
        for key, count in later_job.items():
            assert counts[key] == count, asked
        assert counts["result"] >= 1
    assert (tmp_path / "ways.json").is_file()


def test_a_way_that_broke_is_not_remembered_as_missing(server_of, tmp_path):
    from comfyui_fal_qwen_edit.nodes.fakefal import Fault
    server = server_of("fal", run_time=0.3)
    server.add_fault(Fault("stream", "status", 503, times=1))  # a passing outage, not "not offered"
    with client_for(server, tmp_path, stream_reconnects=0) as client:
        edit(client, seed=1)
        second = edit(client, seed=2)
    assert wait_requests(server, second.handle.request_id)["stream"] == 1  # still tried first


@pytest.mark.parametrize("mode", STATUS_LESS)
def test_a_journalled_job_on_a_status_less_gateway_is_resumed_not_paid_again(mode, server_of, tmp_path):
    server = server_of(mode, run_time=1.0)
    with client_for(server, tmp_path) as client, pytest.raises(FalTimeoutError) as timed_out:
        edit(client, timeout=0.4)
    [request_id] = list(server.jobs)
    message = str(timed_out.value)
    assert request_id in message and not any(words in message for words in INVITES_A_NEW_JOB)
    with client_for(server, tmp_path) as client:
        outcome = edit(client)
    assert outcome.source == "resumed" and server.submissions == 1
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))


@pytest.mark.parametrize("mode", STATUS_LESS)
def test_result_by_id_works_on_status_less_gateways(mode, server_of, tmp_path):
    server = server_of(mode, run_time=0.4)
    with client_for(server, tmp_path) as client:
        handle = client.queue.submit("fal-ai/qwen-image-edit-plus",
                                     {"prompt": "p", "image_urls": [_data_uri()], "seed": 4})
        outcome = client.result_by_id(handle.request_id)  # still running: waited for, by the result URL
    assert outcome.source == "fetched" and outcome.result.seed == 4 and server.submissions == 1


@pytest.mark.parametrize("mode", STATUS_LESS)
def test_a_job_is_unknown_only_when_its_result_url_says_so(mode, server_of, tmp_path):
    server = server_of(mode, run_time=1.0)
    with client_for(server, tmp_path) as client, pytest.raises(FalTimeoutError):
        edit(client, timeout=0.4)
    server.jobs.clear()  # expired on fal: now the result URL answers 404 as well
    with client_for(server, tmp_path) as client:
        with pytest.raises(FalError, match="unknown to fal") as unknown:
            edit(client)
        assert "result URL answers 404" in str(unknown.value)
        assert edit(client).source == "job" and server.submissions == 2
    with client_for(server, tmp_path) as client, pytest.raises(JobUnknownError, match="HTTP 404"):
        client.result_by_id("0123456789abcdef")


@pytest.mark.parametrize("mode", STATUS_LESS)
def test_failed_and_cancelled_jobs_read_from_the_result_url(mode, server_of, tmp_path):
    server = server_of(mode, run_time=0.2)
    server.fail_job = "CUDA out of memory"
    with client_for(server, tmp_path) as client:
        with pytest.raises(JobFailedError, match="CUDA out of memory") as failed:
            edit(client)
        assert list(server.jobs)[0] in str(failed.value)
        server.fail_job, server.run_time = None, 5.0
        handle = client.queue.submit("fal-ai/qwen-image-edit-plus", {"prompt": "p", "image_urls": [_data_uri()]})
        assert client.queue.cancel(handle) == "CANCELLATION_REQUESTED"
        with pytest.raises(CancelledError) as cancelled:
            client.queue.wait(handle, timeout=5)
        assert not cancelled.value.by_user and handle.request_id in str(cancelled.value)


@pytest.mark.parametrize("task_code", [202, 200])
def test_task_style_running_answers_with_either_code(task_code, server_of, tmp_path):
    server = server_of("gateway_task", queue_time=0.2, run_time=0.2)
    server.task_code = task_code
    with client_for(server, tmp_path) as client:
        outcome = edit(client)
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE)) and server.submissions == 1
    assert server.jobs[outcome.handle.request_id].result_fetches >= 2  # it was asked while running


@pytest.mark.parametrize("mode", STATUS_LESS)
def test_cancel_still_sends_the_cancel_request(mode, server_of, tmp_path):
    server = server_of(mode, run_time=30.0)
    cancel = threading.Event()
    threading.Timer(0.4, cancel.set).start()
    with client_for(server, tmp_path) as client, pytest.raises(CancelledError, match="CANCELLATION_REQUESTED"):
        edit(client, should_cancel=cancel.is_set)
    assert [r for r, _ in server.cancel_requests] == list(server.jobs)


def test_a_gateway_without_cancel_says_the_job_may_run_and_the_rerun_fetches_it(server_of, tmp_path):
    server = server_of("gateway_result_only", run_time=1.0)
    server.cancel_offered = False
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with client_for(server, tmp_path) as client, pytest.raises(CancelledError) as stopped:
        edit(client, should_cancel=cancel.is_set)
    message = str(stopped.value)
    assert "offers no cancel" in message and list(server.jobs)[0] in message
    assert [r for r, _ in server.cancel_requests] == list(server.jobs)  # asked all the same
    with client_for(server, tmp_path) as client:
        outcome = edit(client)  # the job ran to its end: fetched, not paid again
    assert outcome.source == "resumed" and server.submissions == 1


def _data_uri() -> str:
    import base64
    from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
    return "data:image/png;base64," + base64.b64encode(encode_png(IMAGE)).decode()
