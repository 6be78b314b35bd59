"""A body that is not JSON, sent over real HTTP to the pack's routes on 127.0.0.1: a route that needs a
body answers 400 saying what to send, the panel's fetch (whose body is optional) goes on, and none of them
answers a bare 500."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from comfyui_fal_qwen_edit.nodes.routes import keys as key_route
from comfyui_fal_qwen_edit.nodes.routes import panel as panel_route
from comfyui_fal_qwen_edit.nodes.routes import price as price_route

REQUEST_ID = "9c08e7d8-312c-402d-a691-c207a9cb8121"
NOT_JSON = [b"{not json", b"\xff\xfe\x00", b""]


def post(table: web.RouteTableDef, path: str, data: bytes) -> tuple[int, dict]:
    async def go() -> tuple[int, dict]:
        app = web.Application()
        app.add_routes(table)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            response = await client.post(path, data=data, headers={"Content-Type": "application/json"})
            return response.status, json.loads(await response.text())
    return asyncio.run(go())


def test_the_estimate_route_answers_a_body_that_is_not_json_with_what_to_send():
    table = web.RouteTableDef()
    price_route.register(table)
    for data in NOT_JSON:
        status, answer = post(table, price_route.PATH, data)
        assert status == 400 and '"widgets"' in answer["error"], (data, answer)


def test_the_keys_route_answers_a_body_that_is_not_json_with_400_and_saves_nothing(tmp_path):
    environ = {"HOME": str(tmp_path), "FAL_QWEN_EDIT_CONFIG": str(tmp_path / "cfg" / "config.ini")}
    table = web.RouteTableDef()
    key_route.register(table, environ)
    for data in NOT_JSON:
        status, answer = post(table, key_route.PATH, data)
        assert status == 400 and answer["error"], (data, answer)
    assert not (tmp_path / "cfg" / "saved_keys.ini").exists()


def test_the_panels_fetch_goes_on_without_a_body_it_cannot_read():
    panel = mock.Mock()
    panel.fetch.return_value = {"request_id": REQUEST_ID, "status": "done"}
    table = web.RouteTableDef()
    panel_route.register(table, mock.Mock(), panel)
    path = f"{panel_route.PREFIX}/jobs/{REQUEST_ID}/fetch"
    for data in NOT_JSON:
        assert post(table, path, data) == (200, {"request_id": REQUEST_ID, "status": "done"})
    assert post(table, path, b'{"endpoint": "fal-ai/qwen-image-edit-plus"}')[0] == 200
    assert [c.args for c in panel.fetch.call_args_list] == [(REQUEST_ID, None)] * 3 + \
        [(REQUEST_ID, "fal-ai/qwen-image-edit-plus")]
