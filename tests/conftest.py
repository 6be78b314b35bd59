"""Shared fixtures: a fake fal server on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

import logging
import os
import sys
import traceback

import numpy as np
import pytest
import requests

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config
from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import FalEditClient
from comfyui_fal_qwen_edit.nodes.fal.queue.client import WaitSettings
from comfyui_fal_qwen_edit.nodes.fal.wire.transport import RetryPolicy

# Looks like a real fal key (id:secret) so a leak of it would be unmistakable in any scan.
KEY = "4f1c2d3e-5a6b-7c8d-9e0f-a1b2c3d4e5f6:0123456789abcdef0123456789abcdef"
FAST_RETRY = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def fake_fal():
    server = FakeFal(key=KEY, max_lifetime=120.0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fal():
    """The fake fal server for a test module's edits; no bug of the fake's own may pass unseen."""
    server = FakeFal(key=KEY, max_lifetime=120).start()
    yield server
    server.stop()
    assert server.errors == []


@pytest.fixture
def gateway_fal():
    server = FakeFal(key=KEY, mode="gateway", max_lifetime=120.0).start()
    try:
        yield server
    finally:
        server.stop()


# Raw-HTTP fixtures for the fake server's own tests (tests/test_fake_server*.py).
@pytest.fixture
def make():
    """Start FakeFal servers with any settings; each is stopped, and must have logged no error."""
    servers: list[FakeFal] = []

    def _make(**kw) -> FakeFal:
        servers.append(FakeFal(**kw).start())
        return servers[-1]

    yield _make
    for srv in servers:
        srv.stop()
    assert [e for srv in servers for e in srv.errors] == []  # no bug inside the fake itself


@pytest.fixture
def http():
    with requests.Session() as s:
        yield s



def unconfigured_machine(monkeypatch, tmp_path):
    """This process's environment as a machine with no fal server configured: no FAL_ variable, HOME in
    ``tmp_path``, and an empty config.ini there (returned) that a test may write."""
    for name in [name for name in os.environ if name.startswith("FAL_")]:
        monkeypatch.delenv(name)
    ini = tmp_path / "config.ini"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FAL_QWEN_EDIT_CONFIG", str(ini))
    return ini


def client_environ(server: FakeFal, mode: str | None = None) -> dict[str, str]:
    """The environment a user of ``server`` sets: fal direct, a gateway of any shape, or a proxy
    (no key at all: the proxy holds it). ``mode`` defaults to the server's own."""
    mode = mode or server.mode
    if mode.startswith("gateway"):
        return {"FAL_GATEWAY_URL": server.url, "FAL_GATEWAY_TOKEN": KEY}
    if mode == "proxy":
        return {"FAL_PROXY_URL": server.proxy_url}
    return {"FAL_KEY": KEY, "FAL_QUEUE_BASE": server.url, "FAL_REST_BASE": server.url, "FAL_API_BASE": server.url}


def config_for(server: FakeFal, mode: str = "fal", **overrides):
    environ = {"HOME": "/nonexistent", "FAL_QWEN_EDIT_CONFIG": "/nonexistent/config.ini"}
    if mode != "fal":
        environ.update(client_environ(server, mode))
    else:
        environ.update(FAL_KEY=KEY, FAL_QUEUE_BASE=server.url, FAL_REST_BASE=server.url, FAL_API_BASE=server.url)
    environ.update(overrides)
    return load_config(environ=environ)


@pytest.fixture
def make_client():
    clients = []

    def make(server: FakeFal, mode: str = "fal", retry: RetryPolicy = FAST_RETRY, **wait) -> FalEditClient:
        client = FalEditClient(config_for(server, mode), retry=retry, wait_settings=WaitSettings(**wait))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def leaked(texts) -> list[str]:
    """The texts that contain the key (whole, or its secret half)."""
    return [text for text in texts if KEY in text or KEY.split(":")[1] in text]


def record_texts(record: logging.LogRecord) -> list[str]:
    """Everything a log handler could write for a record: the message, and any
    traceback or stack attached to it (a key in an exception message would
    reach a log file through these, not through getMessage())."""
    try:
        texts = [record.getMessage()]
    except Exception:  # noqa: BLE001 - bad %-args must not hide the raw parts
        texts = [str(record.msg), repr(record.args)]
    if isinstance(record.exc_info, tuple) and record.exc_info[1] is not None:
        texts.append(logging.Formatter().formatException(record.exc_info))
    texts += [t for t in (record.exc_text, record.stack_info) if t]
    return texts


def exception_text(exc: BaseException) -> str:
    """str, repr and the full traceback (chained causes included) of an exception."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


@pytest.fixture
def key_scan(request, caplog):
    """Scan for the key: call it with extra texts (or exceptions) during the test, and
    it scans again at teardown whether called or not. Scanned: every log record at DEBUG
    (message, traceback, stack) and everything the test wrote to stdout/stderr."""
    caplog.set_level(logging.DEBUG)
    # capfd sees output of C code and child processes too; a test that asked
    # for capsys gets it instead (pytest refuses both at once).
    capture = request.getfixturevalue("capsys" if "capsys" in request.fixturenames else "capfd")
    output: list[str] = []

    def drain() -> None:
        out, err = capture.readouterr()
        output.extend((out, err))
        # Written back, so the test's own readouterr() and pytest's report still show it.
        sys.stdout.write(out)
        sys.stderr.write(err)

    def scan(*texts) -> None:
        drain()
        records = [r for phase in ("setup", "call") for r in caplog.get_records(phase)]
        everything = [t for record in records for t in record_texts(record)] + output
        everything += [exception_text(t) if isinstance(t, BaseException) else str(t) for t in texts]
        found = leaked(everything)
        # Show where, with the key masked: the assertion text ends up in reports and CI logs.
        masked = [t.replace(KEY, "<KEY>").replace(KEY.split(":")[1], "<SECRET>")[-300:] for t in found[:3]]
        assert not found, f"the key leaked into {len(found)} text(s): {masked}"

    yield scan
    scan()


def gradient(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    """A deterministic test picture, float32 0..1, [H, W, C]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x / max(w - 1, 1), y / max(h - 1, 1), (x + y) / max(h + w - 2, 1), np.ones_like(x)], -1)
    noise = rng.random((h, w, 4), dtype=np.float32) * 0.1
    return np.clip(base + noise, 0, 1)[:, :, :channels].astype(np.float32)


def to_u8(array) -> np.ndarray:
    return (np.clip(np.asarray(array), 0, 1) * 255 + 0.5).astype(np.uint8)
