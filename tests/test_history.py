"""The job history: what it records for every job, its bounds and crash safety across processes, the
billed cost beside the estimate, fal's own history merged in, and the panel's actions (fetch is free,
cancel reaches fal) — with no key in anything it answers."""

from __future__ import annotations

import base64
import json
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.panel.jobs import BadRequest, Conflict, JobsPanel, NotFound
from comfyui_fal_qwen_edit.nodes.fal.state import history as history_module
from comfyui_fal_qwen_edit.nodes.fal.state.history import JobHistory

from conftest import FAST_RETRY, KEY, config_for, gradient

IMAGE = torch.from_numpy(gradient(48, 64, seed=3))[None]


def rid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def client(fake_fal, tmp_path):
    made = persistent_client(config_for(fake_fal), tmp_path / "state", retry=FAST_RETRY, budget_usd=5.0)
    yield made
    made.close()


def panel_for(client) -> JobsPanel:
    return JobsPanel(client.history, clients=lambda connection: client)


def seeded(fake_fal) -> str:
    uri = "data:image/png;base64," + base64.b64encode(encode_png(gradient(32, 40, seed=5))).decode()
    return fake_fal.seed_job("fal-ai/qwen-image-edit-plus", {"prompt": "elsewhere", "image_urls": [uri],
                                                               "seed": 3}).request_id


def test_an_edit_is_recorded_with_its_cost_thumbnail_and_connection_but_no_key(client, fake_fal):
    heard = []
    client.history.on_change(heard.append)
    outcome = client.edit(QwenEditRequest(prompt="make it blue " * 30, seed=4), [IMAGE], timeout=30)
    job = client.history.get(outcome.handle.request_id)
    assert job["status"] == "done" and job["model"] == "qwen-edit-plus" and len(job["prompt"]) == 200
    assert job["cost_usd_estimate"] == 0.03 and job["submitted_at"] <= job["finished_at"]
    # fal's X-Fal-Billable-Units (the fake bills output megapixels) x the table's unit price
    assert job["billed_units"] == round(48 * 64 / 1024**2, 4)
    assert job["cost_usd_billed"] == round(job["billed_units"] * 0.03, 4) and job["price_source"]
    assert job["connection"] == {"kind": "fal", "host": "127.0.0.1", "base_url": None, "key_env": None}
    # made through this machine's own settings: a Result by Request ID node reaches it with no Connection node
    assert panel_for(client).view(job)["default_connection"] is True
    assert panel_for(client).view({**job, "connection": {**job["connection"], "key_env": "OTHER_KEY"}})[
        "default_connection"] is False
    thumb = client.history.thumbnail_path(job["request_id"], 0).read_bytes()
    assert thumb[:4] == b"RIFF" and thumb[8:12] == b"WEBP"
    assert [h["status"] for h in heard][0] == "running" and heard[-1]["status"] == "done"
    # the ledger now holds the billed figure, not the estimate
    assert client.budget.spent() == pytest.approx(job["cost_usd_billed"])
    everything = (client.history.directory / "jobs.jsonl").read_text() + json.dumps(heard)
    assert KEY not in everything and KEY.split(":")[1] not in everything


def test_a_failed_job_and_a_cancelled_one_are_recorded_so(client, fake_fal):
    fake_fal.fail_job = "the model crashed"
    with pytest.raises(Exception):
        client.edit(QwenEditRequest(prompt="p", seed=1), [IMAGE], timeout=30)
    [job] = client.history.jobs()
    assert job["status"] == "failed" and "crashed" in job["error"]


def test_the_store_is_bounded_and_a_line_cut_short_by_a_crash_loses_nothing_else(tmp_path, monkeypatch):
    now = [1_800_000_000.0]
    monkeypatch.setattr(history_module.time, "time", lambda: now[0])
    history = JobHistory(tmp_path)
    ids = [rid() for _ in range(3)]
    for n, request_id in enumerate(ids):
        now[0] += 1
        history.record(request_id, status="running", prompt=f"p{n}")
    with open(tmp_path / "jobs.jsonl", "a") as lines:
        lines.write('{"request_id": "' + ids[0] + '", "status": "do')  # the crash
    history.record(ids[1], status="done")
    assert {j["request_id"]: j["status"] for j in history.jobs()} == {ids[0]: "running", ids[1]: "done",
                                                                      ids[2]: "running"}
    assert [j["request_id"] for j in history.jobs()] == ids[::-1]  # newest first
    monkeypatch.setattr(history_module, "MAX_JOBS", 2)
    now[0] += 1000
    newest = rid()
    history.record(newest, status="running")
    assert [j["request_id"] for j in history.jobs()] == [newest, ids[2]]  # the oldest went
    now[0] += history_module.MAX_AGE - 500
    assert [j["request_id"] for j in history.jobs()] == [newest]  # older than 90 days: gone


def test_each_change_parses_only_the_new_lines_and_sees_another_writers_lines_and_rewrites(tmp_path, monkeypatch):
    ours, theirs = JobHistory(tmp_path), JobHistory(tmp_path)  # two processes on one state folder
    parsed = []
    real_loads = history_module.json.loads
    monkeypatch.setattr(history_module.json, "loads", lambda raw: (parsed.append(1), real_loads(raw))[1])
    ids = [rid() for _ in range(300)]
    for request_id in ids:
        ours.record(request_id, status="running")
        ours.record(request_id, status="done")
    # 600 changes, each line read once (a few decodes per change, of it and of its job's record so
    # far); re-reading the file per change would decode ~180,000 lines
    assert len(parsed) <= 4 * 600
    other = rid()
    theirs.record(other, status="running", prompt="from the other process")
    assert ours.get(other)["prompt"] == "from the other process"
    monkeypatch.setattr(history_module, "MAX_JOBS", 100)
    theirs.record(rid(), status="done")  # past the bound: the other process rewrites the file
    listed = ours.jobs()
    assert len(listed) == 100 and ids[0] not in {j["request_id"] for j in listed}
    ours.record(ids[-1], status="failed")
    assert theirs.get(ids[-1])["status"] == "failed"


def test_a_file_rewritten_under_the_same_inode_is_read_again_from_the_start(tmp_path):
    # What a freed inode number coming back to a rewritten file looks like: same inode, no shorter.
    history = JobHistory(tmp_path)
    first, second = rid(), rid()
    history.record(first, status="running", prompt="a")
    assert [j["request_id"] for j in history.jobs()] == [first]
    path = tmp_path / "jobs.jsonl"
    inode, size = path.stat().st_ino, path.stat().st_size
    with open(path, "r+b") as same_inode:
        same_inode.write((json.dumps({"request_id": second, "status": "done", "submitted_at": 1.0e12,
                                      "prompt": "b" * size}) + "\n").encode())
    assert path.stat().st_ino == inode and path.stat().st_size > size
    assert [(j["request_id"], j["status"]) for j in history.jobs()] == [(second, "done")]


def test_thumbnails_are_pruned_past_the_bound_without_listing_the_folder_for_every_job(tmp_path, monkeypatch):
    monkeypatch.setattr(history_module, "MAX_THUMB_BYTES", 10_000)
    history = JobHistory(tmp_path)
    listings = []
    real_glob = Path.glob
    monkeypatch.setattr(Path, "glob", lambda self, pattern: (listings.append(pattern), real_glob(self, pattern))[1])
    ids = [rid() for _ in range(30)]
    for request_id in ids:
        history.record(request_id, status="done")
        history.add_thumbnails(request_id, [bytes(1000)])
    kept = sorted(p.name for p in (tmp_path / "thumbs").iterdir())
    assert 8 <= len(kept) <= 10 and f"{ids[-1]}_0.webp" in kept and f"{ids[0]}_0.webp" not in kept
    assert len(listings) <= 12  # the first add, then once per 1,000 bytes past 90 % of the bound: not 30


def _write_many(folder: str, count: int) -> None:
    store = JobHistory(folder)
    for _ in range(count):
        store.record(str(uuid.uuid4()), status="done", prompt="x" * 150)


def test_two_processes_write_at_once_and_every_job_is_kept(tmp_path):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(str(tmp_path), 150)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert all(worker.exitcode == 0 for worker in workers)
    assert len(JobHistory(tmp_path).jobs()) == 300


def test_request_ids_are_checked_before_they_reach_a_path_or_url(client):
    panel = panel_for(client)
    for bad in ("../../etc/passwd", "9c08e7d8-312c-402d-a691-c207a9cb8121/../x", "http://evil/", ""):
        with pytest.raises(BadRequest):
            panel.fetch(bad)
        with pytest.raises((BadRequest, ValueError)):
            client.history.record(bad, status="done")
    with pytest.raises(NotFound):
        panel.job(rid())


def test_a_job_only_in_fals_history_is_listed_and_fetched_free(client, fake_fal):
    other_machine = seeded(fake_fal)
    mine = client.edit(QwenEditRequest(prompt="here", seed=2), [IMAGE], timeout=30).handle.request_id
    panel = panel_for(client)
    assert [j["request_id"] for j in panel.list(source="local")["jobs"]] == [mine]
    listed = {j["request_id"]: j for j in panel.list(source="all")["jobs"]}
    assert listed[mine]["known_locally"] and not listed[other_machine]["known_locally"]
    assert listed[other_machine]["status"] == "done"
    submits = fake_fal.submissions
    fetched = panel.fetch(other_machine, "fal-ai/qwen-image-edit-plus")
    assert fake_fal.submissions == submits  # no new job, no cost
    assert fetched["known_locally"] and fetched["status"] == "done" and len(fetched["outputs"]) == 1
    assert fetched["thumbnails"] and panel.outputs(other_machine)[0][:8] == b"\x89PNG\r\n\x1a\n"
    page = json.dumps(panel.list(source="all"))
    assert KEY not in page and KEY.split(":")[1] not in page


def test_fal_history_pages_by_cursor_and_says_when_it_is_out_of_reach(client, fake_fal, gateway_fal, tmp_path):
    ids = {seeded(fake_fal) for _ in range(5)}
    panel, seen, cursor = panel_for(client), set(), None
    for _ in range(5):
        page = panel.list(limit=2, cursor=cursor, source="fal")
        seen |= {j["request_id"] for j in page["jobs"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert panel.list(source="local")["fal_history"] == {"available": True, "reason": None}
    gateway = persistent_client(config_for(gateway_fal, "gateway"), tmp_path / "gw", retry=FAST_RETRY)
    for source in ("all", "local"):  # said with every page: the panel offers fal's history only where it works
        page = panel_for(gateway).list(source=source)
        assert page["fal_history"]["available"] is False and "gateway" in page["fal_history"]["reason"]
    with pytest.raises(BadRequest):
        panel.list(cursor="not a cursor")


def test_cancel_from_the_panel_reaches_fal_and_fetch_of_a_running_job_is_refused(client, fake_fal):
    fake_fal.queue_time = 30.0
    uri = "data:image/png;base64," + base64.b64encode(encode_png(gradient(8, 8))).decode()
    handle = client.queue.submit("fal-ai/qwen-image-edit-plus", {"prompt": "p", "image_urls": [uri]})
    client.history.record(handle.request_id, status="running", endpoint=handle.endpoint)
    panel = panel_for(client)
    with pytest.raises(Conflict):
        panel.fetch(handle.request_id)
    answer = panel.cancel(handle.request_id)
    assert answer["answer"] == "CANCELLATION_REQUESTED" and answer["job"]["status"] == "cancelled"
    assert [r for r, _ in fake_fal.cancel_requests] == [handle.request_id]
    with pytest.raises(Conflict):
        panel.cancel(handle.request_id)


def test_the_cli_prints_the_history_as_lines_and_json(client, fake_fal, tmp_path):
    mine = client.edit(QwenEditRequest(prompt="cli", seed=9), [IMAGE], timeout=30).handle.request_id
    other = seeded(fake_fal)
    env = {"FAL_KEY": KEY, "FAL_QUEUE_BASE": fake_fal.url, "FAL_REST_BASE": fake_fal.url, "FAL_API_BASE": fake_fal.url,
           "FAL_QWEN_EDIT_STATE_DIR": str(tmp_path / "state"), "FAL_QWEN_EDIT_CONFIG": "/nonexistent",
           "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = lambda *args: subprocess.run([sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--json", *args],
                                       env=env, capture_output=True, text=True, timeout=60)
    lines = run("--history")
    assert lines.returncode == 0 and mine in lines.stdout and other not in lines.stdout
    both = json.loads(run("--history", "--from-fal", "--json").stdout)
    flags = {j["request_id"]: j["known_locally"] for j in both["jobs"]}
    assert flags[mine] is True and flags[other] is False
    assert KEY not in lines.stdout + lines.stderr


def test_thumbnails_are_made_after_the_edit_returns_and_a_reader_waits_for_them(client, fake_fal, monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.edit import job_records
    release, threads = threading.Event(), []
    real = job_records.thumbnails_of

    def slow(images):
        threads.append(threading.current_thread().name)
        assert release.wait(10)
        return real(images)

    monkeypatch.setattr(job_records, "thumbnails_of", slow)
    heard = []
    client.history.on_change(lambda job: heard.append(panel_for(client).view(job)))  # as ComfyUI's websocket does
    outcome = client.edit(QwenEditRequest(prompt="later", seed=6), [IMAGE], timeout=30)
    rid = outcome.handle.request_id
    assert not list((client.history.directory / "thumbs").glob(f"{rid}_*"))  # returned before they were made
    later = threading.Timer(0.2, release.set)
    later.start()
    job = client.history.get(rid)  # waits for them
    assert job["status"] == "done" and job["thumbnails"] == 1 and threads[0].startswith("fal-thumbs")
    assert client.history.thumbnail_path(rid, 0) is not None and heard[-1]["thumbnails"]
    later.join()


def test_thumbnails_past_the_pending_bound_are_made_by_the_caller(tmp_path, monkeypatch):
    history = JobHistory(tmp_path / "history")
    gate = threading.Event()
    ids = [rid() for _ in range(history_module.PENDING_THUMBNAILS + 1)]
    for request_id in ids:
        history.record(request_id, status="done")
    made_on = {}

    def make(request_id):
        def thumbs():
            made_on[request_id] = threading.current_thread().name
            if request_id != ids[-1]:
                assert gate.wait(10)
            return [b"RIFF....WEBP"]
        return thumbs

    for request_id in ids:
        history.add_thumbnails_later(request_id, make(request_id))
    assert made_on[ids[-1]] == threading.current_thread().name  # the worker was behind
    gate.set()
    assert all(history.get(request_id)["thumbnails"] == 1 for request_id in ids)
    assert made_on[ids[0]].startswith("fal-thumbs")


def test_thumbnails_on_their_way_are_kept_when_the_process_exits(tmp_path):
    folder, request_id = tmp_path / "history", rid()
    script = ("import sys, time\nfrom pathlib import Path\n"
              "from comfyui_fal_qwen_edit.nodes.fal.state.history import JobHistory\n"
              "h = JobHistory(Path(sys.argv[1]))\n"
              "h.record(sys.argv[2], status='done')\n"
              "h.add_thumbnails_later(sys.argv[2], lambda: time.sleep(0.5) or [b'RIFF....WEBP'])\n")
    subprocess.run([sys.executable, "-c", script, str(folder), request_id], check=True, timeout=60)
    assert JobHistory(folder).get(request_id)["thumbnails"] == 1


def test_the_price_book_reads_its_file_again_only_when_it_changed(tmp_path, monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.platform.price_book import FROM_FAL, PriceBook
    path = tmp_path / "prices.json"
    now = time.time()
    path.write_text(json.dumps({"fal-ai/x": {"unit_price": 0.02, "fetched_at": now}}))
    book = PriceBook(path)
    assert book.unit_price("fal-ai/x") == (0.02, FROM_FAL)
    reads = []
    monkeypatch.setattr(json, "loads", lambda text, real=json.loads: reads.append(1) or real(text))
    assert book.unit_price("fal-ai/x") == (0.02, FROM_FAL) and reads == []
    path.write_text(json.dumps({"fal-ai/x": {"unit_price": 0.025, "fetched_at": now}}))
    assert book.unit_price("fal-ai/x") == (0.025, FROM_FAL) and reads == [1]
