"""Keys stay where they belong; only http(s) is fetched; TLS is verified; downloads are capped."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.media.downloads import download_images, fetch_bytes
from comfyui_fal_qwen_edit.nodes.fal.base.errors import DownloadError, ImageDecodeError, TransportError
from comfyui_fal_qwen_edit.nodes.fal.media.images import decode_image, encode_png
from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import FalEditClient
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.wire.transport import RetryPolicy, Transport

from conftest import FAST_RETRY, KEY, config_for, gradient, to_u8

PACKAGE = Path(__file__).resolve().parents[1] / "nodes"


def test_no_code_turns_tls_verification_off():
    offenders = [str(path) for path in PACKAGE.rglob("*.py")
                 if "verify=False" in path.read_text() or "CERT_NONE" in path.read_text()]
    assert offenders == []
    assert Transport(None).session.verify is True


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (or cryptography) for a test cert")
def test_self_signed_https_is_refused_unless_its_cert_is_trusted():
    with FakeFal(key=KEY, tls=True, max_lifetime=60).start() as server:
        config = config_for(server)
        with FalEditClient(config, retry=RetryPolicy(attempts=2, base_delay=0.01)) as untrusting:
            with pytest.raises(TransportError, match="SSLError"):
                untrusting.edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]])
        assert server.submissions == 0
        with FalEditClient(config, retry=FAST_RETRY, verify=server.cert_path) as trusting:
            outcome = trusting.edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]])
        assert outcome.images.shape == (1, 8, 8, 3) and server.submissions == 1


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "gopher://x/"])
def test_only_http_and_data_urls_are_fetched(url):
    with pytest.raises(DownloadError, match="only http"):
        fetch_bytes(Transport(None), url)


def test_a_result_pointing_at_a_local_file_is_refused(fake_fal, make_client):
    fake_fal.add_fault(Fault("result", "status", 200, times=None,
                             body={"images": [{"url": "file:///etc/passwd"}], "seed": 1}))
    with pytest.raises(DownloadError, match="only http") as info:
        make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]])
    assert list(fake_fal.jobs)[0] in str(info.value)


def test_downloads_are_size_and_pixel_capped(fake_fal, make_client):
    client = make_client(fake_fal)
    outcome = client.edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(64, 64))[None]])
    url = outcome.result.images[0].url
    with pytest.raises(DownloadError, match="cap"):
        fetch_bytes(client.transport, url, max_bytes=100)
    data = fetch_bytes(client.transport, url)
    with pytest.raises(ImageDecodeError, match="safety cap"):
        decode_image(data, max_pixels=64 * 63)
    with pytest.raises(DownloadError, match="cap"):
        fetch_bytes(client.transport, "data:image/png;base64," + "A" * 400, max_bytes=100)


def test_gateway_token_only_goes_to_the_gateway(make_client, key_scan, caplog):
    """Outputs hosted elsewhere (a CDN) are fetched without the token."""
    with FakeFal(key="cdn-own-key", max_lifetime=60).start() as cdn, \
            FakeFal(key=KEY, mode="gateway", max_lifetime=60).start() as gateway:
        image = gradient(12, 12)
        cdn_client = FalEditClient(config_for(cdn, FAL_KEY="cdn-own-key"), retry=FAST_RETRY)
        hosted = cdn_client.edit(QwenEditRequest(prompt="p"), [torch.from_numpy(image)[None]])
        cdn_client.close()
        elsewhere = hosted.result.images[0].url
        gateway.add_fault(Fault("result", "status", 200, times=None, body={"images": [{"url": elsewhere}]}))
        caplog.set_level(logging.DEBUG)
        outcome = make_client(gateway, mode="gateway").edit(QwenEditRequest(prompt="p"),
                                                            [torch.from_numpy(image)[None]])
        assert np.array_equal(to_u8(outcome.images[0]), 255 - to_u8(image))
        cdn_download = [r for r in cdn.requests if r.path.startswith("/files/")][-1]
        assert cdn_download.header("Authorization") is None
        assert all(r.header("Authorization") == f"Bearer {KEY}" for r in gateway.requests)
        key_scan(str(outcome.info()))


def origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


@pytest.mark.parametrize("use_sse", [True, False], ids=["sse", "poll"])
@pytest.mark.parametrize("mode", ["fal", "gateway"])
def test_output_downloads_never_carry_the_key(mode, use_sse, make_client, key_scan):
    """The fake serves outputs from its own origin, as fal serves them from fal.media: every
    download must arrive there without Authorization, every queue call with it."""
    with FakeFal(key=KEY, mode=mode, run_time=0.3, max_lifetime=60).start() as server:
        assert origin(server.cdn_url) != origin(server.url)
        config = config_for(server, mode)
        assert not config.may_send_key_to(server.cdn_url + "/files/x.png")  # a different origin to the client
        image = gradient(12, 10)
        client = make_client(server, mode=mode, use_sse=use_sse)
        outcome = client.edit(QwenEditRequest(prompt="p", num_images=2), [torch.from_numpy(image)[None]])
        assert np.array_equal(to_u8(outcome.images[1]), 255 - to_u8(image))
        urls = [i.url for i in outcome.result.images]
        assert all(url.startswith(server.cdn_url + "/files/") for url in urls)
        # The Load Image from URL node fetches through the same keyed transport.
        download_images(client.transport, urls[:1])

        cdn = [r for r in server.requests if r.origin == server.cdn_url]
        assert sorted(r.path for r in cdn) == sorted([urlsplit(u).path for u in urls] + [urlsplit(urls[0]).path])
        assert [r.path for r in cdn if r.header("Authorization") is not None] == []  # (paths: never print a key)

        queue = [r for r in server.requests if r.origin == server.url and "/requests/" in r.path]
        asked = {r.path.rsplit("/requests/", 1)[1].partition("/")[2] for r in queue}
        assert {"", "status/stream" if use_sse else "status"} <= asked  # result and status were fetched
        scheme = "Key" if mode == "fal" else "Bearer"
        assert [r.path for r in queue if r.header("Authorization") != f"{scheme} {KEY}"] == []
        key_scan(str(outcome.info()))


def test_debug_logs_of_a_whole_edit_hold_no_key(fake_fal, make_client, key_scan, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # restored at teardown, unlike setLevel
    fake_fal.run_time, fake_fal.logs = 0.2, ("working",)
    outcome = make_client(fake_fal).edit(QwenEditRequest(prompt="p", seed=3),
                                         [torch.from_numpy(gradient(8, 8))[None]])
    assert any("urllib3" in r.name for r in caplog.records)  # the noisiest level really was captured
    key_scan(str(outcome.info()), repr(outcome), repr(fake_fal.jobs))


def test_png_encoding_writes_no_metadata():
    data = encode_png(gradient(4, 4))
    assert b"tEXt" not in data and b"iTXt" not in data and b"zTXt" not in data


# Each inner test leaks the key one way; key_scan must catch every one of them (at the test's
# own call, or at teardown when it never called the scan), and let the clean one pass.
LEAKY_TESTS = '''
import logging, os, sys
from conftest import KEY
log = logging.getLogger("fal_qwen_edit")

def test_message(key_scan):
    log.debug("sending %s", KEY)

def test_logged_traceback(key_scan):
    try:
        raise ValueError("bad key " + KEY)
    except ValueError:
        log.exception("upload failed")          # the message itself is clean

def test_exc_text(key_scan):
    record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "failed", (), None)
    record.exc_text = "Traceback ...: " + KEY  # a handler's cached formatting
    log.handle(record)

def test_stdout(key_scan):
    print("key:", KEY)

def test_stderr(key_scan):
    sys.stderr.write(KEY + "\\n")

def test_file_descriptor(key_scan):
    os.write(2, KEY.encode())                  # C code or a child process writing to fd 2

def test_with_capsys(key_scan, capsys):
    print(KEY)

def test_chained_exception_passed_in(key_scan):
    try:
        try:
            raise ValueError(KEY)
        except ValueError as cause:
            raise RuntimeError("wrapped") from cause
    except RuntimeError as exc:
        key_scan(exc)

def test_clean(key_scan, capsys):
    print("nothing secret")
    log.warning("all fine")
    key_scan("text")
    assert capsys.readouterr().out == "nothing secret\\n"   # output survives the scan
'''


def test_key_scan_catches_tracebacks_and_output(tmp_path):
    (tmp_path / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text())
    (tmp_path / "test_leaky.py").write_text(LEAKY_TESTS)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    found = re.findall(r"^(PASSED|FAILED|ERROR) test_leaky\.py::(\w+)", run.stdout, re.M)
    caught = {name for kind, name in found if kind != "PASSED"}  # failed in the call or at teardown
    assert caught == set(re.findall(r"^def (test_\w+)", LEAKY_TESTS, re.M)) - {"test_clean"}, \
        run.stdout[-3000:].replace(KEY.split(":")[1], "<SECRET>")  # the inner tests printed it
    assert ("PASSED", "test_clean") in found and "the key leaked into" in run.stdout
