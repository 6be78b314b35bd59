"""The edit node's routes for its frontend: ``POST /fal_qwen_edit/estimate``, the price before Run from its
widget values, and ``GET /fal_qwen_edit/models``, what each model takes (fields, ranges, defaults, the size
``auto`` makes), so the node shows each model's own widgets and ranges.

Thin over ``fal.edit.node_values``: ``price_preview``, the same rule the node applies when it runs, so
the badge on the node is the backend's own estimate, not a JavaScript copy of it, at the run's own price
(the table's, else fal's as this machine has cached it: ``prices.json`` in the state folder);
``models_answer``, the endpoint table the run checks its values against. They compute only: no key is
read, nothing is sent to fal (the price cache is read, never refreshed, here).
"""

from __future__ import annotations

from aiohttp import web

from ..fal.edit.node_values import estimate_answer, models_answer
from ..fal.platform.price_book import PriceBook
from ..fal.wire.config import state_dir
from .bodies import json_body

PATH = "/fal_qwen_edit/estimate"
MODELS_PATH = "/fal_qwen_edit/models"


def register(routes: web.RouteTableDef) -> None:
    @routes.post(PATH)
    async def estimate(request: web.Request) -> web.Response:
        body = await json_body(request)
        status, answer = estimate_answer(body, PriceBook(state_dir() / "prices.json").price_for)
        return web.json_response(answer, status=status)

    @routes.get(MODELS_PATH)
    async def models(request: web.Request) -> web.Response:
        return web.json_response(models_answer())
