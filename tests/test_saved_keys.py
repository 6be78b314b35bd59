"""Keys pasted into ComfyUI (the fal panel's Keys section): stored on this machine for the owner only,
below the environment and config.ini, never answered back, and only from a browser on this machine."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from comfyui_fal_qwen_edit.nodes.routes import keys as key_route
from comfyui_fal_qwen_edit.nodes.fal.base.errors import ConfigError, MissingKeyError
from comfyui_fal_qwen_edit.nodes.fal.wire import config as cfg
from comfyui_fal_qwen_edit.nodes.fal.wire.trusted import saved_keys
from conftest import KEY

TOKEN = "gw-TOKEN-0123456789abcdef0123456789"


def env(tmp_path, **values):
    return {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "cfg" / "config.ini"), **values}


def test_a_saved_key_runs_fal_direct_and_says_where_it_came_from(tmp_path):
    e = env(tmp_path)
    with pytest.raises(MissingKeyError, match="fal panel"):
        cfg.load_config(environ=e)
    path = saved_keys.save("fal", f"  {KEY}\n", e)
    assert path == tmp_path / "cfg" / "saved_keys.ini"
    config = cfg.load_config(environ=e)
    assert config.key.reveal() == KEY and config.key_source.startswith("saved from ComfyUI")
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_environment_and_config_ini_win_over_a_saved_key(tmp_path):
    e = env(tmp_path)
    saved_keys.save("fal", "saved-key-aaaaaaaaaaaa", e)
    assert cfg.load_config(environ={**e, "FAL_KEY": KEY}).key.reveal() == KEY
    (tmp_path / "cfg" / "config.ini").write_text(f"[fal]\nkey = {KEY}\n")
    assert cfg.load_config(environ=e).key.reveal() == KEY
    status = cfg.key_status(e)
    assert status["fal"]["saved"] and "config.ini" in status["fal"]["source"]


def test_a_saved_gateway_with_its_token_makes_gateway_the_mode(tmp_path):
    e = env(tmp_path)
    saved_keys.save("gateway_url", "https://gw.example.com/", e)
    saved_keys.save("gateway", TOKEN, e)
    config = cfg.load_config(environ=e)
    assert (config.mode, config.queue_base, config.key.reveal()) == ("gateway", "https://gw.example.com", TOKEN)
    assert saved_keys.clear("gateway", e) and not saved_keys.clear("gateway", e)
    with pytest.raises(MissingKeyError):
        cfg.load_config(environ=e)


@pytest.mark.parametrize("kind, value", [("fal", "two words"), ("fal", "line\nbreak"), ("fal", ""),
                                         ("fal", "x" * 2000), ("gateway_url", "http://gw.example.com"),
                                         ("gateway_url", "https://u:p@gw.example.com"), ("nope", "abc")])
def test_bad_values_are_refused_without_being_echoed(tmp_path, kind, value):
    with pytest.raises(ConfigError) as info:
        saved_keys.save(kind, value, env(tmp_path))
    if len(value.strip()) > 3 and kind != "gateway_url":
        assert value.strip() not in str(info.value)
    assert not (tmp_path / "cfg" / "saved_keys.ini").exists()


def test_the_status_never_holds_a_key(tmp_path):
    e = env(tmp_path)
    saved_keys.save("fal", KEY, e)
    saved_keys.save("gateway", TOKEN, e)
    text = json.dumps(key_route.status(e))
    assert KEY not in text and TOKEN not in text and KEY.split(":")[1] not in text
    assert json.loads(text)["fal"]["set"] is True


@pytest.mark.parametrize("remote, headers, allowed", [
    ("127.0.0.1", {"Host": "127.0.0.1:8188"}, True),
    ("::1", {"Host": "localhost:8188", "Origin": "http://localhost:8188"}, True),
    ("192.168.1.20", {"Host": "127.0.0.1:8188"}, False),           # another machine on the LAN
    ("10.0.0.5", {"Host": "10.0.0.1:8188"}, False),
    ("127.0.0.1", {"Host": "127.0.0.1:8188", "X-Forwarded-For": "203.0.113.9"}, False),  # a reverse proxy
    ("127.0.0.1", {"Host": "comfy.example.com"}, False),           # served under a public name
    ("127.0.0.1", {"Host": "127.0.0.1:8188", "Origin": "https://evil.example"}, False),  # another site's page
    ("127.0.0.1", {"Host": "rebound.example:8188"}, False),         # DNS rebinding to 127.0.0.1
    (None, {"Host": "127.0.0.1:8188"}, False),
])
def test_only_a_browser_on_this_machine_is_answered(remote, headers, allowed):
    assert key_route.from_this_machine(remote, headers) is allowed


def _call(handler_routes, method, path, remote, body=None, headers=None):
    handler = next(r.handler for r in handler_routes if r.method == method and r.path == key_route.PATH)
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (remote, 40000) if name == "peername" else default
    request = make_mocked_request(method, path, headers={"Host": "127.0.0.1:8188", **(headers or {})},
                                  transport=transport)
    if body is not None:
        request.json = mock.AsyncMock(return_value=body)  # the body as aiohttp would parse it
    response = asyncio.run(handler(request))
    return response.status, json.loads(response.body)


def test_the_route_saves_clears_and_answers_without_the_key(tmp_path):
    e = env(tmp_path)
    table = web.RouteTableDef()
    key_route.register(table, e)
    status, answer = _call(table, "POST", key_route.PATH, "127.0.0.1", {"kind": "fal", "value": KEY})
    assert status == 200 and answer["fal"]["set"] and answer["fal"]["saved"] and KEY not in json.dumps(answer)
    assert cfg.load_config(environ=e).key.reveal() == KEY
    status, answer = _call(table, "DELETE", f"{key_route.PATH}?kind=fal", "127.0.0.1")
    assert status == 200 and not answer["fal"]["set"]


def test_the_route_refuses_another_machine_and_writes_nothing(tmp_path):
    e = env(tmp_path)
    table = web.RouteTableDef()
    key_route.register(table, e)
    for method, path, body in (("POST", key_route.PATH, {"kind": "fal", "value": KEY}), ("GET", key_route.PATH, None),
                               ("DELETE", f"{key_route.PATH}?kind=fal", None)):
        status, answer = _call(table, method, path, "192.0.2.7", body)
        assert status == 403 and "machine that runs ComfyUI" in answer["error"]
    assert not (tmp_path / "cfg" / "saved_keys.ini").exists()


def test_a_bad_value_through_the_route_is_refused_without_the_value(tmp_path):
    table = web.RouteTableDef()
    key_route.register(table, env(tmp_path))
    pasted = "sk-live with a space-0123456789"
    status, answer = _call(table, "POST", key_route.PATH, "127.0.0.1", {"kind": "fal", "value": pasted})
    assert status == 400 and pasted not in json.dumps(answer) and "key" in answer["error"]
