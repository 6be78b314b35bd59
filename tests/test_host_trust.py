"""Issue 24: a shared workflow is data, not a key to the account. Its Connection settings, a manifest
line or a route never decide where a credential or a request goes; this machine's environment,
config.ini and the CLI's own options do (nodes/fal/wire/host_trust.py). One test (or more) per way in:

- Connection node / workflow / saved workflows: ``ConnectionSettings`` → ``client_for`` (what the
  edit, upload and result nodes call) — the unknown-host and key_env tests below;
- batch manifest: ``test_a_manifest_line_cannot_carry_connection_settings``;
- routes: ``test_no_route_reads_a_host_a_key_or_a_key_variable`` and the panel tests;
- CLI: ``test_the_clis_own_options_are_the_users_words_and_stay_free``.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest
import torch

from comfyui_fal_qwen_edit.nodes.fakefal import FakeFal
from comfyui_fal_qwen_edit.nodes.fal.base.errors import ConfigError
from comfyui_fal_qwen_edit.nodes.fal.edit import connection as connection_module
from comfyui_fal_qwen_edit.nodes.fal.edit.connection import ConnectionSettings, client_for
from comfyui_fal_qwen_edit.nodes.fal.models.qwen import QwenEditRequest
from comfyui_fal_qwen_edit.nodes.fal.wire.trusted import host_trust
from comfyui_fal_qwen_edit.nodes.fal.wire.config import load_config

from conftest import KEY, exception_text, gradient, unconfigured_machine
from unknown_host import UnknownHost

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
# What a user might keep in another variable: a workflow naming it must never read (or show) it.
SECRET = "aws-secret-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CONNECTION_WIDGETS = ("mode", "base_url", "key_env", "upload", "upload_expiry", "keep_on_fal")


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """This machine's environment, fresh per test: no FAL_ variable but those a test sets, an empty
    config.ini the test may write, a state folder of its own, and no client left from another test."""
    ini = unconfigured_machine(monkeypatch, tmp_path)
    monkeypatch.setenv("FAL_QWEN_EDIT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SECRET_THING", SECRET)
    monkeypatch.setattr(connection_module, "_clients", {})

    class Machine:
        config_ini = ini

        @staticmethod
        def set(**values: str) -> None:
            for name, value in values.items():
                monkeypatch.setenv(name, value)

    return Machine


@pytest.fixture
def unknown():
    with UnknownHost() as host:
        yield host


def edit_through(settings: ConnectionSettings | None):
    return client_for(settings).edit(QwenEditRequest(prompt="p", seed=1), [torch.from_numpy(gradient(8, 8))[None]])


def refused(settings: ConnectionSettings) -> str:
    """The message a Connection node with these settings shows; the node fails at load(), before any request."""
    with pytest.raises(ConfigError) as info:
        settings.load()
    with pytest.raises(ConfigError):
        edit_through(settings)  # the edit node's way: the same refusal, nothing sent
    return exception_text(info.value)


# -- the Connection node (and so every workflow, old or new) -------------------------------------------
@pytest.mark.parametrize("key_env", ["", "FAL_GATEWAY_TOKEN", "SECRET_THING"])
@pytest.mark.parametrize("mode", ["gateway", "proxy", "auto"])
@pytest.mark.parametrize("named", ["url", "named_url"])
def test_a_connection_naming_an_unknown_host_sends_it_nothing(mode, key_env, named, machine, gateway_fal,
                                                               unknown):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY, FAL_PROXY_TOKEN=KEY)
    base_url = getattr(unknown, named)
    message = refused(ConnectionSettings(mode=mode, base_url=base_url, key_env=key_env))
    host = base_url.split("//")[1]
    assert f"names {host}, which is not a gateway or proxy configured on this machine" in message
    assert f"'trusted_hosts = {host}' under [connection] in {machine.config_ini}" in message
    assert f"FAL_TRUSTED_HOSTS={host}" in message
    assert unknown.requests == [] and gateway_fal.requests == []
    assert KEY not in message and SECRET not in message


def test_a_connection_naming_a_host_elsewhere_fails_before_any_lookup(machine, gateway_fal, monkeypatch):
    """The issue's own example: refused without even resolving the name (nothing leaves the machine)."""
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY)
    import socket

    def no_lookups(*args, **kwargs):
        raise AssertionError("a refused host must not even be looked up")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookups)
    message = refused(ConnectionSettings(mode="gateway", base_url="https://evil.example.com", key_env="SECRET_THING"))
    assert "names evil.example.com, which is not a gateway or proxy configured" in message
    assert SECRET not in message


@pytest.mark.parametrize("widgets", [("auto", "", ""), ("gateway", "", "FAL_GATEWAY_TOKEN"),
                                     ("gateway", "{gateway}", ""), ("auto", "{gateway}/", "FAL_GATEWAY_TOKEN")],
                         ids=["defaults", "mode-only", "naming-it", "naming-it-slash"])
def test_the_configured_gateway_works_with_and_without_a_connection_naming_it(widgets, machine, gateway_fal,
                                                                              key_scan):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY)
    mode, base_url, key_env = widgets
    outcome = edit_through(ConnectionSettings(mode=mode, base_url=base_url.format(gateway=gateway_fal.url),
                                              key_env=key_env))
    assert outcome.images.shape == (1, 8, 8, 3) and gateway_fal.submissions == 1
    api = [r for r in gateway_fal.requests if r.origin == gateway_fal.url]  # not the downloads from its CDN port
    assert api and all(r.header("Authorization") == f"Bearer {KEY}" for r in api)
    key_scan(str(outcome.info()))


def test_a_gateway_port_of_its_own_is_another_origin(machine, gateway_fal):
    """A configured URL trusts its own origin only: another port of the same host is another server."""
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY)
    with UnknownHost() as other:
        message = refused(ConnectionSettings(mode="gateway", base_url=other.url))
        assert f"127.0.0.1:{other.port}" in message and other.requests == []


@pytest.mark.parametrize("how", ["config.ini", "environment", "bare host"])
def test_one_line_of_config_trusts_a_saved_workflows_own_gateway(how, machine, key_scan):
    """A workflow saved before this release names the user's own gateway: refused once, with the line to
    add; after that line, it runs as before."""
    with FakeFal(key=KEY, mode="gateway", max_lifetime=60).start() as own:
        machine.set(FAL_GATEWAY_TOKEN=KEY)  # the token is here; the gateway's URL only in the workflow
        settings = ConnectionSettings(mode="gateway", base_url=own.url, key_env="FAL_GATEWAY_TOKEN")
        message = refused(settings)
        host = own.url.split("//")[1]
        assert f"trusted_hosts = {host}" in message and own.requests == []
        if how == "config.ini":
            machine.config_ini.write_text(f"[connection]\ntrusted_hosts = other.example.com, {host}\n")
        elif how == "environment":
            machine.set(FAL_TRUSTED_HOSTS=host)
        else:
            machine.config_ini.write_text("[connection]\ntrusted_hosts = 127.0.0.1\n")  # every port of it
        outcome = edit_through(settings)
        assert outcome.images.shape == (1, 8, 8, 3) and own.submissions == 1
    key_scan(message, str(outcome.info()))


def test_a_proxy_connection_may_name_only_the_configured_proxy(machine, unknown):
    with FakeFal(key=KEY, mode="proxy", max_lifetime=60).start() as proxy:
        machine.set(FAL_PROXY_URL=proxy.proxy_url)
        message = refused(ConnectionSettings(mode="proxy", base_url=unknown.url + "/api/fal/proxy"))
        assert f"names 127.0.0.1:{unknown.port}" in message and unknown.requests == [] and proxy.requests == []
        outcome = edit_through(ConnectionSettings(mode="proxy", base_url=proxy.proxy_url))
        assert outcome.images.shape == (1, 8, 8, 3) and proxy.submissions == 1


# -- key_env --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fal", "gateway", "proxy"])
def test_key_env_naming_another_variable_is_refused_without_its_value(mode, machine, gateway_fal, key_scan, caplog):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_KEY=KEY, FAL_PROXY_URL="https://proxy.example.com/p")
    caplog.set_level(logging.DEBUG)
    message = refused(ConnectionSettings(mode=mode, key_env="SECRET_THING"))
    assert "key_env names SECRET_THING, a variable not meant for this pack" in message
    assert f"'allowed_key_envs = SECRET_THING' under [connection] in {machine.config_ini}" in message
    assert SECRET not in message and gateway_fal.requests == []
    assert not [r for r in caplog.records if SECRET in r.getMessage()]
    key_scan(message)


def test_a_variable_listed_in_config_ini_may_be_named(machine, gateway_fal):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, MY_GATEWAY_TOKEN=KEY)
    settings = ConnectionSettings(key_env="MY_GATEWAY_TOKEN")
    assert "MY_GATEWAY_TOKEN" in refused(settings)
    machine.config_ini.write_text("[connection]\nallowed_key_envs = MY_GATEWAY_TOKEN\n")
    assert edit_through(settings).images.shape == (1, 8, 8, 3) and gateway_fal.submissions == 1


@pytest.mark.parametrize("pasted", [KEY, "sk_live_51HxQ2eKb7Zc9yT3mN8pL4aR6", "Bearer abc.def"])
def test_a_key_pasted_into_key_env_is_refused_and_never_echoed(pasted, machine, gateway_fal, key_scan):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY)
    with pytest.raises(ConfigError) as info:
        ConnectionSettings(key_env=pasted).load()
    assert "NAME of an environment variable" in str(info.value)
    assert pasted not in exception_text(info.value) and gateway_fal.requests == []
    key_scan(info.value)


def test_a_token_in_a_base_urls_query_string_is_refused_unechoed(machine, gateway_fal):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY)
    with pytest.raises(ConfigError) as info:
        ConnectionSettings(base_url=f"{gateway_fal.url}?token=sk-query-secret-123")
    assert "query string" in str(info.value) and "sk-query-secret-123" not in str(info.value) + repr(info.value)


def test_the_pack_and_the_frontend_judge_a_pasted_key_alike():
    """web/lib/connection_rules.js repeats looks_like_a_key; the Node test checks it on the same cases."""
    cases = json.loads((ROOT / "tests" / "web" / "key_cases.json").read_text())
    for text, is_key in cases:
        assert host_trust.looks_like_a_key(text) == is_key, text


# -- saved workflows from 0.1.0 and today ------------------------------------------------------------------
def saved_connections() -> list[tuple[str, ConnectionSettings | None]]:
    found = []
    for path in sorted([*FIXTURES.glob("workflows_*/*.json"), *(ROOT / "example_workflows").glob("*.json")]):
        nodes = [n for n in json.loads(path.read_text())["nodes"] if n["type"] == "FalQwenConnection"]
        settings = ConnectionSettings(**dict(zip(CONNECTION_WIDGETS, nodes[0]["widgets_values"]))) if nodes else None
        found.append((f"{path.parent.name}/{path.stem}", settings))
    return found


@pytest.mark.parametrize("name,settings", saved_connections(), ids=[n for n, _ in saved_connections()])
def test_saved_workflows_still_run_against_a_configured_gateway(name, settings, machine, gateway_fal):
    machine.set(FAL_GATEWAY_URL=gateway_fal.url, FAL_GATEWAY_TOKEN=KEY, FAL_KEY=KEY)
    outcome = edit_through(settings)
    assert outcome.images.shape == (1, 8, 8, 3) and gateway_fal.submissions == 1


# -- the batch manifest ---------------------------------------------------------------------------------------
def test_a_manifest_line_cannot_carry_connection_settings(tmp_path, unknown, fake_fal):
    """The batch runner as a process: a line naming a host, a key variable, a mode or a key is refused
    with the others, before anything is uploaded or submitted anywhere."""
    import subprocess
    from test_runner_cli import command, setup
    manifest, env = setup(tmp_path, fake_fal, 1)
    line = json.loads(manifest.read_text())
    line.update(base_url=unknown.url, key_env="SECRET_THING", mode="gateway", key=SECRET)
    manifest.write_text(json.dumps(line) + "\n")
    done = subprocess.run(command(manifest, tmp_path / "out"), env={**env, "SECRET_THING": SECRET},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    for key in ("base_url", "key_env", "mode", "key"):
        assert f"- line 1: {key}: a manifest line cannot choose the connection" in done.stderr
    assert SECRET not in done.stdout + done.stderr and unknown.url not in done.stderr
    assert unknown.requests == [] and fake_fal.submissions == 0 and fake_fal.uploads == []


# -- routes -------------------------------------------------------------------------------------------------
def request_reads(path: Path) -> set[str]:
    """Every name a route handler reads from its request: match_info[...], query.get(...), body.get(...)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            names.add(node.slice.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args and isinstance(node.args[0], ast.Constant):
            names.add(node.args[0].value)
    return names


def test_no_route_reads_a_host_a_key_or_a_key_variable():
    reads = request_reads(ROOT / "nodes" / "routes" / "panel.py") | request_reads(ROOT / "nodes" / "routes" / "price.py")
    assert reads <= {"request_id", "index", "limit", "cursor", "source", "endpoint"}, reads
    from comfyui_fal_qwen_edit.nodes.fal.edit import node_values
    assert "load_config" not in Path(node_values.__file__).read_text()  # the estimate route reads no key
    # The one route that takes a key or a gateway URL is the panel's Keys, which answers only a browser
    # on this machine (every handler goes through the loopback check; tests/test_saved_keys.py, test_panel_keys.py).
    keys = (ROOT / "nodes" / "routes" / "keys.py").read_text()
    assert keys.count("await guarded(request, ") == keys.count("@routes.") == 3


def test_the_estimate_route_ignores_connection_settings_in_its_body(monkeypatch):
    from comfyui_fal_qwen_edit.nodes.fal.edit.node_values import estimate_answer
    from comfyui_fal_qwen_edit.nodes.fal.wire import config

    def no_config(*args, **kwargs):
        raise AssertionError("the estimate must not load a connection")

    monkeypatch.setattr(config, "load_config", no_config)
    status, answer = estimate_answer({"widgets": {"model": "qwen-edit-plus", "base_url": "http://127.0.0.1:1",
                                                  "key_env": "SECRET_THING"}, "sizes": {}, "connected": ["image_1"]})
    assert status == 200 and "SECRET_THING" not in json.dumps(answer)


@pytest.mark.parametrize("action", ["cancel", "fetch"])
def test_a_panel_action_on_a_job_recorded_with_an_untrusted_connection_sends_nothing(action, machine, unknown):
    """The panel's routes reach a job through the connection its record names, judged as a workflow's
    (the history file is on this machine, but what it names once came from a Connection node)."""
    from comfyui_fal_qwen_edit.nodes.fal.edit.connection import shared_history
    from comfyui_fal_qwen_edit.nodes.fal.panel.jobs import JobsPanel
    machine.set(FAL_GATEWAY_TOKEN=KEY)
    history = shared_history()
    request_id = "9c08e7d8-312c-402d-a691-c207a9cb8121"
    history.record(request_id, status="running" if action == "cancel" else "done",
                   endpoint="fal-ai/qwen-image-edit-plus",
                   connection={"kind": "gateway", "host": "127.0.0.1", "base_url": unknown.url, "key_env": None})
    with pytest.raises(ConfigError, match=f"names 127.0.0.1:{unknown.port}"):
        getattr(JobsPanel(history), action)(request_id)
    assert unknown.requests == []


# -- the CLI ------------------------------------------------------------------------------------------------
def test_the_clis_own_options_are_the_users_words_and_stay_free(tmp_path):
    from test_cli import run
    from PIL import Image
    from conftest import to_u8
    Image.fromarray(to_u8(gradient(12, 12))).save(tmp_path / "in.png")
    with FakeFal(key=KEY, mode="gateway", max_lifetime=60).start() as server:
        done = run([str(tmp_path / "in.png"), "--prompt", "p", "--gateway", server.url, "--key-env", "MY_TOKEN",
                    "--out", str(tmp_path / "o")], {"MY_TOKEN": KEY}, home=tmp_path)
        assert done.returncode == 0, done.stderr
        api = [r for r in server.requests if r.origin == server.url]
        assert server.submissions == 1 and all(r.header("Authorization") == f"Bearer {KEY}" for r in api)
    assert KEY not in done.stdout + done.stderr


def test_load_config_judges_as_a_workflow_unless_told_the_user_typed_it(tmp_path, unknown):
    environ = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "none.ini"), "FAL_GATEWAY_TOKEN": KEY,
               "SECRET_THING": SECRET}
    with pytest.raises(ConfigError, match="not a gateway or proxy configured"):
        load_config(base_url=unknown.url, environ=environ)
    with pytest.raises(ConfigError, match="key_env names SECRET_THING"):
        load_config(mode="gateway", base_url=unknown.url, key_env="SECRET_THING", environ={
            **environ, "FAL_TRUSTED_HOSTS": "127.0.0.1"})
    config = load_config(base_url=unknown.url, key_env="SECRET_THING", environ=environ, from_user=True)
    assert config.queue_base == unknown.url and config.key.reveal() == SECRET
    assert unknown.requests == []
