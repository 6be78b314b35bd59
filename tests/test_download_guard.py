"""Issue 24, downloads: a URL a workflow (Load Image from URL) or a server's answer (output images) names
never makes this machine fetch a loopback, private, link-local, cloud metadata, unspecified or multicast
address unless config.ini allows it; judged after name resolution, on every redirect, and on the address
the connection really uses (nodes/fal/wire/address_guard.py, host_trust.py)."""

from __future__ import annotations


import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal, Fault
from comfyui_fal_qwen_edit.nodes.fal.base.errors import DownloadError
from comfyui_fal_qwen_edit.nodes.fal.media.downloads import download_images, fetch_bytes
from comfyui_fal_qwen_edit.nodes.fal.media.images import encode_png
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.wire.trusted import address_guard
from comfyui_fal_qwen_edit.nodes.fal.wire.trusted.host_trust import address_class
from comfyui_fal_qwen_edit.nodes.fal.wire.transport import RetryPolicy, Transport

from conftest import gradient, to_u8, unconfigured_machine
from unknown_host import UnknownHost

PNG = encode_png(to_u8(gradient(6, 5)))
IMAGE = (200, {"Content-Type": "image/png"}, PNG)


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """No server configured on this machine (no FAL_ variable), and a config.ini the test may write."""
    return unconfigured_machine(monkeypatch, tmp_path)


@pytest.fixture
def keyless():
    """The transport the Load Image from URL node uses."""
    transport = Transport(None, retry=RetryPolicy(attempts=2, base_delay=0.01))
    yield transport
    transport.close()


@pytest.fixture
def names(monkeypatch):
    """A name server the test writes: {host: [addresses]}; other names resolve as usual. Counts lookups."""
    table, lookups = {}, []
    real = address_guard.resolve

    def resolve(host, port):
        lookups.append(host)
        answer = table.get(host)
        return list(answer.pop(0) if answer and isinstance(answer[0], list) else answer) if answer else real(host, port)

    monkeypatch.setattr(address_guard, "resolve", resolve)
    table["lookups"] = lookups
    return table


@pytest.mark.parametrize("address,kind", [
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.20", "private"), ("fd12:3456::1", "private"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("fe80::1%eth0", "link-local"),
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"), ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"), ("168.63.129.16", "cloud metadata"),
    ("::ffff:169.254.169.254", "cloud metadata"), ("64:ff9b::a9fe:a9fe", "cloud metadata"),
    ("::ffff:127.0.0.1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("100.64.0.1", "reserved (not public)"), ("240.0.0.1", "private"),  # (Python's private list has 240/4)
    ("8.8.8.8", None), ("2606:4700:4700::1111", None), ("34.120.1.1", None),
])
def test_every_address_class(address, kind):
    assert address_class(address) == kind


@pytest.mark.parametrize("address,kind", [("10.0.0.5", "private"), ("169.254.169.254", "cloud metadata"),
                                          ("fd00:ec2::254", "cloud metadata"), ("fe80::1", "link-local"),
                                          ("0.0.0.0", "unspecified"), ("239.1.1.1", "multicast"),
                                          ("192.168.0.1", "private")])
def test_a_name_resolving_to_a_refused_address_is_never_fetched(address, kind, machine, keyless, names):
    names["photos.example.com"] = [address]
    with pytest.raises(DownloadError) as info:
        download_images(keyless, ["http://photos.example.com/cat.png"])
    message = str(info.value)
    assert f"photos.example.com: it resolves to {address}, a {kind} address" in message
    assert f"under [downloads] in {machine}" in message


def test_one_refused_address_among_public_ones_refuses_the_host(machine, keyless, names):
    names["mixed.example.com"] = ["93.184.216.34", "127.0.0.1"]
    with pytest.raises(DownloadError, match="127.0.0.1, a loopback address"):
        fetch_bytes(keyless, "https://mixed.example.com/x.png")


@pytest.mark.parametrize("spelled", ["{url}", "{named_url}", "http://2130706433:{port}", "http://0x7f.1:{port}",
                                     "http://[::ffff:127.0.0.1]:{port}"])
def test_loopback_in_any_spelling_is_refused_and_reached_by_nothing(spelled, machine, keyless):
    with UnknownHost({"/a.png": IMAGE}) as host:
        url = spelled.format(url=host.url, named_url=host.named_url, port=host.port) + "/a.png"
        with pytest.raises(DownloadError, match="a loopback address"):
            download_images(keyless, [url])
        assert host.requests == []


@pytest.mark.parametrize("line", ["[downloads]\nallow_private = on\n", "[downloads]\nallowed_hosts = 127.0.0.1\n"])
def test_config_ini_may_allow_private_addresses_or_one_host(line, machine, keyless):
    machine.write_text(line)
    with UnknownHost({"/a.png": IMAGE}) as host:
        [pixels] = download_images(keyless, [host.url + "/a.png"])
        assert pixels.shape == (6, 5, 3) and len(host.requests) == 1


def test_metadata_stays_refused_when_private_addresses_are_allowed(machine, keyless, names):
    machine.write_text("[downloads]\nallow_private = on\n")
    names["metadata.google.internal"] = ["169.254.169.254"]
    with pytest.raises(DownloadError, match="169.254.169.254, a cloud metadata address"):
        fetch_bytes(keyless, "http://metadata.google.internal/computeMetadata/v1/")


def test_the_environment_may_allow_a_host_too(machine, keyless, monkeypatch):
    with UnknownHost({"/a.png": IMAGE}) as host:
        monkeypatch.setenv("FAL_DOWNLOAD_HOSTS", "localhost")
        assert fetch_bytes(keyless, host.named_url + "/a.png") == PNG
        with pytest.raises(DownloadError, match="127.0.0.1"):
            fetch_bytes(keyless, host.url + "/a.png")  # another name for the same place is not listed
        assert len(host.requests) == 1


@pytest.mark.parametrize("target,kind", [("http://127.0.0.1:{port}/b.png", "loopback"),
                                         ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
                                         ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
                                         ("http://lan.example.com/b.png", "private")])
def test_every_redirect_is_judged_before_it_is_followed(target, kind, machine, keyless, names):
    names["lan.example.com"] = ["10.20.30.40"]
    machine.write_text("[downloads]\nallowed_hosts = localhost\n")
    with UnknownHost() as host:
        location = target.format(port=host.port)
        host.answers["/a.png"] = (302, {"Location": location}, b"")
        host.answers["/b.png"] = IMAGE
        with pytest.raises(DownloadError, match=f"a {kind} address"):
            fetch_bytes(keyless, host.named_url + "/a.png")
        assert [r.path for r in host.requests] == ["/a.png"]  # the hop was never sent


def test_allowed_redirects_are_followed_and_a_loop_ends(machine, keyless):
    machine.write_text("[downloads]\nallowed_hosts = localhost\n")
    with UnknownHost({"/a.png": (301, {"Location": "/b.png"}, b""), "/b.png": (307, {"Location": "c.png"}, b""),
                      "/c.png": IMAGE, "/loop": (302, {"Location": "/loop"}, b"")}) as host:
        assert fetch_bytes(keyless, host.named_url + "/a.png") == PNG
        with pytest.raises(DownloadError, match="more than 5 redirects"):
            fetch_bytes(keyless, host.named_url + "/loop")
        host.answers["/ftp"] = (302, {"Location": "file:///etc/passwd"}, b"")
        with pytest.raises(DownloadError, match="only http"):
            fetch_bytes(keyless, host.named_url + "/ftp")


def test_a_name_is_resolved_once_and_the_connection_goes_to_the_judged_address(machine, keyless, names):
    """DNS rebinding: the second answer (here a metadata address) is never asked for, let alone used."""
    machine.write_text("[downloads]\nallow_private = on\n")
    with UnknownHost({"/a.png": IMAGE}) as host:
        names["rebind.example.com"] = [["127.0.0.1"], ["169.254.169.254"]]
        assert fetch_bytes(keyless, f"http://rebind.example.com:{host.port}/a.png") == PNG
        assert names["lookups"].count("rebind.example.com") == 1
        assert host.requests[0].headers["Host"] == f"rebind.example.com:{host.port}"  # the name, not the address


def test_the_connection_itself_refuses_an_address_the_check_did_not_see(machine, keyless, names):
    """Should a connection open without the check before it (another path, a later change), the guard at
    the socket still judges: no request reaches a refused address."""
    with UnknownHost({"/a.png": IMAGE}) as host:
        guard = address_guard.download_guard(None)
        with pytest.raises(DownloadError, match="a loopback address"):
            keyless.request("GET", host.url + "/a.png", what="probe", guard=guard)
        assert host.requests == []


def test_an_output_url_from_a_servers_answer_is_judged_too(fake_fal, make_client):
    """The configured server's own host (any port: it serves outputs from a second one) stays reachable;
    an output URL naming another local service is refused, with the job's request id."""
    with UnknownHost({"/x.png": IMAGE}) as other:
        fake_fal.add_fault(Fault("result", "status", 200, times=None,
                                 body={"images": [{"url": other.named_url + "/x.png"}], "seed": 1}))
        with pytest.raises(DownloadError, match=f"localhost:{other.port}: it resolves to") as info:
            make_client(fake_fal).edit(QwenEditRequest(prompt="p"), [torch.from_numpy(gradient(8, 8))[None]])
        assert list(fake_fal.jobs)[0] in str(info.value) and other.requests == []


def test_outputs_of_the_configured_servers_keep_working_from_any_of_their_ports(machine, monkeypatch):
    """Load Image from URL with only the environment to go by (as in ComfyUI): the fake server configured
    by FAL_QUEUE_BASE on 127.0.0.1 serves its files from a second port, which is fetched."""
    with FakeFal(key="k" * 20, max_lifetime=60).start() as server:
        monkeypatch.setenv("FAL_QUEUE_BASE", server.url)
        url = server._store_output("kept.png", PNG, "image/png")  # as an edit's output is kept
        assert url.startswith(server.cdn_url) and server.cdn_url != server.url
        transport = Transport(None)
        try:
            [pixels] = download_images(transport, [url])
        finally:
            transport.close()
        assert pixels.shape == (6, 5, 3)
