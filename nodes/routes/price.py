"""``POST /fal_qwen_edit/estimate``: the edit node's price before Run, from its widget values.

Thin over ``fal.edit.node_values.price_preview``, the same rule the node applies when it runs, so
the badge on the node is the backend's own estimate, not a JavaScript copy of it. It computes only:
no key is read, nothing is sent to fal.
"""

from __future__ import annotations

from aiohttp import web

from ..fal.edit.node_values import estimate_answer

PATH = "/fal_qwen_edit/estimate"


def register(routes: web.RouteTableDef) -> None:
    @routes.post(PATH)
    async def estimate(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        status, answer = estimate_answer(body)
        return web.json_response(answer, status=status)
