"""Shared pieces of the benchmark: test pictures, the fake server, the pack's config.

Everything talks to 127.0.0.1 only. The fake server runs in this process, so
``srv.jobs[id].completed_at`` and ``time.monotonic()`` here share one clock.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config

# Shaped like a real fal key (id:secret); only ever sent to the fake server.
KEY = "0b1e2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d:fedcba9876543210fedcba9876543210"
ENDPOINT = "fal-ai/qwen-image-edit-plus"
PROMPT = "invert the colours"
SIZES = {0.25: (512, 512), 1.0: (1024, 1024), 2.0: (1600, 1250), 4.0: (2048, 2048)}  # MP -> (w, h)


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth colour gradients plus mild noise, float32 [H,W,3] 0..1."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= max(width - 1, 1)
    y /= max(height - 1, 1)
    phase = rng.random(3, dtype=np.float32) * 6.28
    base = np.stack([0.5 + 0.4 * np.sin(3.0 * x + phase[0]) * np.cos(2.0 * y),
                     0.2 + 0.6 * y,
                     0.5 + 0.4 * np.cos(2.5 * (x + y) + phase[2])], axis=-1)
    base += rng.normal(0.0, 0.015, size=base.shape).astype(np.float32)  # sensor-like noise
    return np.clip(base, 0.0, 1.0).astype(np.float32)


def image_tensor(width: int, height: int, seed: int = 0) -> torch.Tensor:
    """A ComfyUI IMAGE: float32 torch tensor [1, H, W, 3]."""
    return torch.from_numpy(picture(width, height, seed))[None]


def fresh(images: list[torch.Tensor], round_no: int) -> list[torch.Tensor]:
    """Copies that differ in one pixel, so no content-hash upload cache can hit."""
    out = []
    for image in images:
        copy = image.clone()
        copy[0, 0, 0, 0] = (round_no % 251) / 255.0
        out.append(copy)
    return out


@dataclass
class Server:
    fake: FakeFal
    verify: str | bool      # what a requests/httpx client needs to trust it
    tls: bool
    note: str = ""

    def close(self) -> None:
        self.fake.stop()
        if isinstance(self.verify, str):
            shutil.rmtree(os.path.dirname(self.verify), ignore_errors=True)


def lighten_fake_outputs() -> None:
    """Make the in-process fake encode its output PNGs with the pack's fast encoder.

    The fake's own encoder is Pillow at its default level, ~180 ms of CPU per
    1 MP output. The fake runs in this process on the same 2 cores as the
    client under test, so with 8-16 jobs at once its CPU (not the client)
    would decide the fan-out figure. Every client gets the same bytes-for-
    pixels PNGs either way (same decoded pixels, about the same size).
    """
    from comfyui_fal_qwen_edit.nodes.fakefal import edit
    from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png

    pillow_encode = edit.encode

    def encode(img, output_format: str):
        if output_format != "png":
            return pillow_encode(img, output_format)
        _, content_type, ext = edit.FORMATS["png"]
        return encode_png(np.asarray(img)), content_type, ext

    edit.encode = encode


def start_server(run_time: float) -> Server:
    """The fake fal server over https (throwaway certificate) when possible, else http.

    https is what fal-client needs; every client is then measured over the
    same https server. Clients trust a bundle of certifi's CAs (what requests
    and httpx load for a real fal host) plus the fake's certificate, so a new
    TLS connection costs what it costs against fal. The bundle is exported
    through the variables requests, httpx and fal-client read, because
    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's
    ``verify``.
    """
    try:
        fake = FakeFal(key=KEY, run_time=run_time, tls=True, max_lifetime=900.0).start()
    except Exception as exc:  # noqa: BLE001 - neither cryptography nor openssl: plain http
        fake = FakeFal(key=KEY, run_time=run_time, max_lifetime=900.0).start()
        return Server(fake, True, False, f"TLS unavailable ({exc}); plain http, fal-client skipped")
    bundle = os.path.join(tempfile.mkdtemp(prefix="bench-ca-"), "bundle.pem")
    with open(bundle, "w", encoding="ascii") as out:
        try:
            import certifi
            with open(certifi.where(), encoding="ascii") as cas:
                out.write(cas.read() + "\n")
        except (ImportError, OSError):
            pass  # only the fake's certificate: new connections are cheaper than against fal
        with open(fake.cert_path, encoding="ascii") as cert:
            out.write(cert.read())
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        os.environ[name] = bundle
    os.environ.pop("SSL_CERT_DIR", None)
    return Server(fake, bundle, True)


def pack_config(server: Server, upload: str = "data_uri"):
    """The pack's FalConfig pointed at the fake server (no config file, no real key)."""
    environ = {"HOME": "/nonexistent", "FAL_QWEN_EDIT_CONFIG": "/nonexistent/config.ini",
               "FAL_KEY": KEY, "FAL_QUEUE_BASE": server.fake.url, "FAL_REST_BASE": server.fake.url,
               "FAL_UPLOAD": upload}
    return load_config(environ=environ)


def job_between(fake: FakeFal, start: float, end: float):
    """The one job submitted in [start, end] (runs are sequential within a round)."""
    with fake._cond:
        jobs = [j for j in fake.jobs.values() if start <= j.submitted_at <= end]
    if len(jobs) != 1:
        raise RuntimeError(f"expected one job in the window, found {len(jobs)}")
    return jobs[0]


def requests_for(fake: FakeFal, request_id: str, until: float) -> int:
    """HTTP requests that named this job (status, stream, result, cancel) up to ``until``."""
    with fake._cond:
        return sum(1 for r in fake.requests if request_id in r.path and r.t <= until)


def monotonic() -> float:
    return time.monotonic()


class ServerCpu:
    """CPU seconds the in-process fake spends: its connection threads and its edits, each
    timed with ``time.thread_time``. The client's share is the process's CPU minus this.
    Installed once per process; read ``seconds`` before and after a run."""

    seconds = 0.0
    _installed = False
    _lock = threading.Lock()

    @classmethod
    def install(cls) -> type["ServerCpu"]:
        if not cls._installed:
            from comfyui_fal_qwen_edit.nodes.fakefal import server as fake_server
            fake_server._HTTPServer.finish_request = cls._metered(fake_server._HTTPServer.finish_request)
            fake_server.run_edit = cls._metered(fake_server.run_edit)
            cls._installed = True
        return cls

    @classmethod
    def _metered(cls, function):
        def metered(*args, **kwargs):
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with cls._lock:
                    cls.seconds += time.thread_time() - start
        return metered


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


@contextlib.contextmanager
def precomputed_edits(width: int, height: int):
    """The fake's edits return one PNG made beforehand instead of decoding, inverting and
    encoding each job's input: what the fan-out costs the client when the server's image
    work is not on the same 2 cores (as with real fal). Clients get valid outputs of the
    usual size; only their pixels no longer depend on the input."""
    from comfyui_fal_qwen_edit.nodes.fakefal import server as fake_server
    from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png

    png = encode_png(picture(width, height, seed=99))
    original = fake_server.run_edit

    def ready_made(job, load, store) -> None:
        try:
            name = f"{job.request_id}.png"
            job.result = {"images": [{"url": store(name, png, "image/png"), "width": width, "height": height,
                                      "content_type": "image/png", "file_name": name, "file_size": len(png)}],
                          "seed": job.arguments.get("seed", 1), "prompt": job.arguments["prompt"],
                          "timings": {"inference": job.run_time}, "has_nsfw_concepts": [False]}
        finally:
            job.ready.set()

    fake_server.run_edit = ServerCpu._metered(ready_made)  # counted like the edits it stands in for
    try:
        yield
    finally:
        fake_server.run_edit = original
