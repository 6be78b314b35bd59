"""A bounded soak: 200 edits, 8 at a time, ~10 % of requests hit by random faults.

Every edit ends in the right image or a clear error, no edit is ever submitted
twice, and threads, sockets and memory come back to where they were.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.errors import FalError
from comfyui_fal_qwen_edit.nodes.fal.qwen import QwenEditRequest

from conftest import KEY, gradient, to_u8

EDITS, CONCURRENCY, FAULT_RATE = 200, 8, 0.10
CHAOS = [Fault(route, "status", code, headers={"Retry-After": "0"})
         for route in ("submit", "status", "result", "token", "upload", "files") for code in (429, 503)] + \
    [Fault("status", "status", 502), Fault("result", "status", 504), Fault("files", "drop"),
     Fault("stream", "drop"), Fault("stream", "stall", delay=5.0), Fault("status", "malformed"),
     Fault("submit", "reset_after"), Fault("submit", "status", 502), Fault("files", "status", 410),
     Fault("files", "not_image")]


def client_sockets(server_port: int) -> int:
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
            if int(fields[2].split(":")[1], 16) == server_port and fields[9] in inodes:
                count += 1
    return count


def client_threads() -> int:
    return sum(t.name.startswith("fal-") for t in threading.enumerate())


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_soak_200_edits_with_random_faults(make_client):
    images = [gradient(16, 16, seed=i) for i in range(EDITS)]
    server = FakeFal(key=KEY, run_time=0.05, max_lifetime=300).start()
    try:
        client = make_client(server, stream_idle_check=0.3)
        client.edit(QwenEditRequest(prompt="warm-up", seed=0), [torch.from_numpy(images[0])[None]])
        gc.collect()
        port = int(server.url.rsplit(":", 1)[1])
        threads, open_sockets, memory = client_threads(), client_sockets(port), rss_mb()
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
        pool_sockets = client_sockets(port)  # idle keep-alive connections, at most the pool size

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
        client.close()
        gc.collect()
        fired = len(server.chaos_fired)
        print(f"\nsoak: {EDITS} edits in {elapsed:.1f}s, {fired} faults injected, {EDITS - len(failures)} images, "
              f"{len(failures)} clear errors {sorted(set(failures))}, submissions {server.submissions}; "
              f"client threads {threads}->{client_threads()}, client sockets {open_sockets}->{pool_sockets} "
              f"(pooled) ->{client_sockets(port)} (closed), RSS {memory:.0f}->{rss_mb():.0f} MB")
        assert fired >= 100  # the chaos really happened (~10 % of well over 1000 requests)
        assert len(failures) < EDITS * 0.15
        assert client_threads() <= threads  # no SSE reader, download or upload thread left behind
        assert pool_sockets <= 16 and client_sockets(port) == 0  # bounded by the pool, all closed
        assert rss_mb() - memory < 150
    finally:
        server.stop()
