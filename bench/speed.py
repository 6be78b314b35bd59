"""Sections 1, 2 and 4: PNG encode, client overhead of one edit, fan-out."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
import torch

from comfyui_fal_qwen_edit.nodes.fal.media import images

import breakdown
from clients import PackClient, ReferenceClient, decode_plain, pack_png, pillow_png, png_uri
from common import (ENDPOINT, PROMPT, SIZES, Server, ServerCpu, fresh, image_tensor, job_between, monotonic,
                    precomputed_edits, process_cpu)
from figures import Report, ratios


# ------------------------------------------------------------------ 1. encode
def encode(report: Report, rounds: int) -> None:
    """IMAGE tensor -> PNG bytes, the path upload_images takes (split_batch + encode_png).
    Pillow's default encoder is timed in the same rounds for the ratio."""
    for mp in (0.25, 1.0, 4.0):
        width, height = SIZES[mp]
        tensor = image_tensor(width, height, seed=7)
        for _ in range(3):  # warm-up: thread pool, and malloc settling on reusing big blocks
            pack_png(tensor)
        pillow_png(tensor)
        ours, pillow = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            data = pack_png(tensor)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = pillow_png(tensor)
            pillow.append(time.perf_counter() - start)
        target = ("<=", 40.0) if mp == 1.0 else None
        report.add("1 encode", f"encode {mp:g} MP (pack)", "ms", ours, scale=1e3, target=target,
                   note=f"{width}x{height}: {len(data) / 1e6:.2f} MB PNG (Pillow default: "
                        f"{len(reference) / 1e6:.2f} MB)" if mp == 1.0 else "")
        report.add("1 encode", f"encode {mp:g} MP, Pillow default / pack", "x", ratios(pillow, ours))


ZLIB_SETTINGS = [(1, zlib.Z_RLE, "level 1 RLE (pack)"), (1, zlib.Z_HUFFMAN_ONLY, "level 1 Huffman only"),
                 (1, zlib.Z_DEFAULT_STRATEGY, "level 1"), (3, zlib.Z_DEFAULT_STRATEGY, "level 3"),
                 (6, zlib.Z_DEFAULT_STRATEGY, "level 6"), (9, zlib.Z_DEFAULT_STRATEGY, "level 9")]
UPLINK_MBIT = 50.0  # a typical home upload link, for the encode + send estimate


def _on_white(width: int, height: int) -> torch.Tensor:
    """A product shot: the photo-like picture in the middle 23 % of a white frame."""
    frame = torch.ones((1, height, width, 3))
    top, left = height // 5, width * 3 // 10
    frame[:, top:height - top, left:width - left] = image_tensor(width, height, seed=7)[:, top:height - top,
                                                                                      left:width - left]
    return frame


def zlib_sweep(report: Report, rounds: int) -> None:
    """The measurement behind images.ZLIB_LEVEL/ZLIB_STRATEGY: the pack's encoder at each
    setting on two 1 MP inputs (photo-like with noise, and a photo on white), time and
    size, and encode + send at UPLINK_MBIT."""
    width, height = SIZES[1.0]
    inputs = {"photo": image_tensor(width, height, seed=7), "on white": _on_white(width, height)}
    chosen = (images.ZLIB_LEVEL, images.ZLIB_STRATEGY)
    try:
        for kind, tensor in inputs.items():
            for level, strategy, label in ZLIB_SETTINGS:
                images.ZLIB_LEVEL, images.ZLIB_STRATEGY = level, strategy
                pack_png(tensor)  # warm-up
                times = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    data = pack_png(tensor)
                    times.append(time.perf_counter() - start)
                send = len(data) * 8 / (UPLINK_MBIT * 1e6)
                report.add("1 encode", f"zlib {label}: encode 1 MP {kind}", "ms", times, scale=1e3,
                           note=f"{len(data) / 1e6:.2f} MB, encode + send at {UPLINK_MBIT:g} "
                                f"Mbit/s {1e3 * (statistics.median(times) + send):.0f} ms")
    finally:
        images.ZLIB_LEVEL, images.ZLIB_STRATEGY = chosen


# ------------------------------------------------------------------ 2. overhead
def overhead(report: Report, server: Server, clients: dict, latency: float, rounds: int) -> None:
    """One edit, 3 x 1 MP in, 1 x 1 MP out; overhead = wall - the server's configured time.

    The clients take turns within a round (the order rotates each round), and
    round 0 is a warm-up. ``pre`` is start -> the server has the job, ``post``
    is the job's completion -> the client holds the decoded output. The pack's edits are also
    timed phase by phase (breakdown.py; the hook is off during the other clients' turns).
    """
    width, height = SIZES[1.0]
    inputs = [image_tensor(width, height, seed) for seed in (1, 2, 3)]
    names = list(clients)
    over = {n: [] for n in names}
    pre = {n: [] for n in names}
    post = {n: [] for n in names}
    phased = {n: [] for n in names if isinstance(clients[n], PackClient)}
    clock = breakdown.PhaseClock()
    server.fake.run_time = latency
    for round_no in range(rounds + 1):
        order = names[round_no % len(names):] + names[:round_no % len(names)]
        for name in order:
            images = fresh(inputs, round_no * 16 + names.index(name))
            with clock.on() if name in phased else contextlib.nullcontext():
                clock.take()
                start, counter = monotonic(), time.perf_counter()
                output = clients[name].edit(images)
                end, counter_end = monotonic(), time.perf_counter()
            getattr(clients[name], "settle", lambda: None)()
            if round_no and name in phased:
                phased[name].append(breakdown.attribute(clock.take(), counter, counter_end))
            job = job_between(server.fake, start, end)
            if output.shape != (1, height, width, 3):
                raise RuntimeError(f"{name} returned shape {output.shape}")
            if abs(float(output[0, 5, 5, 0]) - (1.0 - float(images[0][0, 5, 5, 0]))) > 1.5 / 255:
                raise RuntimeError(f"{name} returned an output that is not the inverted input")
            if round_no:
                over[name].append(end - start - latency)
                pre[name].append(job.submitted_at - start)
                post[name].append(end - job.completed_at)
        server.fake.forget()
    for name in names:
        report.add("2 overhead", f"overhead {name}", "ms", over[name], scale=1e3,
                   note=f"start->job submitted {statistics.median(pre[name]) * 1e3:.0f} ms, "
                        f"job completed->output decoded {statistics.median(post[name]) * 1e3:.0f} ms (medians)")
    for name, rows in phased.items():
        breakdown.add_rows(report, "2 overhead", name, rows, latency)
    pack = "pack (data URIs)"
    if "ref (b)" in over:
        report.add("2 overhead", f"{pack} / ref (b)", "x", ratios(over[pack], over["ref (b)"]),
                   target=("<=", 1.2))
        report.add("2 overhead", "pack (storage, default) / ref (b)", "x",
                   ratios(over["pack (storage, default)"], over["ref (b)"]))
    if "fal-client (c)" in over:
        report.add("2 overhead", f"{pack} / fal-client (c)", "x", ratios(over[pack], over["fal-client (c)"]),
                   target=("<=", 0.9))
        report.add("2 overhead", "pack (storage, default) / fal-client (c)", "x",
                   ratios(over["pack (storage, default)"], over["fal-client (c)"]), target=("<=", 0.9))


# ------------------------------------------------------------------ 4. fan-out
class PipelinedReference:
    """The fan-out with the slot handling done the other way round, as a yardstick:
    frames are encoded in order on a 2-thread pool (wave 2 encodes while wave 1
    runs), at most ``concurrency`` jobs are in flight on the server, and a slot
    is refilled the moment a job completes (download + decode outside the slot).
    Bare ``requests``, 50 ms polling, like the reference client."""

    def __init__(self, reference: ReferenceClient, threads: int = 16):
        self.ref = reference
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=threads)
        self.ref.session.mount("https://", adapter)
        self.ref.session.mount("http://", adapter)

    def run(self, batch: torch.Tensor, concurrency: int) -> list[np.ndarray]:
        session, base = self.ref.session, self.ref.base
        slots = threading.Semaphore(concurrency)
        with ThreadPoolExecutor(max_workers=2) as encoder, ThreadPoolExecutor(max_workers=len(batch)) as pool:
            uris = [encoder.submit(lambda i=i: png_uri(pack_png(batch[i:i + 1]))) for i in range(len(batch))]

            def one(uri) -> np.ndarray:
                body = {"prompt": PROMPT, "image_urls": [uri.result()]}
                with slots:
                    job = session.post(f"{base}/{ENDPOINT}", json=body).json()
                    while session.get(job["status_url"]).json()["status"] != "COMPLETED":
                        time.sleep(self.ref.POLL)
                    result = session.get(job["response_url"]).json()
                return decode_plain(session.get(result["images"][0]["url"]).content)

            return list(pool.map(one, uris))


def _schedule(fake, start: float) -> tuple[float, float]:
    """(last submit after start, median slot hand-off) from the server's job records.

    A hand-off pairs the k-th completion of wave 1 with the k-th submit of
    wave 2: how long a freed slot stood empty before its next job reached the server."""
    with fake._cond:
        jobs = list(fake.jobs.values())
    submits = sorted(j.submitted_at for j in jobs)
    completions = sorted(j.completed_at for j in jobs)
    half = len(jobs) // 2
    gaps = [s - c for s, c in zip(submits[half:], completions[:half])]
    return submits[-1] - start, statistics.median(gaps)


def fanout(report: Report, server: Server, rounds: int) -> None:
    """16 edits of 1 s server time from one IMAGE batch [16,H,W,3], concurrency 8.

    1 MP: this pack with data URIs (the transport the bare client uses), the
    pack's default (fal storage uploads), and the pipelined bare client as a
    yardstick; 0.25 MP: the pack with data URIs, to show what the image size costs.
    Then the pack's default once more with the fake's image work precomputed,
    which shows how much of the wall time the fake's CPU on the same cores costs.
    """
    server.fake.run_time = 1.0
    cpu = ServerCpu.install()
    packs = {"data URIs": PackClient(server, "data_uri"), "storage": PackClient(server, "storage")}
    best = PipelinedReference(ReferenceClient(server))
    runners = {"pack (data URIs)": lambda frames: packs["data URIs"].edit_each(frames, 8),
               "pack (storage, default)": lambda frames: packs["storage"].edit_each(frames, 8),
               "pipelined bare client": lambda frames: best.run(frames, 8)}
    isolated = "pack (storage, default), fake's image work precomputed"
    runners[isolated] = runners["pack (storage, default)"]
    plan = [(1.0, list(runners)[:3]), (0.25, ["pack (data URIs)"]), (1.0, [isolated])]
    try:
        for mp, names in plan:
            width, height = SIZES[mp]
            with precomputed_edits(width, height) if names == [isolated] else contextlib.nullcontext():
                _fanout_rows(report, server, {name: runners[name] for name in names}, mp, rounds, cpu)
    finally:
        for pack in packs.values():
            pack.close()
        best.ref.close()


def _fanout_rows(report: Report, server: Server, runners: dict, mp: float, rounds: int, cpu) -> None:
    width, height = SIZES[mp]
    batch = torch.cat([image_tensor(width, height, seed) for seed in range(16)])
    names = list(runners)
    walls: dict[str, list[float]] = {name: [] for name in names}
    lasts: dict[str, list[float]] = {name: [] for name in names}
    handoffs: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for round_no in range(rounds + 1):  # round 0 warms up (connections, TLS, threads)
        for index, name in enumerate(names):
            frames = batch.clone()
            frames[:, 0, 0, 0] = (round_no * 4 + index) / 255.0
            cpu_start, server_start = process_cpu(), cpu.seconds
            start = monotonic()
            outs = runners[name](frames)
            wall = monotonic() - start
            last_submit, handoff = _schedule(server.fake, start)
            if len(outs) != 16:
                raise RuntimeError(f"fan-out {name} returned {len(outs)} results")
            if round_no:
                walls[name].append(wall)
                lasts[name].append(last_submit)
                handoffs[name].append(handoff)
                cpus[name].append((process_cpu() - cpu_start, cpu.seconds - server_start))
            server.fake.forget()
    label = f"fan-out 16x1s conc8 {mp:g} MP"
    for name in names:
        note = ("yardstick: a slot is refilled as soon as its job completes, wave 2 is "
                "encoded while wave 1 runs; ") if name.startswith("pipelined") else ""
        total = statistics.median(c[0] for c in cpus[name])
        fake = statistics.median(c[1] for c in cpus[name])
        note += (f"16th job reached the server {statistics.median(lasts[name]):.2f} s after the start; "
                 f"a freed slot stood empty {statistics.median(handoffs[name]) * 1e3:.0f} ms before "
                 f"its next job arrived; CPU per run {total:.2f} s on {os.cpu_count()} cores, of which "
                 f"the fake server {fake:.2f} s (medians)")
        report.add("4 fan-out", f"{label}: {name}", "s", walls[name], note=note,
                   target=("<=", 2.3) if name in ("pack (data URIs)", "pack (storage, default)") and mp == 1.0
                   else None)
    if "pipelined bare client" in walls:
        report.add("4 fan-out", f"{label}: pack (data URIs) / pipelined", "x",
                   ratios(walls["pack (data URIs)"], walls["pipelined bare client"]))
