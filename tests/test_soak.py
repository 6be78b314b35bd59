"""A bounded soak: 200 edits, 8 at a time, ~10 % of requests hit by random faults.

The client is the one ComfyUI uses (journal and result cache on disk). Every
edit ends in the right image or a clear error, no edit is ever submitted twice,
and threads, sockets and memory come back to where they were: stated bounds
below, checked while the client is still open (ComfyUI never closes it) and
after it is closed.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import persistent_client
from comfyui_fal_qwen_edit.nodes.fal.base.errors import FalError
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.queue.client import WaitSettings

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

EDITS, CONCURRENCY, FAULT_RATE = 200, 8, 0.10
# Stated bounds. Sockets: the pool holds at most 16 per origin (queue + CDN). Memory: Python heap
# (tracemalloc) still allocated after the run, outcomes dropped and the in-process fake server's
# jobs, recordings and files forgotten: what the client keeps per edit (its upload cache holds a
# hash and a URL per distinct input, ~0.3 KB) must stay under this for 200 edits.
POOL_PER_ORIGIN, HEAP_GROWTH_MB = 16, 1.0
CHAOS = [Fault(route, "status", code, headers={"Retry-After": "0"})
         for route in ("submit", "status", "result", "token", "upload", "files") for code in (429, 503)] + \
    [Fault("status", "status", 502), Fault("result", "status", 504), Fault("files", "drop"),
     Fault("stream", "drop"), Fault("stream", "stall", delay=5.0), Fault("status", "malformed"),
     Fault("submit", "reset_after"), Fault("submit", "status", 502), Fault("files", "status", 410),
     Fault("files", "not_image")]


def client_sockets(*server_ports: int) -> int:
    """Our open TCP sockets whose peer is the fake server (its own sockets share this process)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) in server_ports and fields[9] in inodes:
                count += 1
    return count


def client_threads() -> int:
    return sum(t.name.startswith("fal-") for t in threading.enumerate())


# The fake server runs in this process: what its handler threads hold (a request's buffers while a
# stalled stream is still open, its own job table) is the server's, not the client's.
SERVER_SIDE = [tracemalloc.Filter(False, pattern, all_frames=True)
               for pattern in ("*/fakefal/*", "*/socketserver.py", "*/http/server.py", tracemalloc.__file__)]


def heap_mb(server: FakeFal) -> float:
    """The client's Python heap: every traced block but those allocated by the in-process server."""
    server.forget()
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(SERVER_SIDE)
    return sum(trace.size for trace in snapshot.traces) / 1e6


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_soak_200_edits_with_random_faults(tmp_path):
    images = [gradient(16, 16, seed=i) for i in range(EDITS)]
    server = FakeFal(key=KEY, run_time=0.05, max_lifetime=300).start()
    tracemalloc.start(16)  # deep enough to tell the server's threads from the client's
    try:
        client = persistent_client(config_for(server), tmp_path, retry=FAST_RETRY,
                                   wait_settings=WaitSettings(stream_idle_check=0.3))
        warm_up = gradient(16, 16, seed=-1 % 2**32)  # not one of the run's inputs: forget() drops its upload
        client.edit(QwenEditRequest(prompt="warm-up", seed=0), [torch.from_numpy(warm_up)[None]])
        Image.init()  # Pillow imports its decoders when first shown a non-image: one-time, not growth
        ports = tuple(int(url.rsplit(":", 1)[1]) for url in (server.url, server.cdn_url))
        heap = heap_mb(server)
        threads, open_sockets, memory = client_threads(), client_sockets(*ports), rss_mb()
        server.set_chaos(FAULT_RATE, CHAOS, seed=1234)

        def one(i: int):
            try:
                outcome = client.edit(QwenEditRequest(prompt="p", seed=1000 + i),
                                      [torch.from_numpy(images[i])[None]], timeout=30)
                return i, outcome, None
            except FalError as exc:
                return i, None, exc

        started = time.monotonic()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            results = list(pool.map(one, range(EDITS)))
        elapsed = time.monotonic() - started
        server.set_chaos(0, [])

        by_seed = {}
        for job in server.jobs.values():
            seed = job.arguments.get("seed")
            by_seed[seed] = by_seed.get(seed, 0) + 1
        assert max(by_seed.values()) == 1, "an edit was submitted twice"
        failures = []
        for i, outcome, error in results:
            if outcome is not None:
                assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(images[i]))
            else:
                message = str(error)
                assert len(message) > 20 and KEY not in message
                job_ids = [rid for rid, job in server.jobs.items() if job.arguments.get("seed") == 1000 + i]
                if job_ids and "may have been accepted" not in message:
                    assert job_ids[0] in message, message  # a paid job is always named
                failures.append(type(error).__name__)
        # "After the run": the caller has dropped its outcomes and errors (a kept exception's
        # traceback keeps its frames' sockets alive, as any Python exception would).
        del results, outcome, error
        submissions, requests_seen = server.submissions, len(server.requests)
        deadline = time.monotonic() + 5  # abandoned calls end within their stall; none should be left
        while client_threads() > threads and time.monotonic() < deadline:
            time.sleep(0.05)
        open_threads, pool_sockets = client_threads(), client_sockets(*ports)
        heap_after = heap_mb(server)  # once no call is left: a stalled read's buffers are not growth
        client.close()
        gc.collect()
        fired = len(server.chaos_fired)
        print(f"\nsoak: {EDITS} edits in {elapsed:.1f}s, {fired} faults injected in {requests_seen} requests, "
              f"{EDITS - len(failures)} images, "
              f"{len(failures)} clear errors {sorted(set(failures))}, submissions {submissions}; "
              f"client threads {threads}->{open_threads} (open) ->{client_threads()} (closed), client sockets "
              f"{open_sockets}->{pool_sockets} (pooled) ->{client_sockets(*ports)} (closed), Python heap "
              f"{heap:.2f}->{heap_after:.2f} MB, RSS {memory:.0f}->{rss_mb():.0f} MB")
        assert fired >= FAULT_RATE * requests_seen / 2 and requests_seen >= 4 * EDITS  # the chaos really happened
        assert len(failures) < EDITS * 0.15
        assert open_threads <= threads and client_threads() <= threads  # no reader, upload or download thread left
        assert pool_sockets <= 2 * POOL_PER_ORIGIN and client_sockets(*ports) == 0
        assert heap_after - heap < HEAP_GROWTH_MB
        assert rss_mb() - memory < 150  # the whole process, fake server's 200 jobs included
    finally:
        tracemalloc.stop()
        server.stop()
