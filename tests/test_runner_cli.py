"""``fal-qwen-edit --manifest`` as a real process: killed with SIGKILL in mid-batch and started again
(nothing lost, nothing submitted twice), Ctrl-C (SIGINT) cancelling the jobs in flight on fal and
leaving the batch resumable, plain output off a terminal, and the exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal

from conftest import KEY, gradient, to_u8

CLI = [sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--json"]


@pytest.fixture
def fal():
    server = FakeFal(key=KEY, max_lifetime=120).start()
    yield server
    server.stop()


def setup(tmp_path: Path, server: FakeFal, count: int) -> tuple[Path, dict]:
    (tmp_path / "in").mkdir()
    lines = []
    for i in range(count):
        Image.fromarray(to_u8(gradient(16, 16, seed=i))).save(tmp_path / "in" / f"{i}.png")
        lines.append(json.dumps({"images": [f"in/{i}.png"], "prompt": "invert", "name": f"item{i}"}))
    (tmp_path / "edits.jsonl").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=server.url, FAL_REST_BASE=server.url, FAL_API_BASE=server.url, HOME=str(tmp_path),
               FAL_QWEN_EDIT_STATE_DIR=str(tmp_path / "state"), FAL_QWEN_EDIT_CONFIG="/nonexistent.ini")
    return tmp_path / "edits.jsonl", env


def command(manifest: Path, out: Path, *extra: str) -> list[str]:
    return CLI + ["--manifest", str(manifest), "--out", str(out), *extra]


def latest(out: Path) -> dict[str, dict]:
    found = {}
    try:
        text = (out / "results.jsonl").read_text()
    except FileNotFoundError:
        return found
    for raw in text.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        found[record["name"]] = record
    return found


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_batch_killed_with_sigkill_resumes_without_a_second_job(fal, tmp_path):
    fal.run_time = 2.0
    manifest, env = setup(tmp_path, fal, 6)
    out = tmp_path / "out"
    doomed = subprocess.Popen(command(manifest, out, "--concurrency", "2"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Killed once four jobs are journalled and running (their request ids on disk), two of them in flight.
        wait_for(lambda: sum(r["status"] == "running" for r in latest(out).values()) >= 2
                 and len(fal.jobs) >= 4 and len({r.get("request_id") for r in latest(out).values()}) >= 4)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    assert fal.submissions == 4
    assert any(e.get("request_id") for e in Journal(tmp_path / "state" / "journal").entries())

    done = subprocess.run(command(manifest, out, "--concurrency", "2"), env=env, capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr
    assert fal.submissions == 6  # the killed run's jobs were resumed, not submitted again
    summary = json.loads(done.stdout)
    assert summary["done"] + summary["done_before"] == 6 and summary["complete"]
    records = latest(out)
    assert all(r["status"] == "done" for r in records.values()) and len(records) == 6
    assert {r["request_id"] for r in records.values()} == set(fal.jobs)  # one job per item
    assert any(r["source"] == "resumed" for r in records.values())
    for i in range(6):
        edited = np.asarray(Image.open(out / records[f"item{i}"]["files"][0]))
        assert np.array_equal(edited, 255 - to_u8(gradient(16, 16, seed=i)))
    # Not a terminal: plain lines, each item's with its request id, and the summary.
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    item_lines = [line for line in done.stderr.splitlines() if "] done " in line]
    assert len(item_lines) == summary["done"] and all("  request " in line for line in item_lines)
    assert "results: " in done.stderr and KEY not in done.stdout + done.stderr


def test_a_batch_killed_between_a_submit_and_its_answer_finds_that_job_in_fals_history(fal, tmp_path):
    fal.run_time = 0.5
    manifest, env = setup(tmp_path, fal, 4)
    out = tmp_path / "out"
    held = fal.add_fault(Fault("submit", "hang_after", delay=60.0, skip=2))  # fal takes the 3rd, says nothing
    doomed = subprocess.Popen(command(manifest, out, "--concurrency", "1"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = Journal(tmp_path / "state" / "journal")
    try:
        wait_for(lambda: len(fal.jobs) == 3 and any(e.get("request_id") is None for e in journal.entries()))
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        held.release()
    cut_off = [e for e in journal.entries() if e.get("request_id") is None]
    assert len(cut_off) == 1 and fal.submissions == 3 and len(latest(out)) == 2
    # The kill can land while the 2nd item's images still download (its slot passed on when its result
    # was in): that item is then resumed from the journal too, not submitted again.
    still_running = sum(r["status"] == "running" for r in latest(out).values())

    done = subprocess.run(command(manifest, out, "--concurrency", "1"), env=env, capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr
    assert fal.submissions == 4  # the cut-off submit's job was found and waited on, not submitted again
    assert "found in fal's request history" in done.stderr
    records = latest(out)
    assert {r["request_id"] for r in records.values()} == set(fal.jobs) and len(records) == 4
    # item2's submit was the cut-off one; item1 may still have been downloading when the kill came (its slot
    # is given back once its job is over on fal, before its outputs are written), and is then resumed too.
    sources = {name: record["source"] for name, record in records.items()}
    assert (sources["item0"], sources["item2"], sources["item3"]) == ("job", "resumed", "job"), sources
    assert sources["item1"] in ("job", "resumed")
    assert all(np.array_equal(np.asarray(Image.open(out / records[f"item{i}"]["files"][0])),
                              255 - to_u8(gradient(16, 16, seed=i))) for i in range(4))


def test_ctrl_c_cancels_the_jobs_in_flight_and_the_batch_resumes(fal, tmp_path):
    fal.run_time = 30.0
    manifest, env = setup(tmp_path, fal, 5)
    out = tmp_path / "out"
    cli = subprocess.Popen(command(manifest, out, "--concurrency", "2"), env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sum(r["status"] == "running" for r in latest(out).values()) == 2)
        running = {r["request_id"] for r in latest(out).values()}
        cli.send_signal(signal.SIGINT)
        stdout, stderr = cli.communicate(timeout=30)
    finally:
        cli.kill()
    assert cli.returncode == 130, stderr
    assert {request_id for request_id, _ in fal.cancel_requests} == running == set(fal.jobs)
    assert fal.submissions == 2 and all(job.cancelled for job in fal.jobs.values())
    records = latest(out)
    assert sorted(r["status"] for r in records.values()) == ["cancelled", "cancelled"]
    summary = json.loads(stdout)
    assert summary["stopped"] == "cancelled" and summary["cancelled"] == 2 and summary["not_started"] == 3
    assert "Cancelling" in stderr and "Run the same command again to continue" in stderr

    fal.run_time = 0.1
    again = subprocess.run(command(manifest, out, "--concurrency", "2"), env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert fal.submissions == 7  # the two cancelled items get new jobs, the three others their first
    assert sorted(r["status"] for r in latest(out).values()) == ["done"] * 5


def test_exit_codes_bad_lines_and_the_cap_submit_nothing(fal, tmp_path):
    manifest, env = setup(tmp_path, fal, 3)
    out = tmp_path / "out"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(manifest.read_text() + '{"images": ["in/none.png"], "prompt": "x"}\n')
    refused = subprocess.run(command(bad, out), env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "line 4: images: in/none.png: no such file" in refused.stderr
    capped = subprocess.run(command(manifest, out, "--budget-usd", "0.05"), env=env, capture_output=True,
                            text=True, timeout=60)
    assert capped.returncode == 2 and "only the first 1 of them fit" in capped.stderr
    usage = subprocess.run(command(manifest, out, "--concurrency", "0"), env=env, capture_output=True, text=True,
                           timeout=60)
    assert usage.returncode == 2 and "--concurrency takes 1-40" in usage.stderr
    assert fal.submissions == 0 and fal.uploads == []
    each = subprocess.run(CLI + ["--each", str(tmp_path / "in"), "--prompt", "invert", "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert each.returncode == 0, each.stderr
    assert json.loads(each.stdout)["done"] == 3 and fal.submissions == 3


def test_every_batch_submit_carries_the_queue_guards_of_the_command_line_or_the_environment(fal, tmp_path):
    manifest, env = setup(tmp_path, fal, 2)
    flags = subprocess.run(command(manifest, tmp_path / "out", "--start-timeout", "30", "--priority", "low"),
                           env=env, capture_output=True, text=True, timeout=90)
    assert flags.returncode == 0, flags.stderr
    assert [(j.start_deadline, j.priority) for j in fal.jobs.values()] == [(30.0, "low")] * 2
    fal.jobs.clear()
    defaults = subprocess.run(command(manifest, tmp_path / "out2", "--fresh"), capture_output=True, text=True,
                              env=dict(env, FAL_START_TIMEOUT="45", FAL_QUEUE_PRIORITY="low"), timeout=90)
    assert defaults.returncode == 0, defaults.stderr
    assert [(j.start_deadline, j.priority) for j in fal.jobs.values()] == [(45.0, "low")] * 2
    bad = subprocess.run(command(manifest, tmp_path / "out3", "--start-timeout", "0.5"), env=env,
                         capture_output=True, text=True, timeout=90)
    assert bad.returncode == 2 and "--start-timeout must be auto, 0" in bad.stderr and fal.submissions == 4
