"""TLS trust: new https connections share one SSLContext per CA bundle instead of
parsing the bundle each time (trust.py), and verification is exactly as strict."""

from __future__ import annotations

import os
import shutil
import ssl

import pytest

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.wire import sending
from comfyui_fal_qwen_edit.nodes.fal.wire import transport
from comfyui_fal_qwen_edit.nodes.fal.base.errors import TransportError
from comfyui_fal_qwen_edit.nodes.fal.edit.pipeline import FalEditClient

from conftest import FAST_RETRY, KEY, config_for
from test_queue import ENDPOINT, arguments

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None and not __import__("importlib").util.find_spec(
    "cryptography"), reason="needs openssl or cryptography for the fake server's certificate")


@pytest.fixture
def tls_fal():
    with FakeFal(key=KEY, tls=True, max_lifetime=60).start() as server:
        yield server


@pytest.fixture
def loads(monkeypatch):
    """Every CA bundle parsed by any SSLContext in this process."""
    seen = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self, cafile=None, capath=None, cadata=None):
        seen.append(cafile or capath)
        return original(self, cafile, capath, cadata)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    return seen


@pytest.fixture
def contexts(monkeypatch):
    """The SSLContext of every new connection, once connected."""
    used = []
    original = transport._Tracked.connect

    def recording(self):
        original(self)
        used.append(self.sock.context)

    monkeypatch.setattr(transport._Tracked, "connect", recording)
    return used


def submit_on_new_connections(server, verify, count):
    with FalEditClient(config_for(server), retry=FAST_RETRY, verify=verify) as client:
        for _ in range(count):
            client.queue.submit(ENDPOINT, arguments())


def test_new_connections_share_one_parsed_bundle(tls_fal, tmp_path, monkeypatch, loads, contexts):
    monkeypatch.setattr(sending, "SUBMIT_REUSE_IDLE", -1.0)  # each submit opens a new connection
    bundle = str(tmp_path / "bundle.pem")
    shutil.copy(tls_fal.cert_path, bundle)
    submit_on_new_connections(tls_fal, bundle, 3)
    submit_on_new_connections(tls_fal, bundle, 1)  # another client, same bundle
    assert tls_fal.submissions == 4 and len(contexts) >= 4
    assert len({id(c) for c in contexts}) == 1
    assert loads == [bundle]  # parsed once, not once per connection
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname


def test_a_bundle_changed_on_disk_is_parsed_again(tls_fal, tmp_path, loads):
    bundle = tmp_path / "bundle.pem"
    shutil.copy(tls_fal.cert_path, bundle)
    submit_on_new_connections(tls_fal, str(bundle), 1)
    with FakeFal(key=KEY, tls=True, max_lifetime=60).start() as other:  # a new certificate
        bundle.write_bytes(bundle.read_bytes() + open(other.cert_path, "rb").read())
        stat = bundle.stat()
        os.utime(bundle, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        submit_on_new_connections(other, str(bundle), 1)
        assert other.submissions == 1
    assert loads == [str(bundle), str(bundle)]


def test_each_bundle_trusts_only_its_own_certificates(tls_fal, tmp_path):
    trusted = tmp_path / "trusted.pem"
    shutil.copy(tls_fal.cert_path, trusted)
    submit_on_new_connections(tls_fal, str(trusted), 1)  # a shared context now trusts the fake
    with FakeFal(key=KEY, tls=True, max_lifetime=60).start() as other:
        unrelated = tmp_path / "unrelated.pem"
        shutil.copy(other.cert_path, unrelated)  # signs nothing tls_fal presents
        with pytest.raises(TransportError, match="SSLError"):
            submit_on_new_connections(tls_fal, str(unrelated), 1)
        with pytest.raises(TransportError, match="SSLError"):
            submit_on_new_connections(tls_fal, True, 1)  # the default CAs never signed it either
    assert tls_fal.submissions == 1
