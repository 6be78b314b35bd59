"""The fal panel's routes on ComfyUI's server, thin over ``fal.panel.jobs`` (also for scripts).

GET /fal_qwen_edit/jobs?limit=&cursor=&source=local|fal|all, GET /fal_qwen_edit/jobs/{id},
GET …/jobs/{id}/thumbnails/{i}.webp, GET …/jobs/{id}/outputs/{i}.png, POST …/jobs/{id}/cancel,
POST …/jobs/{id}/fetch, GET /fal_qwen_edit/spend, GET /fal_qwen_edit/balance. Every job change is also pushed to the browsers as
the websocket event ``fal_qwen_edit.job``. No route submits a job; blocking work runs off the event
loop; errors are ``{"error": "what to change"}``, redacted like every error of the pack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from aiohttp import web

from ..fal.base.errors import FalError, InputError, redact
from ..fal.panel.jobs import BadRequest, Conflict, JobsPanel, NotFound, checked_id
from .bodies import json_body

log = logging.getLogger("fal_qwen_edit")
JOB_EVENT = "fal_qwen_edit.job"
PREFIX = "/fal_qwen_edit"


def status_of(exc: FalError) -> int:
    if isinstance(exc, (BadRequest, InputError)):
        return 400
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    status = getattr(exc, "status", None)
    return 404 if status == 404 else 502


async def answer(work: Callable[[], Any]) -> web.Response:
    try:
        return web.json_response(await asyncio.to_thread(work))
    except FalError as exc:
        return web.json_response({"error": redact(str(exc))}, status=status_of(exc))
    except ValueError as exc:
        return web.json_response({"error": redact(str(exc))}, status=400)


def register(routes: web.RouteTableDef, server: Any, panel: JobsPanel | None = None) -> JobsPanel:
    panel = panel or JobsPanel()
    panel.history.on_change(lambda job: server.send_sync(JOB_EVENT, panel.view(job)))

    @routes.get(f"{PREFIX}/jobs")
    async def jobs(request: web.Request) -> web.Response:
        query = request.rel_url.query
        return await answer(lambda: panel.list(int(query.get("limit", 30)), query.get("cursor"),
                                               query.get("source", "local")))

    @routes.get(PREFIX + "/jobs/{request_id}")
    async def job(request: web.Request) -> web.Response:
        return await answer(lambda: panel.job(request.match_info["request_id"]))

    @routes.post(PREFIX + "/jobs/{request_id}/cancel")
    async def cancel(request: web.Request) -> web.Response:
        return await answer(lambda: panel.cancel(request.match_info["request_id"]))

    @routes.post(PREFIX + "/jobs/{request_id}/fetch")
    async def fetch(request: web.Request) -> web.Response:
        body = await json_body(request)  # optional: which endpoint, when the history does not say
        endpoint = body.get("endpoint") if isinstance(body, dict) else None
        return await answer(lambda: panel.fetch(request.match_info["request_id"], endpoint))

    @routes.get(PREFIX + "/jobs/{request_id}/thumbnails/{index:[0-9]+}.webp")
    async def thumbnail(request: web.Request) -> web.Response:
        try:
            path = panel.history.thumbnail_path(checked_id(request.match_info["request_id"]),
                                                int(request.match_info["index"]))
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if path is None:
            return web.json_response({"error": "no such thumbnail"}, status=404)
        return web.Response(body=await asyncio.to_thread(path.read_bytes), content_type="image/webp")

    @routes.get(PREFIX + "/jobs/{request_id}/outputs/{index:[0-9]+}.png")
    async def output(request: web.Request) -> web.Response:
        try:
            blobs = await asyncio.to_thread(panel.outputs, request.match_info["request_id"])
        except BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        index = int(request.match_info["index"])
        if not blobs or index >= len(blobs):
            return web.json_response({"error": "not on this machine: use Fetch outputs"}, status=404)
        data = blobs[index]
        kind = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/webp" if data[8:12] == b"WEBP" else "image/png"
        return web.Response(body=data, content_type=kind)

    @routes.get(PREFIX + "/spend")
    async def spend(request: web.Request) -> web.Response:
        return await answer(panel.spend)

    @routes.get(PREFIX + "/balance")  # the panel's header only, never before a run: it may ask the gateway
    async def balance(request: web.Request) -> web.Response:
        return await answer(panel.balance)

    return panel
