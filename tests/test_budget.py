"""The daily spending cap: the edit (or per-frame batch) that would cross it is refused before any
upload or submit; the spend survives restarts; cached and resumed results cost nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.state.budget import Budget, BudgetError
from comfyui_fal_qwen_edit.nodes.fal.wire.config import budget_cap
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.base.errors import ConfigError, FalTimeoutError, ValidationError
from comfyui_fal_qwen_edit.nodes.fal.models.pricing import estimate
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest

from conftest import FAST_RETRY, KEY, client_environ, config_for, gradient, to_u8

IMAGE = torch.from_numpy(gradient(16, 16, seed=8))[None]
ONE_EDIT = 0.03  # qwen-edit-plus, 1 image, square_hd when no size is given: 1 MP x $0.03


@pytest.fixture
def fal():
    server = FakeFal(key=KEY, max_lifetime=120).start()
    # The cap on estimates: the fake's outputs follow its 16 px inputs, not square_hd, so its billed
    # units would settle each entry near zero (that settling is tests/test_history.py's).
    server.billable_units = False
    yield server
    server.stop()


def client(server, state, cap=None):
    return persistent_client(config_for(server), state, retry=FAST_RETRY, budget_usd=cap)


def edit(c, seed=1, **options):
    return c.edit(QwenEditRequest(prompt="p", seed=seed), [IMAGE], timeout=options.pop("timeout", 20), **options)


def test_the_edit_that_would_cross_the_cap_is_refused_before_any_upload(fal, tmp_path):
    with client(fal, tmp_path, cap=0.05) as c:
        assert edit(c, seed=1).cost_usd_estimate == ONE_EDIT
        fal.requests.clear()
        with pytest.raises(BudgetError) as refused:
            edit(c, seed=2)
    message = str(refused.value)
    assert "$0.03 of your $0.05 daily cap" in message and "about $0.030" in message
    assert "FAL_DAILY_BUDGET_USD" in message and "daily_usd" in message  # how to raise it
    assert fal.requests == [] and fal.submissions == 1 and len(fal.uploads) == 1  # the first edit's only


def test_the_spend_holds_across_a_restart(fal, tmp_path):
    with client(fal, tmp_path, cap=0.05) as c:
        edit(c, seed=1)
    with client(fal, tmp_path, cap=0.05) as c:  # a new process: the ledger is on disk
        assert c.budget.spent() == ONE_EDIT
        with pytest.raises(BudgetError):
            edit(c, seed=2)
    assert fal.submissions == 1
    ledger = [json.loads(line) for line in (tmp_path / "spend.jsonl").read_text().splitlines()]
    assert [entry["usd"] for entry in ledger] == [ONE_EDIT]


def test_a_per_frame_batch_is_counted_whole_before_its_first_upload(fal, tmp_path):
    batch = torch.cat([IMAGE, IMAGE * 0.5, IMAGE * 0.25])
    with client(fal, tmp_path, cap=0.08) as c:  # room for two edits, not three
        with pytest.raises(BudgetError, match=r"3 jobs x 1 MP"):
            c.edit_each(QwenEditRequest(prompt="p", seed=3), batch)
        assert fal.requests == [] and c.budget.spent() == 0
    with client(fal, tmp_path, cap=0.09) as c:
        outcomes = c.edit_each(QwenEditRequest(prompt="p", seed=3), batch)
        assert len(outcomes) == 3 and c.budget.spent() == pytest.approx(0.09)
    assert fal.submissions == 3


def test_cached_and_resumed_results_cost_nothing_and_count_once(fal, tmp_path):
    with client(fal, tmp_path, cap=0.05) as c:
        edit(c, seed=1)
        again = edit(c, seed=1)  # from the result cache
        assert again.source == "cache" and again.cost_usd_estimate == 0 and c.budget.spent() == ONE_EDIT
    fal.run_time = 1.0
    with client(fal, tmp_path, cap=0.06) as c, pytest.raises(FalTimeoutError):
        edit(c, seed=2, timeout=0.3)
    with client(fal, tmp_path, cap=0.06) as c:  # the cap is reached, yet the paid job is fetched
        resumed = edit(c, seed=2)
        assert resumed.source == "resumed" and resumed.cost_usd_estimate == 0
        assert c.budget.spent() == pytest.approx(2 * ONE_EDIT)
    assert fal.submissions == 2


def test_a_submit_fal_refused_is_not_counted(fal, tmp_path):
    from comfyui_fal_qwen_edit.nodes.fakefal import Fault
    fal.add_fault(Fault("submit", "status", 422, body={"detail": [{"loc": ["body", "prompt"], "msg": "no",
                                                                   "type": "value_error"}]}))
    with client(fal, tmp_path, cap=1.0) as c:
        with pytest.raises(ValidationError):
            edit(c)
        assert c.budget.spent() == 0


def test_only_the_last_24_hours_count(tmp_path):
    budget = Budget(tmp_path / "spend.jsonl", cap_usd=0.10)
    old = {"id": "a", "t": time.time() - 25 * 3600, "usd": 5.0}
    recent = {"id": "b", "t": time.time() - 3600, "usd": 0.04}
    (tmp_path / "spend.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(recent) + "\n{cut short")
    assert budget.spent() == 0.04
    budget.reserve([0.06], "test")
    with pytest.raises(BudgetError, match=r"\$0.10 of your \$0.10"):
        budget.reserve([0.01], "test")


def test_the_cap_comes_from_the_environment_or_config_ini(tmp_path):
    ini = tmp_path / "config.ini"
    ini.write_text("[budget]\ndaily_usd = 2.50\n")
    base = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(ini)}
    assert budget_cap(base) == 2.5
    assert budget_cap({**base, "FAL_DAILY_BUDGET_USD": "7"}) == 7.0
    assert budget_cap({"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "none.ini")}) is None
    with pytest.raises(ConfigError, match="US dollars"):
        budget_cap({**base, "FAL_DAILY_BUDGET_USD": "lots"})


def test_the_cli_refuses_past_its_budget_and_says_how_to_raise_it(fal, tmp_path):
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(gradient(32, 32))).save(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(HOME=str(tmp_path), FAL_QWEN_EDIT_CONFIG="/nonexistent.ini", **client_environ(fal))
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--json", str(source), "-p", "p", "--num-images", "2",
         "--image-size", "square_hd", "--out", str(tmp_path / "o"), *extra], env=env, capture_output=True,
        text=True, timeout=60)
    refused = run("--budget-usd", "0.05")
    assert refused.returncode == 1 and "Spending cap" in refused.stderr and "--budget-usd" in refused.stderr
    assert "about $0.060 (2 images x 1 MP" in refused.stderr and fal.submissions == 0 and fal.requests == []
    done = run("--budget-usd", "0.10")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["run"] == {"cost_usd_estimate": 0.06, "spent_24h_usd": 0.06, "daily_cap_usd": 0.1}


def test_the_estimate_follows_the_endpoints_price_rule():
    plus, lora, first = spec_for("qwen-edit-plus"), spec_for("qwen-edit-plus-lora"), spec_for("qwen-edit-lora")
    assert estimate(plus, None, 2, [(4000, 3000)]).usd == 0.06  # square_hd when no size: 1 MP each
    assert estimate(lora, None, 1, [(4000, 3000)]).megapixels == 1.01  # 1184 x 896, derived from the final input
    assert estimate(lora, None, 1, [(4000, 3000)]).usd == 0.0354
    assert estimate(plus, (1536, 1024), 1, []).megapixels == 1.5
    assert estimate(plus, "landscape_16_9", 3, [], jobs=4).usd == pytest.approx(0.03 * 0.56 * 3 * 4)
    unknown = estimate(first, "square_hd", 1, [])  # no table price, no pricing API at hand: no figure made up
    assert (unknown.usd, unknown.rate, unknown.confirmed) == (None, None, False)
    assert unknown.text().startswith("price unknown: the pack's table has no price for qwen-edit-lora")


def test_a_long_ledger_is_read_incrementally_and_compacted_only_when_that_halves_it(tmp_path, monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.state import budget as budget_module
    monkeypatch.setattr(budget_module, "COMPACT_AT", 40)
    path = tmp_path / "spend.jsonl"
    ours, theirs = Budget(path, cap_usd=100.0), Budget(path, cap_usd=100.0)  # e.g. the CLI and ComfyUI
    for _ in range(60):  # past COMPACT_AT, every entry inside the window: nothing to drop, so no rewrite
        ours.reserve([0.5], "x")
        theirs.reserve([0.25], "y")
    inode = path.stat().st_ino
    ours.reserve([0.5], "x")
    assert path.stat().st_ino == inode and len(path.read_text().splitlines()) == 121
    assert ours.spent() == theirs.spent() == 45.5  # each sees the other's appends
    with open(path, "ab") as ledger:  # a crash cut the last line short: skipped, and it swallows nothing
        ledger.write(b'{"id": "cut", "t": 1')
    theirs.reserve([1.0], "z")
    assert ours.spent() == theirs.spent() == 46.5
    old = time.time() - 25 * 3600  # most of the file leaves the window: the next append compacts it
    lines = [json.loads(line) for line in path.read_text().splitlines() if not line.startswith('{"id": "cut"')]
    path.write_text("".join(json.dumps({**e, "t": old}) + "\n" for e in lines[:100]) +
                    "".join(json.dumps(e) + "\n" for e in lines[100:]))
    fresh = Budget(path, cap_usd=100.0)
    expected = round(sum(e["usd"] for e in lines[100:]), 4)
    assert fresh.spent() == expected
    fresh.reserve([2.0], "w")
    assert len(path.read_text().splitlines()) < 40  # compacted: a new file
    assert ours.spent() == theirs.spent() == round(expected + 2.0, 4)  # their parsed tails are dropped
