"""Reseller gateways as their users meet them (issue 27): a stand-in of the relay software most of them
run (new-api / one-api, fakefal/routes/relay.py) in front of the fake fal, over real HTTP.

Each refusal ends in the gateway's own words, readable, with the right verdict and advice pointing at
the gateway (never at fal's dashboard); an error in the gateway's words naming no job is a refusal:
no job, nothing journalled, cached or counted, and no second POST. Only an answer in nobody's words (a
front server's page, a cut connection) may have reached fal, and that edit is not submitted again.
The balance calls: read, cached a minute, an unlimited token, never asked by an edit."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault, Relay
from comfyui_fal_qwen_edit.nodes.fal.base.errors import (AuthError, BalanceError, CancelledError, ContentRefusedError,
                                                         FalError, HTTPStatusError, NoChannelError, RateLimitError,
                                                         SubmitUncertainError)
from comfyui_fal_qwen_edit.nodes.fal.base.server_words import (BAD_TOKEN, NO_BALANCE, NO_CHANNEL, REFUSED, parse,
                                                               verdict, words_of)
from comfyui_fal_qwen_edit.nodes.fal.cli.check import run_checks
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.platform import balance as balance_module
from comfyui_fal_qwen_edit.nodes.fal.platform.balance import TOKEN_USAGE
from comfyui_fal_qwen_edit.nodes.fal.runner.batch import run_batch
from comfyui_fal_qwen_edit.nodes.fal.runner.manifest import folder_lines
from comfyui_fal_qwen_edit.nodes.fal.runner.plan import BatchOverBalanceError
from comfyui_fal_qwen_edit.nodes.fal.runner.scheduler import RunSettings
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = torch.from_numpy(gradient(16, 16, seed=4))[None]
ENDPOINT = "fal-ai/qwen-image-edit-plus"
SUBMIT = f"Submit to {ENDPOINT}"
ONE_EDIT = 0.03
RELAY_ID = re.compile(r"2026\d{12}relay")  # the relay's own log id, "(request id: …)": never a fal request id
REFUSED_HEAD = SUBMIT + ": the gateway {host} refused the edit: nothing was queued. It answered "
TOP_UP = ("Your balance (or this token's quota) at {host} is used up: top it up in the gateway's console, or raise "
          "the token's quota there, then run the edit again.")
NOT_ALLOWED = ("This token may not be used for this model or from this machine's address: allow it in the token's "
               "settings in the gateway's console at {host} (its models, its IP range), or use a token that may.")


@pytest.fixture
def gateway():
    balance_module.forget_answers()
    server = FakeFal(key=KEY, mode="gateway", max_lifetime=120).start()
    server.billable_units = False  # gateways pass no billed units: the ledger keeps the estimates
    yield server
    server.stop()
    assert server.errors == []


def client(server, state, cap=1.0):
    return persistent_client(config_for(server, "gateway"), state, retry=FAST_RETRY, budget_usd=cap)


def edit(c, seed=1, **options):
    return c.edit(QwenEditRequest(prompt=options.pop("prompt", "p"), seed=seed), [IMAGE],
                  timeout=options.pop("timeout", 20), **options)


def host(server) -> str:
    return server.url.split("//", 1)[1]


def posts(server) -> int:
    return sum(r.method == "POST" and r.path == f"/{ENDPOINT}" for r in server.requests)


# (relay settings, error type, verdict, the message after "It answered ", POSTs the client made)
REFUSALS = {
    "balance empty (new-api 403)": (
        {"quota_usd": 0.0}, BalanceError, NO_BALANCE,
        "HTTP 403 (insufficient_user_quota): 用户余额不足,需要充值 (request id: <relay>). " + TOP_UP, 1),
    "balance empty at HTTP 200 (code/msg)": (
        {"quota_usd": 0.0, "style": "code-msg"}, BalanceError, NO_BALANCE,
        "HTTP 200 (code 402): 余额不足，请充值后再试. " + TOP_UP, 1),
    "balance empty (seermartech status_code)": (
        {"quota_usd": 0.0, "style": "status-code"}, BalanceError, NO_BALANCE,
        "HTTP 402 (code 50002): Insufficient balance. " + TOP_UP, 1),
    "token quota used up (one-api 401)": (
        {"quota_usd": 0.0, "style": "one-api"}, BalanceError, NO_BALANCE,
        "HTTP 401: 该令牌额度已用尽 (request id: <relay>). " + TOP_UP, 1),
    "model not allowed for the token": (
        {"models": ("fal-ai/flux/dev",)}, AuthError, "not_allowed",
        f"HTTP 403: 该令牌无权使用模型：{ENDPOINT} (request id: <relay>). " + NOT_ALLOWED, 1),
    "token bound to an IP range (one-api)": (
        {"subnet": "10.0.0.0/8", "style": "one-api"}, AuthError, "not_allowed",
        "HTTP 403: 该令牌只能在指定网段使用：10.0.0.0/8，当前 ip：127.0.0.1 (request id: <relay>). " + NOT_ALLOWED, 1),
    "IP not allowed (new-api access_denied)": (
        {"subnet": "10.0.0.0/8"}, AuthError, "not_allowed",
        "HTTP 403 (access_denied): 您的 IP 不在令牌允许访问的列表中 (request id: <relay>). " + NOT_ALLOWED, 1),
    "no channel (new-api 503, not retried)": (
        {"channels": ()}, NoChannelError, NO_CHANNEL,
        f"HTTP 503 (model_not_found): 分组 default 下模型 {ENDPOINT} 无可用渠道（distributor） (request id: <relay>). "
        "{host} has no working upstream channel for this model right now (the gateway's side): try again later, "
        "or ask {host}'s support; check that it offers this model.", 1),
    "no channel, \\u-escaped body (one-api)": (
        {"channels": (), "style": "one-api", "escape_unicode": True}, NoChannelError, NO_CHANNEL,
        f"HTTP 503: 当前分组 default 下对于模型 {ENDPOINT} 无可用渠道 (request id: <relay>). "
        "{host} has no working upstream channel for this model right now (the gateway's side): try again later, "
        "or ask {host}'s support; check that it offers this model.", 1),
    "rate limited (429, retried: each refused)": (
        {"rate_limit": 0}, RateLimitError, "rate_limited",
        "HTTP 429: 您已达到请求数限制：1分钟内最多请求0次 (request id: <relay>). {host} is rate limiting this token: "
        "wait a little, or run fewer edits at once.", FAST_RETRY.attempts),
    "sensitive words (content refused)": (
        {"sensitive_words": ("forbidden",)}, ContentRefusedError, "content_refused",
        "HTTP 400 (sensitive_words_detected): sensitive words detected (request id: <relay>). The prompt or the "
        "images were refused for their content: change them and run again.", 1),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_in_the_gateways_own_words_and_nothing_is_kept(case, gateway, tmp_path, key_scan):
    settings, error_type, name, said, expected_posts = REFUSALS[case]
    gateway.relay = Relay(**settings)
    with client(gateway, tmp_path) as c:
        with pytest.raises(error_type) as info:
            edit(c, prompt="a forbidden prompt" if "sensitive" in case else "p")
        error = info.value
        message = RELAY_ID.sub("<relay>", str(error))
        assert message == (REFUSED_HEAD + said).format(host=host(gateway))
        assert error.verdict == name and error.refused and error.request_id is None  # the relay's log id is not fal's
        assert "\\u" not in message and "fal dashboard" not in message
        # Refused: no job on fal, one POST (no error path submits twice), nothing journalled, cached or counted.
        assert gateway.submissions == 0 and posts(gateway) == expected_posts == gateway.relay.submits
        assert Journal(tmp_path / "journal").entries() == [] and c.budget.spent() == 0
        assert c.history.jobs() == [] and not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]
        key_scan(error)
        # Once the gateway lets it through, the same edit is submitted once: nothing of the refusal is resumed.
        gateway.relay = Relay()
        outcome = edit(c, prompt="a forbidden prompt" if "sensitive" in case else "p")
        assert outcome.source == "job" and gateway.submissions == 1
        assert to_u8(outcome.images[0]).tolist() == (255 - to_u8(IMAGE[0].numpy())).tolist()
        assert c.budget.spent() == pytest.approx(ONE_EDIT)


def test_a_wrong_token_is_a_refusal_of_the_key_not_of_the_balance(gateway, tmp_path):
    gateway.relay = Relay()
    config = config_for(gateway, "gateway", FAL_GATEWAY_TOKEN="not-the-token-0123")
    with persistent_client(config, tmp_path, retry=FAST_RETRY) as c, pytest.raises(AuthError) as info:
        edit(c)
    assert info.value.verdict == BAD_TOKEN and gateway.submissions == 0 and posts(gateway) == 1
    assert RELAY_ID.sub("<relay>", str(info.value)) == (
        f"{SUBMIT}: the gateway {host(gateway)} refused the edit: nothing was queued. It answered HTTP 401: 无效的令牌 "
        f"(request id: <relay>). It refused the key (from environment variable FAL_GATEWAY_TOKEN): copy a valid token from the "
        f"gateway's console at {host(gateway)} into FAL_GATEWAY_TOKEN, config.ini's [gateway] token or the fal "
        "panel's Keys (a fal key is not a gateway token).")
    assert "not-the-token-0123" not in str(info.value)


@pytest.mark.parametrize("after_submit", [False, True])
def test_a_front_servers_page_may_have_reached_fal_so_the_edit_is_not_sent_again(after_submit, gateway, tmp_path):
    """nginx's 502 page is nobody's verdict on the edit: before the relay (nothing reached fal) or after
    it forwarded the submit (fal took the job, the answer was lost), the client cannot tell: it says so,
    points at the gateway's usage log, keeps the journal entry and the ledger entry, and submits nothing
    more until the user asks."""
    gateway.relay = Relay(front_down=502, front_down_after_submit=after_submit)
    with client(gateway, tmp_path) as c:
        with pytest.raises(SubmitUncertainError) as info:
            edit(c)
        message = str(info.value)
        assert message.startswith(f"{SUBMIT}: the gateway {host(gateway)} answered HTTP 502: 502 Bad Gateway (a page "
                                   "of its front server), with no error of its own. The job may have been accepted "
                                   f"and billed: check the gateway's usage log at {host(gateway)}.")
        assert "fal dashboard" not in message and "force_new_job" in message
        assert gateway.submissions == int(after_submit) and posts(gateway) == 1
        assert len(Journal(tmp_path / "journal").entries()) == 1 and c.budget.spent() == pytest.approx(ONE_EDIT)
        gateway.relay.front_down = None
        with pytest.raises(SubmitUncertainError, match="force_new_job"):
            edit(c)  # the same edit again: still unsettled, not sent
        assert posts(gateway) == 1 and gateway.submissions == int(after_submit)


def test_an_explicit_5xx_in_the_gateways_words_is_a_refusal_but_fals_own_direct_answer_is_not(tmp_path):
    body = {"error": {"message": "do request failed: upstream EOF", "type": "new_api_error", "code": "do_request_failed"}}
    for mode in ("gateway", "fal"):
        with FakeFal(key=KEY, mode=mode, max_lifetime=60).start() as server:
            server.add_fault(Fault("submit", "status", 500, body=body))
            config = config_for(server, mode)
            with persistent_client(config, tmp_path / mode, retry=FAST_RETRY) as c:
                with pytest.raises(FalError) as info:
                    edit(c)
                journal = Journal(tmp_path / mode / "journal").entries()
            assert posts(server) == 1 and server.submissions == 0
            if mode == "gateway":  # the gateway's own error naming no job: refused, nothing kept
                assert type(info.value) is HTTPStatusError and info.value.refused and journal == []
                assert "refused the edit: nothing was queued. It answered HTTP 500 (do_request_failed): do request " \
                       "failed: upstream EOF. Its console or usage log at" in str(info.value)
            else:  # fal direct keeps today's handling: a 5xx may have been taken, looked up, kept
                assert isinstance(info.value, SubmitUncertainError) and len(journal) == 1


@pytest.mark.parametrize("raw, status, message, code, explicit, expected", [
    (b'{"error":{"message":"\\u7528\\u6237\\u4f59\\u989d\\u4e0d\\u8db3","type":"new_api_error","code":"insufficient_user_quota"}}',
     403, "用户余额不足", "insufficient_user_quota", True, NO_BALANCE),
    ('{"type":"error","error":{"type":"new_api_error","message":"无效的令牌 (request id: 1)"},"request_id":"1"}'.encode(),
     401, "无效的令牌 (request id: 1)", "", True, BAD_TOKEN),
    ('{"success": false, "message": "额度不足"}'.encode(), 200, "额度不足", "", True, NO_BALANCE),
    (b'{"error": "API key invalid", "code": "api_key_invalid"}', 401, "API key invalid", "api_key_invalid", True,
     BAD_TOKEN),
    (b'{"detail": "Internal Server Error"}', 500, "Internal Server Error", "", True, REFUSED),
    ("当前分组 vip 下对于模型 x 无可用渠道".encode(), 503, "当前分组 vip 下对于模型 x 无可用渠道", "", True, NO_CHANNEL),
    (b"upstream connect error or disconnect/reset before headers", 503,
     "upstream connect error or disconnect/reset before headers", "", True, None),  # a proxy's words: unknown
    (b"<html><head><title>504 Gateway Time-out</title></head><body>nginx</body></html>", 504,
     "504 Gateway Time-out", "", False, None),
    (b"", 502, "", "", False, None),
])
def test_the_shapes_read_as_a_person_reads_them(raw, status, message, code, explicit, expected):
    words = words_of(*parse(raw))
    assert (words.message, words.code, words.explicit) == (message, code, explicit)
    assert verdict(status, words) == expected


def test_a_job_cancelled_while_queued_leaves_the_ledger_and_a_running_one_stays(tmp_path):
    """Tried as a new user would: Cancel at "in queue (position 1)" ran nothing, so its $0.03 must not
    stay in the 24 h spend and block the next edit under a $0.04 cap; one cancelled while running may be
    billed and stays counted."""
    with FakeFal(key=KEY, max_lifetime=120, queue_time=30.0, queue_positions=1).start() as fal:
        fal.billable_units = False
        with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY, budget_usd=0.04) as c:
            cancel = threading.Event()
            threading.Timer(0.5, cancel.set).start()
            with pytest.raises(CancelledError) as info:
                edit(c, should_cancel=cancel.is_set)
            assert info.value.never_started and "still in fal's queue" in str(info.value)
            assert "nothing ran and fal bills nothing." in str(info.value)
            assert c.budget.spent() == 0 and fal.runs == 0
            fal.queue_time = 0.0
            assert edit(c, seed=2).source == "job"  # under the $0.04 cap: the cancelled one is not counted
            assert c.budget.spent() == pytest.approx(ONE_EDIT)
            fal.run_time = 30.0
            cancel = threading.Event()
            threading.Timer(0.5, cancel.set).start()
            with pytest.raises(CancelledError) as running:
                c.budget.cap_usd = 1.0
                edit(c, seed=3, should_cancel=cancel.is_set)
            assert not running.value.never_started and c.budget.spent() == pytest.approx(2 * ONE_EDIT)


def test_a_gateway_job_cancelled_while_queued_is_released_and_the_submit_charge_is_said(gateway, tmp_path):
    gateway.relay = Relay()
    gateway.queue_time = 30.0
    with client(gateway, tmp_path) as c:
        cancel = threading.Event()
        threading.Timer(0.5, cancel.set).start()
        with pytest.raises(CancelledError) as info:
            edit(c, should_cancel=cancel.is_set)
        assert info.value.never_started and c.budget.spent() == 0
        assert str(info.value).endswith(f"nothing ran and fal bills nothing (the gateway may have billed the submit "
                                        f"regardless: the gateway's usage log at {host(gateway)} says). (request id "
                                        f"{info.value.request_id})")
        assert gateway.relay.used_usd == pytest.approx(ONE_EDIT)  # it did: the relay pre-consumed it


def test_a_job_cancelled_on_fals_side_while_queued_is_released_too(tmp_path):
    """Cancelled from elsewhere (the fal panel, another machine) while this edit waits on it in the queue."""
    with FakeFal(key=KEY, max_lifetime=120, queue_time=30.0).start() as fal:
        with persistent_client(config_for(fal), tmp_path, retry=FAST_RETRY, budget_usd=1.0) as c:
            def cancel_elsewhere():
                while not fal.jobs:
                    time.sleep(0.05)
                time.sleep(0.3)
                [request_id] = list(fal.jobs)
                c.queue.cancel(c.queue.handle_for(ENDPOINT, request_id))
            threading.Thread(target=cancel_elsewhere, daemon=True).start()
            with pytest.raises(CancelledError) as info:
                edit(c)
            assert not info.value.by_user and info.value.never_started and c.budget.spent() == 0


# -- the balance ------------------------------------------------------------------------------------------

def test_the_balance_is_read_cached_a_minute_and_never_asked_by_an_edit(gateway, tmp_path):
    gateway.relay = Relay(quota_usd=10.0, used_usd=2.5)
    with client(gateway, tmp_path) as c:
        edit(c)
        assert gateway.relay.balance_asked == []  # an edit never asks
        found = c.balance.current()
        assert (found.usd, found.unlimited, found.known) == (7.47, False, True)  # 10 - 2.50 - this edit's 0.03
        assert found.text() == f"$7.47 left at {host(gateway)}"
        assert c.balance.current() is found and gateway.relay.balance_asked == ["subscription", "usage"]
        assert c.balance.current(max_age=0).usd == 7.47 and len(gateway.relay.balance_asked) == 4


def test_an_unlimited_token_reads_as_unlimited(gateway, tmp_path):
    gateway.relay = Relay(unlimited=True)
    with client(gateway, tmp_path) as c:
        found = c.balance.current()
    assert found.unlimited and found.usd is None and found.text() == f"unlimited token at {host(gateway)}"
    assert gateway.relay.balance_asked == ["subscription"]  # 1e8: no need to ask the usage


@pytest.mark.parametrize("calls, expected", [
    (("token_usage",), "$4.00 left at {host} (raw quota at new-api's default 500,000 a dollar)"),
    ((), "not offered by this gateway ({host})"),
])
def test_new_apis_token_usage_call_and_a_gateway_without_any(calls, expected, gateway, tmp_path):
    gateway.relay = Relay(quota_usd=5.0, used_usd=1.0, balance_calls=calls)
    with client(gateway, tmp_path) as c:
        found = c.balance.current()
    assert found.text() == expected.format(host=host(gateway))
    assert found.source == (TOKEN_USAGE if calls else "")


def test_fal_direct_has_no_gateway_balance(fake_fal, tmp_path):
    with persistent_client(config_for(fake_fal), tmp_path) as c:
        assert c.balance.current() is None


def test_check_shows_the_balance_and_fails_on_an_empty_one(gateway, tmp_path):
    gateway.relay = Relay(quota_usd=3.0, used_usd=0.5)
    checks = {check.name: check for check in run_checks(config_for(gateway, "gateway"), ENDPOINT)}
    assert checks["balance"].ok is True and checks["balance"].text == f"$2.50 left at {host(gateway)}"
    balance_module.forget_answers()
    gateway.relay.used_usd = 3.0
    checks = {check.name: check for check in run_checks(config_for(gateway, "gateway"), ENDPOINT)}
    assert checks["balance"].line() == f"FAIL balance: $0.00 left at {host(gateway)}: top it up in the gateway's console"
    assert gateway.submissions == 0 and gateway.relay.submits == 0


def photos(folder, count):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(to_u8(gradient(16, 20, seed=i))).save(folder / f"p{i}.png")
    return folder


def run(server, state, folder, out, concurrency=1):
    with persistent_client(config_for(server, "gateway"), state, retry=FAST_RETRY) as c:
        stream = io.StringIO()
        summary = run_batch(c, folder_lines(folder, []), QwenEditRequest(prompt="invert"), spec_for("qwen-edit-plus"),
                            out, RunSettings(concurrency=concurrency), should_cancel=lambda: False, stream=stream)
        return summary, stream.getvalue()


def test_a_batch_over_the_gateways_balance_is_refused_up_front(gateway, tmp_path):
    gateway.relay = Relay(quota_usd=0.08)
    folder = photos(tmp_path / "in", 3)
    with pytest.raises(BatchOverBalanceError) as info:
        run(gateway, tmp_path / "state", folder, tmp_path / "out")
    assert str(info.value) == (
        f"Gateway balance: the 3 new jobs of this batch cost about $0.09 at fal's prices, and {host(gateway)} says "
        f"$0.08 is left: only the first 2 of them fit. Nothing was uploaded or submitted. Top up the balance in the "
        f"gateway's console at {host(gateway)} (its prices may differ from fal's; its usage log says what an edit "
        "costs there).")
    assert gateway.relay.submits == 0 and not [r for r in gateway.requests if r.method == "POST"]
    gateway.relay.quota_usd = 1.0
    balance_module.forget_answers()
    summary, shown = run(gateway, tmp_path / "state", folder, tmp_path / "out")
    assert summary.done == 3 and f"gateway balance: $1.00 left at {host(gateway)}" in shown


@pytest.mark.parametrize("calls", [(), ("token_usage",)])
def test_a_batch_stops_at_the_first_empty_balance_answer(calls, gateway, tmp_path):
    # No balance call, or only new-api's raw quota (its dollar rate assumed): shown, never a reason to refuse.
    gateway.relay = Relay(quota_usd=0.06, balance_calls=calls)
    summary, shown = run(gateway, tmp_path / "state", photos(tmp_path / "in", 5), tmp_path / "out")
    assert ("$0.06 left at" in shown) == bool(calls)
    # The refused item's slot is given back before the runner hears why, so the next one may be refused too.
    assert (summary.done, summary.stopped, summary.failed + summary.not_started) == (2, "balance", 3)
    assert 1 <= summary.failed <= 2 and summary.not_started >= 1
    assert gateway.submissions == 2 and gateway.relay.submits == 2 + summary.failed  # the refused made no job
    assert "the gateway's usage log at" in summary.text() and "fal dashboard" not in summary.text()


def _balance_route(c) -> tuple[int, dict, bytes]:
    import asyncio
    import json
    from unittest import mock

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from comfyui_fal_qwen_edit.nodes.routes import panel as routes
    from comfyui_fal_qwen_edit.nodes.fal.panel.jobs import JobsPanel
    table = web.RouteTableDef()
    routes.register(table, mock.Mock(), JobsPanel(c.history, clients=lambda connection: c))
    handler = next(r.handler for r in table if r.method == "GET" and r.path == "/fal_qwen_edit/balance")
    response = asyncio.run(handler(make_mocked_request("GET", "/fal_qwen_edit/balance")))
    return response.status, json.loads(response.body), response.body


def test_the_panels_balance_route_answers_the_gateways_figure_and_never_the_token(gateway, fake_fal, tmp_path):
    gateway.relay = Relay(quota_usd=2.0, used_usd=0.5)
    with client(gateway, tmp_path / "gw") as c:
        status, answer, raw = _balance_route(c)
    assert status == 200 and (answer["mode"], answer["usd"], answer["unlimited"]) == ("gateway", 1.5, False)
    assert answer["host"] == host(gateway) and answer["text"] == f"$1.50 left at {host(gateway)}"
    assert KEY.encode() not in raw and KEY.split(":")[1].encode() not in raw
    with persistent_client(config_for(fake_fal), tmp_path / "fal") as c:
        assert _balance_route(c)[1] == {"mode": "fal"}  # fal direct: the header shows no balance line
