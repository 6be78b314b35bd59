"""``fal-qwen-edit --check``: tells a good key from a bad one, an unreachable host and missing
storage, on every shape of server, without submitting anything and without printing the key."""

from __future__ import annotations

import socket

import pytest

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.cli import main as cli

from conftest import KEY, client_environ


@pytest.fixture
def run_check(monkeypatch, capsys, tmp_path):
    def run(environ: dict[str, str], *args: str) -> tuple[int, str]:
        for name in [n for n in __import__("os").environ if n.startswith("FAL_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("HOME", str(tmp_path))
        monkeypatch.setenv("FAL_QWEN_EDIT_CONFIG", str(tmp_path / "none.ini"))
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        code = cli.main(["--check", *args])
        out, err = capsys.readouterr()
        assert KEY not in out + err and KEY.split(":")[1] not in out + err
        return code, out + err
    return run


@pytest.mark.parametrize("mode", ["fal", "gateway", "gateway_result_only", "gateway_task", "proxy"])
def test_a_good_connection_passes_every_check_without_a_job(mode, run_check):
    with FakeFal(key=KEY, mode=mode, max_lifetime=60).start() as server:
        code, text = run_check(client_environ(server))
        assert code == 0, text
        assert "ok   key: accepted" in text and "ok   storage:" in text
        assert ("uploaded" in text) == (mode in ("fal", "proxy"))
        assert server.submissions == 0 and not server.jobs
    assert {"fal": "fal direct", "proxy": "proxy", "gateway": "gateway"}[mode.split("_")[0]] in text


@pytest.mark.parametrize("mode", ["fal", "gateway_result_only", "proxy"])
def test_a_refused_key_fails(mode, run_check):
    with FakeFal(key="another-key", proxy_fal_key="wrong-key", mode=mode, max_lifetime=60).start() as server:
        code, text = run_check(client_environ(server))
        assert code == 1 and "FAIL key:" in text and "401" in text, text
        assert server.submissions == 0


def test_an_unreachable_host_fails(run_check):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    code, text = run_check({"FAL_KEY": KEY, "FAL_QUEUE_BASE": url, "FAL_REST_BASE": url})
    assert code == 1 and "FAIL reach: cannot reach 127.0.0.1" in text, text


def test_storage_not_offered_fails_and_says_what_to_do(run_check):
    with FakeFal(key=KEY, storage_v3=False, max_lifetime=60).start() as server:
        server.add_fault(Fault("initiate", "status", 404, times=None))
        code, text = run_check(client_environ(server))
        assert code == 1 and "ok   key: accepted" in text and "FAIL storage: not offered here" in text, text
        assert "data_uri" in text and server.submissions == 0


@pytest.mark.parametrize("today, stale", [("2027-03-05", False), ("2027-03-06", True)])
def test_check_says_when_the_schema_snapshot_is_over_90_days_old(today, stale, run_check, monkeypatch):
    """The snapshot was read on SNAPSHOT_READ_ON (2026-12-05): 90 days later it is still fine, a day more
    and --check says so; information only, the exit code stays the connection's."""
    from comfyui_fal_qwen_edit.nodes.fal.cli import models_table
    from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import SNAPSHOT_READ_ON, snapshot_age_days
    monkeypatch.setattr(models_table, "today", lambda: today)
    assert SNAPSHOT_READ_ON == "2026-12-05" and snapshot_age_days(today) == (91 if stale else 90)
    with FakeFal(key=KEY, max_lifetime=60).start() as server:
        code, text = run_check(client_environ(server))
    assert code == 0, text
    line = next(line for line in text.splitlines() if "schema:" in line)
    assert f"fal's input schemas read on 2026-12-05 ({91 if stale else 90} days ago)" in line
    assert ("over 90 days old" in line and "update the pack" in line) == stale
