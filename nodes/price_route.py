"""``POST /fal_qwen_edit/estimate``: the edit node's price before Run, from its widget values.

Thin over ``fal.edit.node_values.price_preview``, the same rule the node applies when it runs, so
the badge on the node is the backend's own estimate, not a JavaScript copy of it. It computes only:
no key is read, nothing is sent to fal.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from .fal.base.errors import FalError
from .fal.edit.node_values import IMAGE_INPUTS, check_model_name, price_preview

log = logging.getLogger("fal_qwen_edit")
PATH = "/fal_qwen_edit/estimate"


def parse_sizes(raw: Any) -> dict[str, tuple[int, int, int]]:
    sizes = {}
    for name, size in (raw or {}).items():
        if name not in IMAGE_INPUTS or size is None:
            continue
        if not (isinstance(size, (list, tuple)) and len(size) == 3 and all(isinstance(v, int) and 0 < v < 10**6
                                                                            for v in size)):
            raise ValueError(f"sizes.{name} must be [width, height, frames] as positive integers")
        sizes[name] = (size[0], size[1], size[2])
    return sizes


def estimate_answer(body: Any) -> tuple[int, dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("widgets"), dict):
        return 400, {"error": 'send {"widgets": {name: value}, "sizes": {"image_1": [w, h, frames]}, '
                              '"connected": ["image_1", …]}'}
    try:
        widgets = body["widgets"]
        check_model_name(widgets.get("model"))
        connected = [name for name in body.get("connected") or () if name in IMAGE_INPUTS]
        return 200, price_preview(widgets, parse_sizes(body.get("sizes")), connected)
    except (FalError, ValueError, TypeError, KeyError) as exc:
        return 400, {"error": f"cannot price these widget values: {exc}"}


def register(routes: web.RouteTableDef) -> None:
    @routes.post(PATH)
    async def estimate(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        status, answer = estimate_answer(body)
        return web.json_response(answer, status=status)
