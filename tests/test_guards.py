"""fal's own guards for a paid job, end to end against the fake: the start deadline, the backup
queue host, cancel's three answers, queue priority, and not keeping the request on fal."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (CancelledError, ConfigError, FalTimeoutError, JobUnknownError,
                                                         StartDeadlineError, TransportError)
from comfyui_fal_qwen_edit.nodes.fal.cli.check import run_checks
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.queue.client import WaitSettings
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal
from comfyui_fal_qwen_edit.nodes.fal.state.result_cache import kept_key
from comfyui_fal_qwen_edit.nodes.fal.wire import backup
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config
from comfyui_fal_qwen_edit.nodes.fal.wire.guards import check_start_timeout, queue_defaults, submit_headers

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = gradient(18, 26, seed=3)
EP = "fal-ai/qwen-image-edit-plus"


@pytest.fixture
def server(fake_fal):
    yield fake_fal
    assert fake_fal.errors == []  # no bug inside the fake itself


def client_for(server, tmp_path, mode="fal", sse=True, **environ):
    return persistent_client(config_for(server, mode, **environ), tmp_path, retry=FAST_RETRY,
                             wait_settings=WaitSettings(use_sse=sse, stream_idle_check=0.3))


def edit(client, seed=1, **options):
    return client.edit(QwenEditRequest(prompt="p", seed=seed), [torch.from_numpy(IMAGE)[None]], **options)


def submits(server):
    return [r for r in server.requests if r.method == "POST"
            and (r.header("x-fal-target-url") or r.path).endswith("/qwen-image-edit-plus")]  # direct, or proxied


def right(outcome) -> bool:
    return np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))


# ------------------------------------------------------------------ headers
def test_guard_headers_follow_fal_client():
    assert submit_headers(30, 900.0) == {"X-Fal-Queue-Priority": "normal", "X-Fal-Request-Timeout": "30.0"}
    assert submit_headers(None, 123.44)["X-Fal-Request-Timeout"] == "123.4"  # auto: what is left of the edit
    assert submit_headers(None, 0.3)["X-Fal-Request-Timeout"] == "2.0"  # never at fal's minimum or below
    assert "X-Fal-Request-Timeout" not in submit_headers(0, 900.0)  # 0: no deadline
    assert "X-Fal-Request-Timeout" not in submit_headers(None, None)  # an edit without a time limit
    assert submit_headers(0, None, "low", store_io=False) == {"X-Fal-Queue-Priority": "low", "X-Fal-Store-IO": "0"}
    for bad in (1, 0.5, -3, "soon", float("nan")):
        with pytest.raises(ConfigError, match="above 1"):
            check_start_timeout(bad)
    assert check_start_timeout("auto") is None and check_start_timeout("1.5") == 1.5
    with pytest.raises(ConfigError, match="normal, low"):
        submit_headers(0, None, "urgent")


def test_defaults_come_from_the_environment_or_config_file(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text("[queue]\nstart_timeout = 45\npriority = low\n")
    env = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(ini)}
    assert queue_defaults(env) == (45.0, "low")
    assert queue_defaults({**env, "FAL_START_TIMEOUT": "0", "FAL_QUEUE_PRIORITY": "normal"}) == (0.0, "normal")
    assert queue_defaults({"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "none")}) == (None, "normal")
    with pytest.raises(ConfigError, match=r"\[queue\] start_timeout"):
        ini.write_text("[queue]\nstart_timeout = 1\n")
        queue_defaults(env)


# ------------------------------------------------------------------ start deadline
@pytest.mark.parametrize("mode, sse", [("fal", True), ("fal", False), ("gateway_result_only", False),
                                       ("gateway_task", False), ("proxy", True)])
def test_a_queue_wait_past_start_timeout_ends_the_edit_and_the_job_never_runs(mode, sse, tmp_path, key_scan):
    srv = FakeFal(key=KEY, mode=mode, queue_time=30.0, max_lifetime=120).start()
    try:
        client = client_for(srv, tmp_path, mode, sse)
        began = time.monotonic()
        with pytest.raises(StartDeadlineError) as info:
            edit(client, start_timeout=1.5, timeout=20)
        took = time.monotonic() - began
        [request_id] = srv.jobs
        message = str(info.value)
        assert "fal dropped the job before it started; nothing ran" in message and request_id in message
        assert 1.5 <= took < 6, took  # ended by fal's answer, not by the edit's own 20 s
        assert srv.submissions == 1 and srv.runs == 0  # submitted once, never run
        [submit] = submits(srv)
        assert submit.header("X-Fal-Request-Timeout") == "1.5"
        assert Journal(tmp_path / "journal").entries() == []  # nothing to resume: it is over
        assert client.budget.spent() == 0.0  # nothing ran, nothing billed
        srv.queue_time = 0.0
        again = edit(client, start_timeout=1.5)  # not blocked: a plain new job
        assert right(again) and again.source == "job" and srv.submissions == 2 and srv.runs == 1
        key_scan(message)
        client.close()
    finally:
        srv.stop()
    assert srv.errors == []


def test_an_edit_that_timed_out_in_the_queue_leaves_a_job_fal_drops_and_the_rerun_submits_once(server, tmp_path):
    """The issue's case: the edit gives up in a long queue. Its job is dropped unrun at its start deadline
    instead of running unseen later; the same edit run again learns that from the journalled job and
    submits one new job. (A start deadline past the edit's timeout, so the timeout surely comes first.)"""
    server.queue_time = 30.0
    client = client_for(server, tmp_path)
    with pytest.raises(FalTimeoutError):
        edit(client, timeout=1.5, start_timeout=2.5)
    [first] = server.jobs.values()
    assert first.start_deadline == 2.5 and len(Journal(tmp_path / "journal").entries()) == 1
    time.sleep(max(0.0, first.started_at - time.monotonic()) + 0.1)  # its deadline passes: fal drops it
    server.queue_time = 0.0
    again = edit(client)
    assert right(again) and again.source == "job" and server.submissions == 2 and server.runs == 1
    assert not first.ran(time.monotonic()) and Journal(tmp_path / "journal").entries() == []


def test_the_auto_start_deadline_is_what_is_left_of_the_edit(server, tmp_path):
    client = client_for(server, tmp_path)
    assert right(edit(client, timeout=20))
    assert right(edit(client, seed=2, timeout=20, start_timeout=0))
    auto, none = submits(server)
    assert 15.0 < float(auto.header("X-Fal-Request-Timeout")) <= 20.0
    assert none.header("X-Fal-Request-Timeout") is None
    assert server.jobs[next(iter(server.jobs))].start_deadline == float(auto.header("X-Fal-Request-Timeout"))


def test_a_start_deadline_504_on_the_submit_itself_is_not_retried_and_costs_nothing(server, tmp_path):
    server.add_fault(Fault("submit", "status", 504, headers={"X-Fal-Request-Timeout-Type": "user"},
                           body={"detail": "Request timed out", "error_type": "startup_timeout"}))
    client = client_for(server, tmp_path)
    with pytest.raises(StartDeadlineError, match="nothing ran"):
        edit(client, start_timeout=5)
    assert len(submits(server)) == 1 and server.submissions == 0  # one POST, never resent
    assert Journal(tmp_path / "journal").entries() == [] and client.budget.spent() == 0.0
    assert right(edit(client, start_timeout=5)) and server.submissions == 1  # nothing blocks the next run


# ------------------------------------------------------------------ backup host
def backup_client(server, tmp_path, **kw):
    return client_for(server, tmp_path, FAL_QUEUE_BASE=server.unreachable_url, FAL_QUEUE_BACKUP_BASE=server.url, **kw)


def test_default_backup_is_fals_own_and_can_be_turned_off(tmp_path):
    env = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "none.ini"), "FAL_KEY": KEY}
    assert load_config(environ=env).queue_backup_base == "https://queue.falrun.com"
    assert load_config(environ={**env, "FAL_QUEUE_BACKUP_BASE": ""}).queue_backup_base == ""
    assert load_config(environ={**env, "FAL_QUEUE_BASE": "http://127.0.0.1:9"}).queue_backup_base == ""
    gateway = {**env, "FAL_GATEWAY_URL": "https://gw.example", "FAL_GATEWAY_TOKEN": KEY}
    assert load_config(environ=gateway).queue_backup_base == ""
    assert backup.default_backup("https://fal.run") == "https://falrun.com"
    assert backup.capped((10.0, 60.0), (1.0, 1.0)) == (5.0, 60.0) and backup.capped(None, (3.0, 9.0)) == (3.0, 9.0)
    config = load_config(environ=env)
    assert config.may_send_key_to("https://queue.falrun.com/x") and not config.may_send_key_to("https://falrun.com/x")


@pytest.mark.parametrize("sse", [True, False])
def test_with_the_primary_unreachable_the_whole_edit_runs_on_the_backup_with_one_submit(sse, server, tmp_path, caplog):
    server.run_time = 0.3
    client = backup_client(server, tmp_path, sse=sse)
    outcome = edit(client)
    assert right(outcome) and server.submissions == 1 and len(submits(server)) == 1
    assert outcome.handle.status_url.startswith(server.url)  # fal's URLs on the backup are followed there
    assert "trying fal's other queue host" in caplog.text
    # Result by request id builds the URLs on the primary: each call falls back too.
    fetched = client.result_by_id(outcome.handle.request_id)
    assert right(fetched) and server.submissions == 1


def test_cancel_on_the_backup(server, tmp_path):
    server.queue_time = 30.0
    client = backup_client(server, tmp_path)
    flag = threading.Event()
    threading.Timer(0.4, flag.set).start()
    with pytest.raises(CancelledError, match="CANCELLATION_REQUESTED"):
        edit(client, should_cancel=flag.is_set)
    assert [r for r, _ in server.cancel_requests] == list(server.jobs) and server.submissions == 1


def test_check_says_the_backup_answered(server, tmp_path):
    config = config_for(server, FAL_QUEUE_BASE=server.unreachable_url, FAL_QUEUE_BACKUP_BASE=server.url)
    lines = [c.line() for c in run_checks(config, EP)]
    [key] = [line for line in lines if " key: " in line]
    assert key.startswith("ok") and "the backup host" in key and server.url.split("//")[1] in key
    assert any("backup " + server.url in line for line in lines)


def test_a_submit_whose_connection_was_made_is_never_replayed_on_the_backup(tmp_path):
    with FakeFal(key=KEY, max_lifetime=60) as primary, FakeFal(key=KEY, max_lifetime=60) as spare:
        primary.add_fault(Fault("submit", "reset_after"))  # taken, then the connection breaks
        client = client_for(primary, tmp_path, FAL_QUEUE_BACKUP_BASE=spare.url)
        outcome = edit(client)  # its job found in fal's request history, never sent again
        assert outcome.handle.request_id in primary.jobs and primary.submissions == 1 and spare.requests == []


def test_without_a_backup_an_unreachable_queue_is_a_transport_error(server, tmp_path):
    client = client_for(server, tmp_path, FAL_QUEUE_BASE=server.unreachable_url)
    with pytest.raises(TransportError, match="network error"):
        edit(client)
    assert server.submissions == 0


# ------------------------------------------------------------------ cancel answers
def test_a_cancel_after_fal_finished_returns_the_paid_result(server, tmp_path):
    """A real race: the status poll hangs while the job completes, Cancel comes meanwhile, and
    fal's own answer to the cancel is ALREADY_COMPLETED."""
    server.run_time = 0.2
    server.add_fault(Fault("status", "hang", delay=3.0, skip=1, times=None))
    client = client_for(server, tmp_path, sse=False)
    flag = threading.Event()
    threading.Timer(0.8, flag.set).start()
    outcome = edit(client, should_cancel=flag.is_set)
    [request_id] = server.jobs
    assert right(outcome) and outcome.handle.request_id == request_id
    assert [r for r, _ in server.cancel_requests] == [request_id] and server.submissions == 1
    assert "Cancel came too late" in outcome.info()["note"] and outcome.cost_usd_estimate > 0
    assert Journal(tmp_path / "journal").entries() == []  # the result is in hand
    for fault in server.faults:
        fault.release()


def test_cancel_answered_not_found(server, tmp_path):
    server.queue_time = 30.0
    server.add_fault(Fault("cancel", "status", 404, body={"status": "NOT_FOUND"}))
    flag = threading.Event()
    threading.Timer(0.3, flag.set).start()
    with pytest.raises(CancelledError, match="NOT_FOUND: it knows no request") as info:
        edit(client_for(server, tmp_path), should_cancel=flag.is_set)
    assert info.value.fal_answer == "NOT_FOUND"


def test_the_three_cancel_answers_of_the_queue_client(server, tmp_path):
    queue = client_for(server, tmp_path).queue
    server.queue_time = 30.0
    queued = queue.submit(EP, {"prompt": "p", "image_urls": ["data:image/png;base64,iVBORw0KGgo="]})
    assert queue.cancel(queued) == "CANCELLATION_REQUESTED"
    assert queue.cancel(queued) == "ALREADY_COMPLETED"
    assert queue.cancel(queue.handle_for(EP, "0" * 32)) == "NOT_FOUND"
    server.cancel_offered = False
    assert queue.cancel(queued) == "NOT_OFFERED"  # a plain 404: a server without the route


# ------------------------------------------------------------------ priority
@pytest.mark.parametrize("mode", ["fal", "gateway", "proxy"])
def test_priority_reaches_fal(mode, tmp_path):
    with FakeFal(key=KEY, mode=mode, max_lifetime=60) as srv:
        assert right(edit(client_for(srv, tmp_path, mode), priority="low"))
        [job] = srv.jobs.values()
        assert job.priority == "low"


# ------------------------------------------------------------------ keep_on_fal
def test_keep_on_fal_off_sends_store_io_0_and_keeps_the_outputs_here(server, tmp_path):
    server.store_io_retention = server.store_io_retention_large = 0.5
    client = client_for(server, tmp_path, FAL_KEEP_ON_FAL="off")
    outcome = edit(client, seed=None)  # not cacheable: fal picks the seed
    [submit] = submits(server)
    assert submit.header("X-Fal-Store-IO") == "0" and not server.jobs[outcome.handle.request_id].store_io
    assert client.cache.get(kept_key(outcome.handle.request_id)) is not None
    time.sleep(0.8)  # past fal's retention for it
    fal_handle = client.queue.handle_for(EP, outcome.handle.request_id)
    with pytest.raises(JobUnknownError):
        client.queue.fetch_result(fal_handle)
    seen = len(server.requests)
    kept = client.result_by_id(outcome.handle.request_id)
    assert right(kept) and kept.source == "cache" and len(server.requests) == seen  # from this machine
    assert server.submissions == 1
    # Another machine (no local copy) is told why fal has nothing.
    with pytest.raises(JobUnknownError, match="X-Fal-Store-IO: 0") as info:
        client_for(server, tmp_path / "elsewhere").result_by_id(outcome.handle.request_id)
    assert "1 hour" in str(info.value) and outcome.handle.request_id in str(info.value)


def test_keep_on_fal_on_sends_nothing_and_keeps_nothing_extra(server, tmp_path):
    client = client_for(server, tmp_path)
    outcome = edit(client, seed=None)
    [submit] = submits(server)
    assert submit.header("X-Fal-Store-IO") is None and client.cache.get(kept_key(outcome.handle.request_id)) is None


def test_keep_on_fal_setting(tmp_path):
    env = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "c.ini"), "FAL_KEY": KEY}
    assert load_config(environ=env).store_io
    (tmp_path / "c.ini").write_text("[connection]\nkeep_on_fal = off\n")
    assert not load_config(environ=env).store_io
    assert load_config(keep_on_fal="on", environ=env).store_io
    with pytest.raises(ConfigError, match="keep_on_fal must be on or off"):
        load_config(keep_on_fal="maybe", environ=env)


def test_the_connect_timeout_to_either_queue_host_is_capped_at_5_s(server, tmp_path, monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.wire.transport import Transport
    transport = backup_client(server, tmp_path).transport
    seen, send = [], Transport._send_one

    def spy(self, method, url, waiter, request_id, submit, session, kwargs):
        seen.append((url.split("/")[2], kwargs.get("timeout")))
        return send(self, method, url, waiter, request_id, submit, session, kwargs)

    monkeypatch.setattr(Transport, "_send_one", spy)
    for url in (server.unreachable_url, server.cdn_url):
        transport.request("GET", url + "/files/none", what="a GET", ok=(404,), timeout=(30.0, 60.0)).close()
    primary, backup_host, cdn = (url.split("/")[2] for url in (server.unreachable_url, server.url, server.cdn_url))
    assert seen == [(primary, (5.0, 60.0)), (backup_host, (5.0, 60.0)), (cdn, (30.0, 60.0))]
