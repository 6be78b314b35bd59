"""The batch runner in-process against the fake server: every line checked (with its line number)
before anything is uploaded, the results file, failed items retried only when asked, the cap
refusing a batch up front and stopping one that would cross it, and what the display writes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fakefal.routes.platform_api import billable_units
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.models.endpoints import spec_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.runner.batch import run_batch
from comfyui_fal_qwen_edit.nodes.fal.runner.manifest import ManifestError, folder_lines, read_manifest
from comfyui_fal_qwen_edit.nodes.fal.runner.plan import BatchOverCapError
from comfyui_fal_qwen_edit.nodes.fal.runner.results import FolderBusyError, ResultsFile
from comfyui_fal_qwen_edit.nodes.fal.runner.scheduler import RunSettings
from comfyui_fal_qwen_edit.nodes.fal.state.budget import Budget

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

SPEC = spec_for("qwen-edit-plus")
ONE_EDIT = 0.03  # qwen-edit-plus without image_size: square_hd, 1 MP at $0.03


@pytest.fixture
def fal():
    server = FakeFal(key=KEY, max_lifetime=120).start()
    server.billable_units = False  # the cap on estimates here; the ledger settling to billed units: test_history
    yield server
    server.stop()


def photos(folder: Path, count: int, first_seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"p{i}.png"
        Image.fromarray(to_u8(gradient(16, 20, seed=first_seed + i))).save(path)
        paths.append(path)
    return paths


def jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def batch(server, state: Path, lines, out: Path, *, cap=None, concurrency=2, retry_failed=False, stream=None,
          on_end=None, cancel=lambda: False, prompt="invert"):
    with persistent_client(config_for(server), state, retry=FAST_RETRY, budget_usd=cap) as client:
        return run_batch(client, lines, QwenEditRequest(prompt=prompt), SPEC, out, RunSettings(concurrency=concurrency),
                         should_cancel=cancel, retry_failed=retry_failed, stream=stream or io.StringIO(),
                         on_end=on_end)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_every_bad_line_is_reported_with_its_number_and_nothing_is_sent(fal, tmp_path):
    photos(tmp_path / "in", 2)
    (tmp_path / "in" / "cut.png").write_bytes((tmp_path / "in" / "p0.png").read_bytes()[:-30])  # truncated
    manifest = jsonl(tmp_path / "edits.jsonl", [
        {"images": ["in/p0.png"], "prompt": "fine"},
        "",
        {"images": ["in/missing.png"], "prompt": "x"},
        {"images": ["in/p1.png"], "prompt": "x", "steps": 30},
        "{not json",
        {"images": ["in/p1.png"], "prompt": "x", "num_images": 9, "image_size": "huge"},
        {"images": ["in/cut.png"], "prompt": "x"},
        {"images": ["in/p0.png", "https://example.com/a.png"], "prompt": "x"},
        {"images": ["in/p1.png"], "prompt": "x", "name": "same"},
        {"images": ["in/p0.png"], "prompt": "x", "name": "same"},
        {"images": ["in/p1.png"], "name": "../up"},
    ])
    with pytest.raises(ManifestError) as refused:
        batch(fal, tmp_path / "state", read_manifest(manifest), tmp_path / "out", prompt="")
    text = str(refused.value)
    for expected in ("line 3: images: in/missing.png: no such file",
                     "line 4: steps: not a field of the edit",
                     "line 5: not valid JSON",
                     "line 6: num_images: 9 is out of range",
                     "line 6: image_size: 'huge' is not a preset",
                     "line 7: images: in/cut.png: not a readable image",
                     "line 8: images: list URLs before files",
                     "line 10: name: 'same' is also the name of line 9",
                     "line 11: name: '../up' is not a plain file name",
                     "line 11: prompt: write what to change"):
        assert expected in text, expected
    assert "line 1:" not in text and "nothing was uploaded or submitted" in text
    assert fal.submissions == 0 and fal.uploads == [] and fal.requests == []
    assert not (tmp_path / "out").exists()


def test_csv_columns_become_typed_fields_and_default_names(fal, tmp_path):
    photos(tmp_path / "in", 3)
    (tmp_path / "edits.csv").write_text(
        "images,prompt,name,seed,image_size,enable_safety_checker,loras\n"
        "in/p0.png;in/p1.png,invert,pair,7,80x64,false,\n"
        'in/p2.png,"invert, gently",,,square,,\n'
        "\n"
        "in/p2.png,x,,seven,,maybe,\n")
    with pytest.raises(ManifestError) as refused:
        batch(fal, tmp_path / "state", read_manifest(tmp_path / "edits.csv"), tmp_path / "out")
    assert "line 5: seed: 'seven' is not a whole number" in str(refused.value)
    assert "line 5: enable_safety_checker: use true or false" in str(refused.value)
    (tmp_path / "edits.csv").write_text("\n".join((tmp_path / "edits.csv").read_text().splitlines()[:3]) + "\n")
    summary = batch(fal, tmp_path / "state", read_manifest(tmp_path / "edits.csv"), tmp_path / "out")
    assert summary.done == 2 and summary.complete
    pair = next(j for j in fal.jobs.values() if j.arguments.get("seed") == 7)
    assert pair.arguments["image_size"] == {"width": 80, "height": 64} and len(pair.arguments["image_urls"]) == 2
    assert pair.arguments["enable_safety_checker"] is False
    other = next(j for j in fal.jobs.values() if j is not pair)
    assert other.arguments["prompt"] == "invert, gently" and other.arguments["image_size"] == "square"
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["p2.png", "pair.png"]
    assert Image.open(tmp_path / "out" / "pair.png").size == (80, 64)


def test_a_folder_with_shared_references_and_the_results_file(fal, tmp_path):
    paths = photos(tmp_path / "in", 3)
    ref = photos(tmp_path / "refs", 1, first_seed=9)[0]
    stream = io.StringIO()
    summary = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", [str(ref)]), tmp_path / "out",
                    stream=stream)
    assert summary.done == 3 and fal.submissions == 3 and summary.cost_usd_run == pytest.approx(3 * ONE_EDIT)
    assert all(len(job.arguments["image_urls"]) == 2 for job in fal.jobs.values())
    assert len({url for job in fal.jobs.values() for url in job.arguments["image_urls"]}) == 4  # ref uploaded once
    done = {r["name"]: r for r in records(tmp_path / "out") if r["status"] == "done"}
    for path in paths:
        record = done[path.stem]
        assert record["request_id"] in fal.jobs and record["files"] == [f"{path.stem}.png"]
        assert record["cost_usd"] == ONE_EDIT and record["line"] == paths.index(path) + 1
        edited = np.asarray(Image.open(tmp_path / "out" / record["files"][0]))
        assert np.array_equal(edited, 255 - np.asarray(Image.open(path)))  # the fake inverts the first input
    # Not a terminal: one plain line per item, each with its request id, and no cursor control.
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert sum(1 for line in text.splitlines() if " done " in line and "request " in line) == 3

    again = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", [str(ref)]), tmp_path / "out")
    assert again.done == 0 and again.done_before == 3 and fal.submissions == 3 and again.complete
    assert again.cost_usd_batch == pytest.approx(3 * ONE_EDIT)


def test_failed_items_are_retried_only_when_asked(fal, tmp_path):
    photos(tmp_path / "in", 3)
    lines = lambda: folder_lines(tmp_path / "in", [])  # noqa: E731
    fal.add_fault(Fault("submit", "status", code=400, body={"detail": "image_urls[0]: unreadable"}))
    first = batch(fal, tmp_path / "state", lines(), tmp_path / "out", concurrency=1)
    assert (first.done, first.failed) == (2, 1) and not first.complete
    [failed] = [r for r in records(tmp_path / "out") if r["status"] == "failed"]
    assert failed["name"] == "p0" and "unreadable" in failed["error"]

    second = batch(fal, tmp_path / "state", lines(), tmp_path / "out")
    assert (second.done, second.failed_before, second.done_before) == (0, 1, 2) and fal.submissions == 2
    assert not second.complete and "--retry-failed" in second.text()

    third = batch(fal, tmp_path / "state", lines(), tmp_path / "out", retry_failed=True)
    assert (third.done, third.done_before) == (1, 2) and third.complete and fal.submissions == 3
    assert (tmp_path / "out" / "p0.png").is_file()


def test_the_cap_refuses_a_batch_up_front_saying_how_many_fit(fal, tmp_path):
    photos(tmp_path / "in", 5)
    Budget(tmp_path / "state" / "spend.jsonl").reserve([0.04], "an earlier edit")
    with pytest.raises(BatchOverCapError) as refused:
        batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", cap=0.12)
    message = str(refused.value)
    assert "5 new jobs" in message and "about $0.15" in message and "$0.08 of your $0.12 daily cap is left" in message
    assert "only the first 2 of them fit" in message and "--budget-usd" in message
    assert fal.submissions == 0 and fal.uploads == []
    summary = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", cap=0.20)
    assert summary.done == 5  # a cap raised for this run lets it through


def test_the_cap_stops_submitting_when_the_next_item_would_cross_it(fal, tmp_path):
    photos(tmp_path / "in", 4)
    fal.run_time = 0.2
    ledger = Budget(tmp_path / "state" / "spend.jsonl")
    elsewhere = []

    def another_process_spends(item, record, outcome):
        if not elsewhere:  # while this batch runs, ComfyUI on the same machine spends too
            elsewhere.append(ledger.reserve([0.05], "ComfyUI"))

    stream = io.StringIO()
    summary = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", cap=0.13,
                    concurrency=1, stream=stream, on_end=another_process_spends)
    assert summary.stopped == "cap" and (summary.done, summary.not_started) == (2, 2) and fal.submissions == 2
    assert "Spending cap reached: p2.png (p2) would cross it, so no more items are submitted" in stream.getvalue()
    assert "Run the same command again to continue" in summary.text()
    resumed = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", cap=0.30)
    assert (resumed.done, resumed.done_before) == (2, 2) and fal.submissions == 4


def test_on_a_terminal_one_bar_is_redrawn_in_place(fal, tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    photos(tmp_path / "in", 2)
    fal.add_fault(Fault("submit", "status", code=400, body={"detail": "nope"}))
    stream = Terminal()
    batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", concurrency=1,
          stream=stream)
    text = stream.getvalue()
    assert "\r\x1b[K[" in text and "2/2  done 1  failed 1  running 0" in text
    assert "failed    line 1 p0" in text and " done      line" not in text  # failures only, above the bar


def test_results_file_survives_a_cut_line_and_one_run_per_folder(tmp_path):
    with ResultsFile(tmp_path) as results:
        results.append({"key": "a", "status": "done", "line": 1})
        with open(results.path, "ab") as handle:
            handle.write(b'{"key": "b", "status": "do')  # a crash in mid-write
        with pytest.raises(FolderBusyError, match="Another fal-qwen-edit batch"):
            ResultsFile(tmp_path).__enter__()
    with ResultsFile(tmp_path) as results:
        results.append({"key": "b", "status": "failed", "line": 2})
        assert {k: r["status"] for k, r in results.latest().items()} == {"a": "done", "b": "failed"}


def test_the_pipeline_hands_the_result_over_before_its_journal_forgets_the_job(fal, tmp_path):
    import torch
    from comfyui_fal_qwen_edit.nodes.fal.media.inputs import prepare_all

    seen = []
    with persistent_client(config_for(fal), tmp_path / "state", retry=FAST_RETRY) as client:
        def on_result(outcome):  # what a crash here would leave: the job still journalled, so resumable
            seen.append([e.get("request_id") for e in client.journal.entries()] == [outcome.handle.request_id])

        inputs = prepare_all([torch.from_numpy(gradient(16, 16))[None]], SPEC.reads_area)
        outcome = client._edit_encoded(QwenEditRequest(prompt="p"), inputs, SPEC, started=0.0, on_result=on_result)
        assert seen == [True] and client.journal.entries() == [] and outcome.source == "job"


def test_a_submit_whose_answer_was_lost_is_looked_up_again_and_resubmitted_only_with_retry_failed(fal, tmp_path):
    photos(tmp_path / "in", 2)
    fal.add_fault(Fault("submit", "reset_after"))  # fal takes the job, the answer never arrives
    fal.add_fault(Fault("platform_requests", "status", code=500, times=None))  # and its history cannot be read
    first = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", concurrency=1)
    assert (first.done, first.failed) == (1, 1) and fal.submissions == 2
    [lost] = [r for r in records(tmp_path / "out") if r["status"] == "failed"]
    assert lost["uncertain"] is True and "fal dashboard" in lost["error"]
    assert "--retry-failed submits this item again; it may then be paid twice" in lost["error"]
    assert "--fresh" not in lost["error"]  # --fresh would resubmit every unfinished item, not this one
    again = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out")
    assert again.failed == 1 and again.failed_before == 0 and fal.submissions == 2  # looked up, still unknown
    retried = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", retry_failed=True)
    assert retried.done == 1 and retried.complete and fal.submissions == 3


def test_a_lost_submit_an_earlier_run_reported_is_resumed_once_fals_history_lists_it(fal, tmp_path):
    photos(tmp_path / "in", 2)
    fal.add_fault(Fault("submit", "reset_after"))
    history_down = fal.add_fault(Fault("platform_requests", "status", code=500, times=None))
    first = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out", concurrency=1)
    assert first.failed == 1 and fal.submissions == 2
    history_down.times = 0
    again = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out")
    assert again.done == 1 and again.complete and fal.submissions == 2  # the job fal took, no second one
    latest = {r["key"]: r for r in records(tmp_path / "out")}
    assert sorted(r["source"] for r in latest.values()) == ["job", "resumed"]


def test_the_summary_sums_what_fal_billed_where_it_said_and_says_so_where_it_did_not(fal, tmp_path):
    photos(tmp_path / "in", 3)
    fal.billable_units = True  # X-Fal-Billable-Units on each result: output megapixels, as fal bills them
    summary = batch(fal, tmp_path / "state", folder_lines(tmp_path / "in", []), tmp_path / "out")
    billed = [r["billed_usd"] for r in records(tmp_path / "out") if r["status"] == "done"]
    units = sum(billable_units(job.result) for job in fal.jobs.values())
    assert len(billed) == 3 and summary.billed_jobs == 3
    assert summary.billed_usd == pytest.approx(round(units * 0.03, 4), abs=1e-4)  # the fake's unit price
    assert f"billed ${summary.billed_usd:.4f} for 3 jobs" in summary.text()
    fal.billable_units = False
    photos(tmp_path / "more", 1, first_seed=9)
    quiet = batch(fal, tmp_path / "state2", folder_lines(tmp_path / "more", []), tmp_path / "out2")
    assert quiet.billed_usd is None and "billed: not reported" in quiet.text()
