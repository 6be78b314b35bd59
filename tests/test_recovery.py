"""Never pay twice, never lose a result: journal resume, result cache, result by request id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import Fault
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.base.errors import FalTimeoutError, JobFailedError, SubmitUncertainError
from comfyui_fal_qwen_edit.nodes.fal.state.journal import Journal
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.state.result_cache import ResultCache

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

IMAGE = gradient(24, 32, seed=5)


def client(server, state, **kw):
    return persistent_client(config_for(server), state, retry=FAST_RETRY, **kw)


def request(seed=7, **kw):
    return QwenEditRequest(prompt="make it night", seed=seed, **kw)


def test_timeout_leaves_a_journal_entry_and_a_rerun_resumes_it(fake_fal, tmp_path):
    fake_fal.run_time = 1.0
    with client(fake_fal, tmp_path) as first:
        with pytest.raises(FalTimeoutError) as info:
            first.edit(request(), [torch.from_numpy(IMAGE)[None]], timeout=0.3)
    [entry] = Journal(tmp_path / "journal").entries()
    assert entry["request_id"] in str(info.value) and fake_fal.submissions == 1
    with client(fake_fal, tmp_path) as second:  # a new process would build exactly this
        outcome = second.edit(request(), [torch.from_numpy(IMAGE)[None]])
    assert outcome.source == "resumed" and outcome.handle.request_id == entry["request_id"]
    assert fake_fal.submissions == 1 and len(fake_fal.uploads) == 1
    assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))
    assert Journal(tmp_path / "journal").entries() == []


def test_failed_job_is_not_resumed(fake_fal, tmp_path):
    fake_fal.fail_job = "boom"
    with client(fake_fal, tmp_path) as c, pytest.raises(JobFailedError):
        c.edit(request(), [torch.from_numpy(IMAGE)[None]])
    assert Journal(tmp_path / "journal").entries() == []


def test_identical_edit_is_served_from_cache_across_clients(fake_fal, tmp_path):
    with client(fake_fal, tmp_path) as c:
        first = c.edit(request(), [torch.from_numpy(IMAGE)[None]])
    seen = len(fake_fal.requests)
    with client(fake_fal, tmp_path) as c:
        again = c.edit(request(), [torch.from_numpy(IMAGE.copy())[None]])
        assert again.source == "cache" and again.handle.request_id == first.handle.request_id
        assert len(fake_fal.requests) == seen  # not one request: no upload, no submit, no download
        assert np.array_equal(again.images, first.images)
        assert again.info()["request_id"] == first.handle.request_id
        fresh = c.edit(request(), [torch.from_numpy(IMAGE)[None]], fresh=True)
        assert fresh.source == "job" and fake_fal.submissions == 2
        other_seed = c.edit(request(seed=8), [torch.from_numpy(IMAGE)[None]])
        assert other_seed.source == "job" and fake_fal.submissions == 3


def test_without_a_seed_every_run_is_a_new_job(fake_fal, tmp_path):
    with client(fake_fal, tmp_path) as c:
        c.edit(request(seed=None), [torch.from_numpy(IMAGE)[None]])
        c.edit(request(seed=None), [torch.from_numpy(IMAGE)[None]])
    assert fake_fal.submissions == 2 and not list((tmp_path / "results").glob("*"))


def test_cache_is_bounded_and_drops_least_recently_used(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=2500)

    def used_at(name, when):  # explicit times: no sleeps, whatever the filesystem's clock grain
        os.utime(tmp_path / name / "result.json", (when, when))

    cache.put("a", "req-a", {"images": []}, [bytes(1000)])
    used_at("a", 1000)
    cache.put("b", "req-b", {"images": []}, [bytes(1000)])
    used_at("b", 2000)
    cache.put("c", "req-c", {"images": []}, [bytes(1000)])
    assert cache.get("a") is None  # 3 x ~1.1 KB > 2.5 KB: the least recently used went
    used_at("c", 3000)
    assert cache.get("b").request_id == "req-b"  # used now: c becomes the least recently used
    cache.put("d", "req-d", {"images": []}, [bytes(1000)])
    assert cache.get("c") is None and cache.get("b") is not None and cache.get("d") is not None


def test_cache_survives_broken_entries_and_leftovers(tmp_path):
    cache = ResultCache(tmp_path, max_bytes=10_000)
    cache.put("k", "req-k", {"images": []}, [b"x"])
    (tmp_path / "k" / "output_0.bin").unlink()  # half of an entry gone
    assert cache.get("k") is None and not (tmp_path / "k").exists()
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "output_0.bin").write_bytes(bytes(100))  # a write that never finished
    os.utime(tmp_path / "half" / "output_0.bin", (1000, 1000))
    cache = ResultCache(tmp_path, max_bytes=10_000)  # the next session's first put scans the cache
    cache.put("new", "req-new", {"images": []}, [b"y"])
    assert not (tmp_path / "half").exists() and cache.get("new").request_id == "req-new"


def test_a_put_scans_the_cache_only_when_it_may_be_full(tmp_path, monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.state import result_cache
    cache = ResultCache(tmp_path, max_bytes=10_000)
    scans = []
    original = ResultCache.prune
    monkeypatch.setattr(ResultCache, "prune", lambda self: (scans.append(1), original(self)))
    for i in range(6):  # ~9.6 KB in all: under the bound
        cache.put(f"k{i}", f"req-{i}", {"images": []}, [bytes(1500)])
    assert len(scans) == 1  # the first put of the process only
    cache.put("k6", "req-6", {"images": []}, [bytes(1500)])  # past the bound: scanned, pruned to 90 %
    assert len(scans) == 2
    assert 7_000 < sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) <= 9_000
    monkeypatch.setattr(result_cache, "RESCAN_SECONDS", 0.0)  # other processes may have written meanwhile
    cache.put("late", "req-late", {"images": []}, [b"z"])
    assert len(scans) == 3


def test_cache_writes_and_prunes_from_many_threads_at_once(tmp_path, caplog):
    cache = ResultCache(tmp_path, max_bytes=20_000)  # room for ~4 entries: every put prunes
    errors = []

    def writer(n):
        try:
            for i in range(25):
                cache.put(f"{n}-{i}", f"req-{n}-{i}", {"images": []}, [bytes(4000)])
                cache.get(f"{n}-{i - 1}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and "could not store" not in caplog.text
    assert sum(f.stat().st_size for f in tmp_path.rglob("*.bin")) <= 20_000 + 8 * 4000  # in-flight puts


def test_result_by_request_id_is_free(fake_fal, tmp_path):
    with client(fake_fal, tmp_path) as c:
        first = c.edit(request(seed=None, num_images=2), [torch.from_numpy(IMAGE)[None]])
    with client(fake_fal, tmp_path / "other") as c:
        fetched = c.result_by_id(first.handle.request_id)
    assert np.array_equal(fetched.images, first.images) and fake_fal.submissions == 1
    assert fetched.info()["request_id"] == first.handle.request_id


def test_submit_reply_broken_midway_is_recovered_from_its_header(fake_fal, tmp_path):
    fake_fal.add_fault(Fault("submit", "drop"))
    with client(fake_fal, tmp_path) as c:
        outcome = c.edit(request(), [torch.from_numpy(IMAGE)[None]])
    assert fake_fal.submissions == 1 and np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(IMAGE))


def test_submit_reset_after_acceptance_is_reported_not_resent(fake_fal, tmp_path):
    fake_fal.add_fault(Fault("submit", "reset_after"))
    fake_fal.add_fault(Fault("platform_requests", "status", code=503, times=None))  # no history to look in
    with client(fake_fal, tmp_path) as c, pytest.raises(SubmitUncertainError, match="dashboard"):
        c.edit(request(), [torch.from_numpy(IMAGE)[None]])
    assert fake_fal.submissions == 1


def test_killed_process_then_same_edit_resumes_the_paid_job(fake_fal, tmp_path):
    fake_fal.run_time = 3.0
    source = tmp_path / "in.png"
    Image.fromarray(to_u8(IMAGE)).save(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env.update(FAL_KEY=KEY, FAL_QUEUE_BASE=fake_fal.url, FAL_REST_BASE=fake_fal.url, FAL_API_BASE=fake_fal.url, HOME=str(tmp_path),
               FAL_QWEN_EDIT_STATE_DIR=str(tmp_path / "state"), FAL_QWEN_EDIT_CONFIG="/nonexistent.ini")
    command = [sys.executable, "-m", "comfyui_fal_qwen_edit.nodes.fal.cli.main", "--json", str(source), "--prompt", "p",
               "--seed", "3", "--out", str(tmp_path / "out")]
    doomed = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = Journal(tmp_path / "state" / "journal")
    deadline = time.monotonic() + 20
    while not any(e.get("request_id") for e in journal.entries()) and time.monotonic() < deadline:
        time.sleep(0.02)  # killed once the request id is on disk, as a crash mid-wait would find it
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    assert fake_fal.submissions == 1 and len(Journal(tmp_path / "state" / "journal").entries()) == 1
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["source"] == "resumed" and fake_fal.submissions == 1
    assert np.array_equal(np.asarray(Image.open(info["files"][0])), 255 - to_u8(IMAGE))
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["source"] == "cache" and fake_fal.submissions == 1
    result_of = subprocess.run(command[:4] + ["--result-of", info["request_id"], "--out", str(tmp_path / "r")],
                               env=env, capture_output=True, text=True, timeout=60)
    assert result_of.returncode == 0, result_of.stderr
    fetched = json.loads(result_of.stdout)["files"][0]
    assert np.array_equal(np.asarray(Image.open(fetched)), 255 - to_u8(IMAGE))
    everything = done.stdout + done.stderr + again.stdout + again.stderr + result_of.stdout + result_of.stderr
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert KEY not in everything and KEY.encode() not in stored and KEY.split(":")[1].encode() not in stored
