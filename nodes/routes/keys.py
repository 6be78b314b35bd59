"""``/fal_qwen_edit/keys``: the fal panel's Keys section, thin over ``fal.wire.saved_keys``.

GET answers, per kind (fal key, gateway token, gateway URL), only whether it is set and where from,
never a key. POST ``{"kind", "value"}`` saves one, DELETE ``?kind=`` clears it. Every method answers
only a browser on the machine that runs ComfyUI: the peer is a loopback address, no proxy header
says the request came from elsewhere (a reverse proxy on the same machine makes every peer
127.0.0.1), and Host and Origin name this machine (a page elsewhere, or one that rebinds its DNS
name to 127.0.0.1, names itself). A workflow never reaches this route: keys are pasted by hand.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from ..fal.base.errors import FalError, redact, register_secret
from ..fal.wire.trusted import saved_keys
from ..fal.wire.trusted.base_urls import is_loopback
from ..fal.wire.config import key_status
from .bodies import json_body

PATH = "/fal_qwen_edit/keys"
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-IP")
REFUSED = ("Keys can be set and read only from a browser on the machine that runs ComfyUI "
           "(open it at http://127.0.0.1:<port>), or in the environment or config.ini there.")


def _host_name(value: str) -> str:
    return urlsplit(f"//{value}").hostname or ""


def from_this_machine(remote: str | None, headers: Mapping[str, str]) -> bool:
    if not remote or not is_loopback(remote) or any(name in headers for name in PROXY_HEADERS):
        return False
    if not is_loopback(_host_name(headers.get("Host", ""))):
        return False
    origin = headers.get("Origin")
    return origin is None or is_loopback(urlsplit(origin).hostname or "")


def status(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = dict(key_status(environ))  # each key kind's status, and the file's path
    answer["file"] = str(saved_keys.saved_keys_path(environ))
    return answer


def register(routes: web.RouteTableDef, environ: Mapping[str, str] | None = None) -> None:
    async def guarded(request: web.Request, work) -> web.Response:
        if not from_this_machine(request.remote, request.headers):
            return web.json_response({"error": REFUSED}, status=403)
        try:
            return web.json_response(await asyncio.to_thread(work))
        except FalError as exc:
            return web.json_response({"error": redact(str(exc))}, status=400)

    @routes.get(PATH)
    async def read(request: web.Request) -> web.Response:
        return await guarded(request, lambda: status(environ))

    @routes.post(PATH)
    async def save(request: web.Request) -> web.Response:
        body = await json_body(request)
        kind, value = (body.get("kind"), body.get("value")) if isinstance(body, dict) else (None, None)
        if isinstance(value, str) and kind != "gateway_url":
            register_secret(value.strip())  # whatever happens next, it is redacted from logs and errors

        def work() -> dict[str, Any]:
            saved_keys.save(str(kind), value, environ)
            return status(environ)
        return await guarded(request, work)

    @routes.delete(PATH)
    async def clear(request: web.Request) -> web.Response:
        kind = request.rel_url.query.get("kind", "")

        def work() -> dict[str, Any]:
            saved_keys.clear(kind, environ)
            return status(environ)
        return await guarded(request, work)
