"""A route's JSON body, read the same way by every route: ``None`` when there is none or it is not JSON
(aiohttp's ``request.json()`` raises then, and an error a handler does not catch is a bare 500). A route
that needs a body answers ``None`` with its own 400 saying what to send (keys, estimate); the panel's
fetch, whose body only may name the endpoint, goes on without it."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:  # also an empty body, and one that is not UTF-8 (UnicodeDecodeError)
        return None
