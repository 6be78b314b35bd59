"""The fault matrix: every case ends in the right image or a clear error naming the request id,
with exactly one submission per edit (none when fal never took the request).

The client is the one ComfyUI uses (job journal and result cache on disk), and every error case
is then run again with the fault gone, as a user would: the column "again" says what that costs.
"resumed": the journalled job's result, no new submission. "new": the earlier job is over and
its outputs unusable (failed, cancelled, expired), so one new job. "blocked": fal may have taken
the first submit, so the same edit is refused until the user asks for a new job.

Every case runs on each shape of server it applies to (FakeFal's modes): fal itself, a full
gateway, gateways with only submit + result (fal's 400 while running, or task-style 202 + status
JSON), and fal's server proxy. A fault on a route a shape does not have (the status stream of a
status-less gateway, storage behind a gateway that takes data URIs) is not a case there.

fal's own guards are cases too: a job dropped at its start deadline (it never runs: ``runs`` 0),
the backup host with ``queue.fal.run``'s stand-in unreachable (fal direct only: the others are
hosts of their own), and cancel's three answers ("paid": the job had completed, its result is
returned with a note).

Run with ``-s`` to print the matrix as a table.
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (AuthError, CancelledError, DownloadError, FalError,
                                                    HTTPStatusError, ImageDecodeError, JobFailedError,
                                                    StartDeadlineError, SubmitUncertainError, ValidationError)
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.queue.client import WaitSettings

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = gradient(20, 28, seed=11)
RETRY_AFTER = {"Retry-After": "0.1"}
NGINX_PAGE = b"<html><head><title>%s</title></head><body><center><h1>...</h1></center><hr><center>nginx</center></body></html>"
ROWS: list[tuple[str, str, int, str]] = []
# What a second run needs once the fault is gone: fal healthy again, jobs quick.
HEALTHY = {"fail_job": None, "nsfw": False, "queue_time": 0.0, "run_time": 0.05, "storage_v3": True}


SHAPES = ("fal", "gateway", "gateway_result_only", "gateway_task", "proxy")
STATUS_ROUTES, STORAGE_ROUTES = {"status", "stream"}, {"token", "upload", "initiate", "put_upload"}


def case(name, faults=(), expect="image", submissions=1, server=None, sse=True, cancel_after=None, again=None,
         options=None, runs=None, backup=False):
    """``options``: the edit's own (start_timeout…); ``runs``: how many jobs a runner must have started;
    ``backup``: queue.fal.run's stand-in is unreachable and the fake answers as its backup host."""
    guards = {"options": options or {}, "runs": runs, "backup": backup}
    return (name, (faults, expect, submissions, {**(server or {}), "guards": guards}, sse, cancel_after, again))


def applies(shape: str, faults, settings) -> bool:
    if settings["guards"]["backup"] and shape != "fal":
        return False  # only fal direct has a backup host
    routes = {fault.route for fault in faults}
    if shape in ("gateway_result_only", "gateway_task") and routes & STATUS_ROUTES:
        return False
    if shape.startswith("gateway") and routes & STORAGE_ROUTES:
        return False  # inputs travel as data URIs
    return not (shape == "proxy" and routes & {"token", "upload"})  # the proxy allows initiate + PUT only


# A reset before a single reply byte: no request id reached us, so the error can only say that a
# job may exist (and was not resent). fal offers no idempotency key to find it again ...
ID_UNKNOWABLE = {"reset on submit after acceptance"}
# ... but fal direct can read fal's request history (the Platform API, with the inputs): the job is
# found there by what was sent and waited on. A gateway or the server proxy cannot reach that API.
FOUND_IN_FALS_HISTORY = {"reset on submit after acceptance"}


CASES = [
    case("429 Retry-After on submit", [Fault("submit", "status", 429, headers=RETRY_AFTER)]),
    case("429 Retry-After on status", [Fault("status", "status", 429, headers=RETRY_AFTER)],
         server={"run_time": 0.2}, sse=False),
    *[case(f"{code} on {route}", [Fault(route, "status", code, times=2)], server={"run_time": 0.2}, sse=False)
      for route in ("status", "result", "token", "upload", "files") for code in (502, 503, 504)],
    *[case(f"{code} on {route}", [Fault(route, "status", code, times=2)], server={"run_time": 0.3, "storage_v3": False})
      for route in ("initiate", "put_upload") for code in (502, 503)],
    case("503 on the status stream", [Fault("stream", "status", 503, times=2)], server={"run_time": 0.3}),
    case("503 on submit (ingress)", [Fault("submit", "status", 503, times=2)]),
    # A front server's page (nginx), no error in anyone's words: whether the submit got through is unknown.
    # (A gateway's 5xx in its own words is a refusal: tests/test_gateway_words.py.)
    case("502 on submit", [Fault("submit", "status", 502, body=NGINX_PAGE % b"502 Bad Gateway")],
         (SubmitUncertainError, "HTTP 502"), 0, again="blocked"),
    case("504 on submit", [Fault("submit", "status", 504, body=NGINX_PAGE % b"504 Gateway Time-out")],
         (SubmitUncertainError, "HTTP 504"), 0, again="blocked"),
    case("reset on submit before acceptance", [Fault("submit", "reset")], (SubmitUncertainError, "not resent"), 0,
         again="blocked"),
    case("reset on submit after acceptance", [Fault("submit", "reset_after")],
         (SubmitUncertainError, "not resent"), 1, again="blocked"),
    case("malformed JSON on submit", [Fault("submit", "malformed")], (SubmitUncertainError, "unreadable"), 0,
         again="blocked"),
    case("submit reply cut mid-body", [Fault("submit", "drop")]),
    case("reset mid-download", [Fault("files", "drop")]),
    case("reset on every download", [Fault("files", "reset", times=None)], (DownloadError, "Download"),
         again="resumed"),
    case("SSE stream stalls", [Fault("stream", "stall", delay=30, times=None)], server={"run_time": 0.5}),
    case("SSE stream drops", [Fault("stream", "drop", times=None)], server={"run_time": 0.5}),
    case("SSE stream answers JSON", [Fault("stream", "malformed", times=None)], server={"run_time": 0.3}),
    case("status flaps", [Fault("status", "flap", times=3)], server={"run_time": 0.4}, sse=False),
    case("malformed JSON on status", [Fault("status", "malformed", times=2)], server={"run_time": 0.3}, sse=False),
    case("malformed JSON on result", [Fault("result", "malformed", times=None)], (FalError, "malformed JSON"),
         again="resumed"),
    case("result outage (503 after every retry)", [Fault("result", "status", 503, times=None)],
         (HTTPStatusError, "HTTP 503"), again="resumed"),
    case("401", server={"key": "another-key"}, expect=(AuthError, "401"), submissions=0),
    case("422", [Fault("submit", "status", 422, body={"detail": [{"loc": ["body", "image_size"], "msg": "bad size",
                                                                   "type": "value_error"}]})],
         (ValidationError, "image_size: bad size"), 0),
    case("COMPLETED with an error", server={"fail_job": "CUDA out of memory"},
         expect=(JobFailedError, "CUDA out of memory"), again="new"),
    case("result URL 404", [Fault("result", "status", 404, times=None)], (HTTPStatusError, "HTTP 404"),
         again="resumed"),
    case("output URL expired (410)", [Fault("files", "status", 410, times=None)], (DownloadError, "expired"),
         again="new"),
    case("output URL 404", [Fault("files", "status", 404, times=None)], (DownloadError, "expired"), again="new"),
    case("non-image body", [Fault("files", "not_image", times=None)], (ImageDecodeError, "not a readable"),
         again="new"),
    case("decompression bomb", [Fault("files", "bomb", times=None)], (ImageDecodeError, "decompression bomb"),
         again="new"),
    case("NSFW-flagged output", server={"nsfw": True}, expect="nsfw"),
    case("Cancel while queued", server={"queue_time": 30.0}, expect=(CancelledError, "CANCELLATION_REQUESTED"),
         cancel_after=0.3, again="new"),
    case("Cancel while running", server={"run_time": 30.0}, expect=(CancelledError, "CANCELLATION_REQUESTED"),
         cancel_after=0.3, again="new"),
    case("Cancel while running, fal already done", [Fault("cancel", "status", 400, times=None,
                                                           body={"status": "ALREADY_COMPLETED"})],
         server={"run_time": 1.0}, expect="paid", cancel_after=0.3),
    case("Cancel answered NOT_FOUND", [Fault("cancel", "status", 404, body={"status": "NOT_FOUND"})],
         server={"queue_time": 30.0}, expect=(CancelledError, "NOT_FOUND"), cancel_after=0.3),
    case("start deadline passes in the queue", server={"queue_time": 30.0}, options={"start_timeout": 1.5},
         expect=(StartDeadlineError, "nothing ran"), runs=0, again="new"),
    case("start deadline 504 on submit", [Fault("submit", "status", 504, headers={"X-Fal-Request-Timeout-Type": "user"})],
         options={"start_timeout": 5.0}, expect=(StartDeadlineError, "nothing ran"), submissions=0, runs=0, again="new"),
    case("queue.fal.run unreachable: the backup host", server={"run_time": 0.2}, backup=True, runs=1),
    case("queue.fal.run unreachable, polling", server={"run_time": 0.2}, sse=False, backup=True, runs=1),
    case("queue.fal.run unreachable, Cancel", server={"queue_time": 30.0}, backup=True, runs=0,
         expect=(CancelledError, "CANCELLATION_REQUESTED"), cancel_after=0.3, again="new"),
]


@pytest.fixture(scope="module", autouse=True)
def print_matrix():
    yield
    if ROWS:
        print("\n| case | outcome | submissions | run again |\n|---|---|---|---|")
        for name, outcome, count, again in ROWS:
            print(f"| {name} | {outcome} | {count} | {again} |")


MATRIX = [pytest.param(shape, name, *params, id=f"{shape}: {name}")
          for shape in SHAPES for name, params in CASES if applies(shape, params[0], params[3])]


@pytest.mark.parametrize("shape, name, faults, expect, submissions, settings, sse, cancel_after, again", MATRIX)
def test_fault_case(shape, name, faults, expect, submissions, settings, sse, cancel_after, again, key_scan,
                    tmp_path):
    server = FakeFal(key=KEY, mode=shape, max_lifetime=120).start()
    faults = [dataclasses.replace(fault) for fault in faults]  # each run counts its own firings
    settings = dict(settings)
    guards = settings.pop("guards")
    if shape == "fal" and name in FOUND_IN_FALS_HISTORY:
        expect, again = "image", None
    try:
        for setting, value in settings.items():
            setattr(server, setting, value)  # "key": fal (behind any gateway or proxy) wants another key
        for fault in faults:
            server.add_fault(fault)
        hosts = {"FAL_QUEUE_BASE": server.unreachable_url, "FAL_QUEUE_BACKUP_BASE": server.url} \
            if guards["backup"] else {}
        client = persistent_client(config_for(server, shape, **hosts), tmp_path, retry=FAST_RETRY,
                                   wait_settings=WaitSettings(use_sse=sse, stream_idle_check=0.3))
        cancel = threading.Event()
        if cancel_after:
            threading.Timer(cancel_after, cancel.set).start()
        edit = QwenEditRequest(prompt="p", seed=1, image_size=None)
        run = lambda **kw: client.edit(edit, [torch.from_numpy(IMAGE)[None]], timeout=20, **kw)  # noqa: E731
        if expect in ("image", "nsfw", "paid"):
            outcome = run(should_cancel=cancel.is_set, **guards["options"])
            if expect in ("image", "paid"):
                assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))
                described = "correct image"
            if expect == "paid":  # Cancel came after fal had finished: the paid result, said so
                assert [r for r, _ in server.cancel_requests] == list(server.jobs)
                assert "Cancel came too late" in outcome.info()["note"]
                described = "correct image (paid for), the late cancel noted"
            elif expect == "nsfw":
                assert outcome.images.max() == 0.0 and "safety checker flagged" in outcome.info()["warning"]
                described = "black image, flagged in info + log"
        else:
            error_type, text = expect
            with pytest.raises(error_type) as info:
                run(should_cancel=cancel.is_set, **guards["options"])
            message = str(info.value)
            assert text in message
            if shape.startswith("gateway"):  # a gateway's user has no fal dashboard: the gateway's host is named
                assert "fal dashboard" not in message
            if server.jobs and name not in ID_UNKNOWABLE:  # a job exists: say which
                [request_id] = list(server.jobs)
                assert request_id in message
            if cancel_after:
                assert [r for r, _ in server.cancel_requests] == list(server.jobs)
            described = f"{error_type.__name__}: {message.splitlines()[0][:90]}"
            key_scan(message)
        assert server.submissions == submissions
        if guards["runs"] is not None:
            assert server.runs == guards["runs"]
        ROWS.append((f"{shape}: {name}", described, server.submissions, run_again(server, run, again)))
        client.close()
    finally:
        server.stop()


def run_again(server: FakeFal, run, again: str | None) -> str:
    """The same edit once more with the fault gone; returns what it cost, for the table."""
    if again is None:
        return ""
    for fault in server.faults:
        fault.times = 0  # spent: the fake stops applying it
    for name, value in HEALTHY.items():
        setattr(server, name, value)
    before = server.submissions
    if again == "blocked":
        with pytest.raises(SubmitUncertainError, match="force_new_job"):
            run()
        assert server.submissions == before
        outcome = run(fresh=True)  # what force_new_job does once the user has looked
        assert outcome.source == "job" and server.submissions == before + 1
        return "blocked until force_new_job; then 1 new job"
    outcome = run()
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))
    expected = {"resumed": ("resumed", before), "new": ("job", before + 1)}[again]
    assert (outcome.source, server.submissions) == expected
    return "correct image, no new job" if again == "resumed" else "correct image, 1 new job"
