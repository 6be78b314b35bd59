"""Section 3: completion detection.

How long after the fake server marks a job COMPLETED the client holds the
result JSON (``time.monotonic()`` here vs ``srv.jobs[id].completed_at``, one
clock, one process), and how many HTTP requests per second the client sends
per job while it waits (status, stream and result requests that name the job,
from submit to result).

The phase of completion relative to a poller's schedule decides what it
sees, so each job's server time is ``latency + phase``, with phases spread
evenly (stratified, jittered) over one poll period of the slowest poller in
the row: 1 s for the fast clients, 5 s for ComfyUI's pattern.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from clients import ComfyPollClient, pack_png, png_uri
from common import PROMPT, Server, image_tensor, monotonic, requests_for
from figures import Report


def _phases(count: int, span: float, rng: random.Random) -> list[float]:
    phases = [(i + rng.random()) * span / count for i in range(count)]
    rng.shuffle(phases)
    return phases


class _Sampler:
    def __init__(self, server: Server, latency: float):
        self.fake = server.fake
        self.latency = latency
        self.lock = threading.Lock()  # the fake reads run_time at submit: one submit at a time
        tiny = png_uri(pack_png(image_tensor(64, 64, seed=5)))
        self.arguments = {"prompt": PROMPT, "image_urls": [tiny]}

    def one(self, client, phase: float) -> tuple[float, float]:
        with self.lock:
            self.fake.run_time = self.latency + phase
            request_id, wait = client.submit(self.arguments)
        result = wait()
        done = monotonic()
        if not result.get("images"):
            raise RuntimeError(f"no images in the result of {request_id}")
        with self.fake._cond:
            job = self.fake.jobs[request_id]
        count = requests_for(self.fake, request_id, done)
        return done - job.completed_at, count / (done - job.submitted_at)

    def many(self, client, phases: list[float], concurrency: int) -> list[tuple[float, float]]:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench-detect") as pool:
            return list(pool.map(lambda p: self.one(client, p), phases))


def detection(report: Report, server: Server, clients: dict, latency: float, samples: int,
              comfy_samples: int, concurrency: int = 4, seed: int = 1234) -> None:
    """``clients``: name -> object with ``submit(arguments) -> (request_id, wait)``.

    ComfyUI's 5 s pattern runs in the background meanwhile (all its jobs at
    once: it sends one request per 5 s, so it loads nothing), which keeps the
    whole section near (latency + 10 s).
    """
    rng = random.Random(seed)
    sampler = _Sampler(server, latency)
    comfy = ComfyPollClient(server)
    background = ThreadPoolExecutor(max_workers=max(1, comfy_samples), thread_name_prefix="bench-comfy")
    comfy_futures = [background.submit(sampler.one, comfy, phase)
                     for phase in _phases(comfy_samples, ComfyPollClient.INTERVAL, rng)]
    results = {}
    try:
        for name, client in clients.items():
            results[name] = sampler.many(client, _phases(samples, 1.0, rng), concurrency)
        results["ComfyUI core (5 s poll, simulated)"] = [f.result() for f in comfy_futures]
    finally:
        background.shutdown(wait=True)
        comfy.close()
        server.fake.forget()
    for name, rows in results.items():
        lat = [r[0] for r in rows]
        rate = [r[1] for r in rows]
        # The targets are for the pack's normal path, the status stream; the polling fallback
        # trades detection delay for fewer requests by design and is printed for comparison.
        is_pack_stream = name.startswith("pack") and "SSE" in name
        report.add("3 detect", f"detect p50 {name}", "ms", lat, scale=1e3,
                   target=("<=", 30.0) if is_pack_stream else None)
        report.add("3 detect", f"detect p95 {name}", "ms", lat, scale=1e3, stat="p95")
        report.add("3 detect", f"req/s per job {name}", "1/s", rate,
                   target=("<=", 2.0) if is_pack_stream else None)
