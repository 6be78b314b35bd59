"""Section 6: real photos over a real uplink.

Inputs are photo-like images of 1, 4, 12 and 24 MP (nodes/fakefal/photos.py: smooth light and
waves plus mostly-shared sensor noise; ~2 bytes per pixel as PNG, like camera photos), three per
edit, as ComfyUI IMAGE tensors. The fake fal server's receive side is throttled by a token bucket
on the socket read (nodes/fakefal/throttle.py, a 64 KB receive buffer): the client meets real TCP
backpressure at 20 or 100 Mbit/s. Figures, per size, link and path (fal storage uploads, or a
gateway's inline data URIs):

* ``queue->submitted``: from calling the edit to the job's arrival at the fake (seconds);
* ``bytes sent``: request bodies the fake read during the edit (MB);
* ``submitted / wire``: queue->submitted over the time those bytes take on the link (bytes x 8 / rate):
  1.0 would be a link busy from the call to the job's arrival;
* ``machine pace`` (the rows with a target): pace.py's one-core sample before each run, so a slow
  stretch of the host's cores can be told from a slower pack;
* ``today``: the path before input_resize existed (every frame encoded to PNG first, hashed, then
  uploaded in parallel), rebuilt from the pack's own pieces; ``off`` and ``fit model``: the pack now.

Then: upload encodings side by side (bytes and encode time), parallel vs sequential uploads on a
thin link, outputs downloaded at 20/100 Mbit/s (decoded as they arrive vs after all), and the peak
memory of an edit of three 24 MP inputs (a child process; the fake stays in this one).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fakefal.photos import synthetic_photo
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config
from comfyui_fal_qwen_edit.nodes.fal.media.inputs import UPLOAD_FORMATS, encode, prepare, prepare_all
from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import FalEditClient
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.models.sizing import VAE_AREA

from common import ENDPOINT, KEY, PROMPT
from pace import pace_ms

SECTION = "6 uplink"
SIZES = {1: (1224, 816), 4: (2448, 1632), 12: (4240, 2832), 24: (6000, 4000)}  # MP -> 3:2 (w, h)
PATHS = {"storage": "storage", "gateway data URIs": "data_uri"}
# The rows with a target are a median of this many runs, like every other figure: the same edit's CPU
# time varied 1.41-2.12 s between runs on the 2-core bench machine (its cores' speed, not the code), and
# each run of these rows takes ~2.5 s; the other rows (40 s each at 12 MP 'off') stay at one run.
TARGET_RUNS = 3


def photos(megapixels: int, count: int = 3) -> list[torch.Tensor]:
    """``count`` different IMAGE tensors of that size: one photo at as many exposures, 2 levels apart,
    so they stay different after a downscale (no upload is deduplicated) and compress alike."""
    width, height = SIZES[megapixels]
    base = torch.from_numpy(synthetic_photo(width, height, seed=megapixels).astype(np.float32) / 255.0)[None]
    return [(base + (i - count // 2) * 2.0 / 255.0).clamp_(0.0, 1.0) for i in range(count)]


def client_for(fake: FakeFal, upload: str) -> FalEditClient:
    environ = {"HOME": "/nonexistent", "FAL_QWEN_EDIT_CONFIG": "/nonexistent/config.ini", "FAL_KEY": KEY,
               "FAL_QUEUE_BASE": fake.url, "FAL_REST_BASE": fake.url, "FAL_UPLOAD": upload}
    return FalEditClient(load_config(environ=environ))


def today(client: FalEditClient, images, seed: int) -> None:
    """The path before input_resize: encode every frame to PNG, hash them, upload in parallel, submit."""
    pngs = client.encode_frames(images)
    digests = [hashlib.sha256(png).hexdigest() for png in pngs]
    urls = client.upload_pngs(pngs, digests=digests)
    client.queue.submit(ENDPOINT, QwenEditRequest(prompt=PROMPT, image_urls=urls, seed=seed).to_arguments())


def one_run(fake: FakeFal, client: FalEditClient, images, how: str, seed: int) -> tuple[float, float]:
    """(seconds from the call to the job's arrival, MB of request bodies the fake read)."""
    fake.forget()
    client.uploader._urls.clear()  # every run uploads: a URL remembered from a run before is not a fair start
    started = time.monotonic()
    if how == "today":
        today(client, images, seed)
    else:
        client.edit(QwenEditRequest(prompt=PROMPT, seed=seed), images, input_resize=how, timeout=600)
    [job] = list(fake.jobs.values())
    sent = sum(len(r.body) for r in fake.requests)
    return job.submitted_at - started, sent / 1e6


def queue_to_submitted(report, quick: bool) -> None:
    plan = [(20, 1), (20, 4), (20, 12), (20, 24), (100, 1), (100, 4), (100, 12), (100, 24)]
    if quick:
        plan = [(20, 1), (20, 12)]
    cache: dict[int, list] = {}
    seed = 0
    for mbps, megapixels in plan:
        fake = FakeFal(key=KEY, uplink_mbps=mbps, run_time=0.05, size_rule="pipeline", max_lifetime=3600).start()
        try:
            images = cache.setdefault(megapixels, photos(megapixels))
            for path, upload in PATHS.items():
                with client_for(fake, upload) as client:
                    hows = ["today", "off", "fit model"]
                    slow = megapixels >= 12 and mbps == 20  # 50-140 MB at 2.5 MB/s: minutes per run
                    if quick or (slow and megapixels == 24):
                        hows = ["fit model"] if megapixels > 1 else hows
                    elif slow and path != "storage":
                        hows = ["off", "fit model"]
                    for how in hows:
                        targeted = (megapixels, mbps, how) == (12, 20, "fit model")
                        runs, paces = [], []
                        for _ in range(TARGET_RUNS if targeted else 1):
                            seed += 1
                            if targeted:
                                paces.append(pace_ms())
                            runs.append(one_run(fake, client, images, how, seed))
                        seconds, megabytes = [s for s, _ in runs], runs[-1][1]
                        name = f"3x{megapixels} MP @{mbps} Mbit/s, {path}, {how}"
                        target = ("<=", 3.0 if path == "storage" else 4.0) if targeted else None
                        report.add(SECTION, f"{name}: queue->submitted", "s", seconds, target=target)
                        report.add(SECTION, f"{name}: bytes sent", "MB", [megabytes])
                        wire = megabytes * 8 / mbps
                        report.add(SECTION, f"{name}: submitted / wire", "x", [s / wire for s in seconds],
                                   target=("<=", 1.25) if targeted else None,
                                   note=f"{megabytes:.2f} MB take {wire:.2f} s at {mbps} Mbit/s")
                        if paces:
                            report.add(SECTION, f"{name}: machine pace before each run", "ms", paces,
                                       note="pace.py: one core's Lanczos of a fixed strip; higher = slower cores")
        finally:
            fake.stop()
    report.notes.append("6 uplink: 3:2 photo-like inputs (nodes/fakefal/photos.py); 'today' is the path before "
                        "input_resize (all PNGs encoded, then uploaded); one run per row, "
                        f"{TARGET_RUNS} for the rows with a target")


def encodings(report, rounds: int) -> None:
    """Bytes and encode time of each upload format, at the size fit model sends and at 12 MP."""
    for label, megapixels in (("1 MP (what fit model sends)", 1), ("12 MP (off)", 12)):
        width, height = SIZES[megapixels]
        image = prepare(synthetic_photo(width, height, seed=7), None)
        for upload_format in UPLOAD_FORMATS:
            times, size = [], 0
            for _ in range(rounds):
                began = time.perf_counter()
                data, _ = encode(image, upload_format)
                times.append(time.perf_counter() - began)
                size = len(data)
            report.add(SECTION, f"upload encoding {upload_format}, {label}: encode", "ms", times, scale=1000.0,
                       note=f"{size / 1e6:.2f} MB")


def parallel_uploads(report) -> None:
    """Three fit-model inputs on a 20 Mbit/s link: uploaded on 3 threads vs one after another."""
    images = photos(12)
    prepared = prepare_all(images, VAE_AREA)
    fake = FakeFal(key=KEY, uplink_mbps=20, max_lifetime=600).start()
    try:
        with client_for(fake, "storage") as client:
            for how in ("parallel", "sequential"):
                client.uploader._urls.clear()
                began = time.monotonic()
                if how == "parallel":
                    client.upload_prepared(prepared)
                else:
                    for image in prepared:
                        client.upload_prepared([image])
                report.add(SECTION, f"3 fit-model uploads @20 Mbit/s, {how}", "s", [time.monotonic() - began])
    finally:
        fake.stop()


def batch_pipe(report) -> None:
    """Per-frame batch mode on a thin pipe: 6 frames of 12 MP, fit model, 2 jobs of 1 s at a time,
    20 Mbit/s. The uplink is kept full when the frames' bytes take about as long as the run until
    the last submit: the next frames upload while jobs run."""
    frames = torch.cat(photos(12, count=6))
    fake = FakeFal(key=KEY, uplink_mbps=20, run_time=1.0, size_rule="pipeline", max_lifetime=600).start()
    try:
        with client_for(fake, "storage") as client:
            began = time.monotonic()
            client.edit_each(QwenEditRequest(prompt=PROMPT, seed=77), frames, concurrency=2)
            last_submit = max(job.submitted_at for job in fake.jobs.values()) - began
            sent = sum(len(r.body) for r in fake.requests)
        on_the_wire = sent * 8 / 20e6
        report.add(SECTION, "per-frame batch 6x12 MP @20 Mbit/s, fit model: uplink busy until the last submit", "%",
                   [100 * on_the_wire / last_submit],
                   note=f"{sent / 1e6:.1f} MB take {on_the_wire:.2f} s of the {last_submit:.2f} s to the last submit")
    finally:
        fake.stop()


def downloads(report, quick: bool) -> None:
    """Job done -> outputs decoded, for 1-4 outputs of ~1 MP at 20 and 100 Mbit/s."""
    from comfyui_fal_qwen_edit.nodes.fal.edit import pipeline
    from comfyui_fal_qwen_edit.nodes.fal.media.downloads import decode_all, download_all

    def after_all(transport, urls, *, waiter=None, request_id=None, on_bytes=None):  # before decode-as-they-arrive
        blobs = download_all(transport, urls, waiter=waiter, request_id=request_id)
        if on_bytes is not None:
            on_bytes(blobs)
        return blobs, decode_all(blobs, urls, request_id=request_id)

    image = photos(1)[0]
    counts = (1, 4) if quick else (1, 2, 4)
    original = pipeline.download_decoded
    for mbps in (20, 100):
        fake = FakeFal(key=KEY, downlink_mbps=mbps, run_time=0.05, size_rule="pipeline", max_lifetime=600).start()
        try:
            with client_for(fake, "data_uri") as client:
                for count in counts:
                    for how, fetch in (("decode as they arrive", pipeline.download_decoded),
                                       ("decode after all", after_all)):
                        pipeline.download_decoded = fetch
                        try:
                            fake.forget()
                            outcome = client.edit(QwenEditRequest(prompt=PROMPT, seed=900 + count + mbps,
                                                                  num_images=count), [image], fresh=True)
                        finally:
                            pipeline.download_decoded = original
                        [job] = list(fake.jobs.values())
                        size = job.result["images"][0]["file_size"] / 1e6
                        report.add(SECTION, f"{count} outputs @{mbps} Mbit/s down, {how}: download+decode", "s",
                                   [outcome.timings["download"]], note=f"{size:.1f} MB each")
        finally:
            fake.stop()


def memory(report) -> None:
    """Peak RSS of an edit of three 24 MP IMAGE tensors, in a child process, against 3x the tensors."""
    fake = FakeFal(key=KEY, size_rule="pipeline", run_time=0.05, max_lifetime=900).start()
    try:
        for how in ("off", "fit model"):
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", fake.url, how],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"memory child failed: {proc.stderr[-800:]}")
            result = json.loads(proc.stdout)
            bound = 3 * result["tensors_mb"]
            report.add(SECTION, f"peak RSS, edit of 3x24 MP inputs, {how}", "MB", [result["peak_mb"]],
                       target=("<=", bound), note=f"IMAGE tensors {result['tensors_mb']:.0f} MB; "
                                                  f"above them {result['peak_mb'] - result['tensors_mb']:.0f} MB")
    finally:
        fake.stop()


def _memory_child(url: str, how: str) -> dict:
    width, height = SIZES[24]
    tile = synthetic_photo(width // 4, height // 4, seed=3).astype(np.float32) / 255.0
    images = []
    for i in range(3):  # built in place, so the peak below is the tensors and the edit, not their making
        image = torch.empty((1, height, width, 3), dtype=torch.float32)
        for row in range(4):
            for col in range(4):
                image[0, row * (height // 4):(row + 1) * (height // 4), col * (width // 4):(col + 1) * (width // 4)] = \
                    torch.from_numpy(np.roll(tile, i + row + col, axis=1))
        images.append(image)
    tensors_mb = sum(image.numel() * 4 for image in images) / 2**20
    environ = {"HOME": "/nonexistent", "FAL_QWEN_EDIT_CONFIG": "/nonexistent/config.ini", "FAL_KEY": KEY,
               "FAL_QUEUE_BASE": url, "FAL_REST_BASE": url}
    with FalEditClient(load_config(environ=environ)) as client:
        client.edit(QwenEditRequest(prompt=PROMPT, seed=5), images, input_resize=how, timeout=600)
    # VmHWM, not ru_maxrss: a child started from the (large) bench process inherits its ru_maxrss.
    with open("/proc/self/status", encoding="ascii") as status:
        peak = int(next(line.split()[1] for line in status if line.startswith("VmHWM:"))) / 1024
    return {"tensors_mb": tensors_mb, "peak_mb": peak}


def run(report, quick: bool, rounds: int) -> None:
    encodings(report, rounds)
    parallel_uploads(report)
    queue_to_submitted(report, quick)
    batch_pipe(report)
    downloads(report, quick)
    if not quick:
        memory(report)


if __name__ == "__main__":
    if sys.argv[1] == "--memory-child":
        print(json.dumps(_memory_child(sys.argv[2], sys.argv[3])))
