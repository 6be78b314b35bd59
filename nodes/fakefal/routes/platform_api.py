"""fal's Platform API as the fake knows it: a key's requests by endpoint (cursor pages) and unit prices.

Shapes as fal's Platform API OpenAPI gives them (nodes/fal/platform/client.py names the source):
``{items: [{request_id, endpoint_id, started_at, sent_at, ended_at, status_code, duration}],
next_cursor, has_more}`` (with ``expand=payloads`` also ``json_input``, the submit's body, and
``json_output``, the result once there, unless the submit said ``X-Fal-Store-IO: 0``) and
``{prices: [{endpoint_id, unit_price, unit, currency}]}``. ``start`` keeps the jobs sent at or after it.
Every job the fake holds is listed from its submit on, queued or running too (fal's schema allows a
null ``ended_at``; whether it lists a job before it starts is not documented), also those a test
seeded with ``FakeFal.seed_job`` (made on "another machine": never submitted by the client under test).
"""

from __future__ import annotations

import datetime
import time

from ..jobs import iso8601
from ..wire import Reply, json_reply

MEGAPIXEL = 1024 * 1024
# The fake's pricing API. Per megapixel, as fal's model pages state them; the 2509 ids are the plus models'.
UNIT_PRICES = {"fal-ai/qwen-image-edit-plus": 0.03, "fal-ai/qwen-image-edit-plus-lora": 0.035,
               "fal-ai/qwen-image-edit-2511": 0.03, "fal-ai/qwen-image-edit-2511/lora": 0.035,
               "fal-ai/qwen-image-edit": 0.03,
               "fal-ai/qwen-image-edit-2509": 0.03, "fal-ai/qwen-image-edit-2509-lora": 0.035,
               # Per image: fal's price list names fal-ai/qwen-image-2/edit (and pro/edit, max/edit) with an
               # image_count dimension only. The figures: a public reseller's price seed built on fal's costs
               # (base 42 and 90 credits of $0.001 at fal's cost x 1.2, so $0.035 and $0.075 at fal), not
               # fal's own word, which is why the pack's table has none and asks fal's pricing API instead.
               "fal-ai/qwen-image-2/edit": 0.035, "fal-ai/qwen-image-2/pro/edit": 0.075,
               "fal-ai/qwen-image-max/edit": 0.075}
# fal's unit names ("image", "megapixels": fal's Platform API docs and its clients); megapixels unless listed.
PRICE_UNITS = {"fal-ai/qwen-image-2/edit": "image", "fal-ai/qwen-image-2/pro/edit": "image",
               "fal-ai/qwen-image-max/edit": "image"}


def _error(code: int, kind: str, message: str) -> Reply:
    return json_reply(code, {"error": {"type": kind, "message": message}})


def billable_units(result: dict, unit: str = "megapixels") -> float:
    """What fal bills a result in ``unit``: output megapixels (the fake's idea: unrounded), or images."""
    images = result.get("images", ())
    if unit == "image":
        return float(len(images))
    return round(sum(i.get("width", 0) * i.get("height", 0) for i in images) / MEGAPIXEL, 4)


def _item(job, now: float, payloads: bool) -> dict:
    sent = job.submitted_wall
    started = sent + job.queue_time
    done = job.done(now) and job.ready.is_set()
    code = None if not done else (500 if job.error else 499 if job.cancelled else 200)
    item = {"request_id": job.request_id, "endpoint_id": job.endpoint, "sent_at": iso8601(sent),
            "started_at": iso8601(started), "ended_at": iso8601(sent + job.completed_at - job.submitted_at)
            if done else None, "status_code": code, "duration": job.run_time if done else None}
    if payloads and job.store_io:
        item.update(json_input=job.arguments, json_output=job.result if done and code == 200 else None)
    return item


def _wall(text: str | None) -> float | None:
    if not text:
        return None
    day = len(text) == 10  # YYYY-MM-DD, as fal's docs allow
    moment = datetime.datetime.fromisoformat(text + "T00:00:00+00:00" if day else text.replace("Z", "+00:00"))
    return moment.timestamp()


def requests_by_endpoint(fake, query: dict, endpoints: list[str]) -> Reply:
    if not endpoints:
        return _error(422, "validation_error", "endpoint_id is required")
    try:
        limit = min(100, max(1, int(query.get("limit", 50))))
        offset = int(query.get("cursor") or 0)
        start = _wall(query.get("start"))
    except ValueError:
        return _error(422, "validation_error", "limit and cursor must be integers, start an ISO 8601 time")
    payloads = "payloads" in str(query.get("expand", "")).split(",")
    now = time.monotonic()
    with fake._cond:
        jobs = [j for j in fake.jobs.values() if j.endpoint in endpoints and (start is None or j.submitted_wall >= start)]
        fake.platform_calls += 1
    jobs.sort(key=lambda j: j.submitted_wall, reverse=True)
    page = jobs[offset:offset + limit]
    more = offset + limit < len(jobs)
    return json_reply(200, {"items": [_item(j, now, payloads) for j in page], "has_more": more,
                            "next_cursor": str(offset + limit) if more else None})


def pricing(fake, endpoints: list[str]) -> Reply:
    prices = [{"endpoint_id": e, "unit_price": fake.unit_prices[e], "unit": fake.price_units.get(e, "megapixels"),
               "currency": "USD"} for e in endpoints if e in fake.unit_prices]
    with fake._cond:
        fake.platform_calls += 1
    return json_reply(200, {"prices": prices, "next_cursor": None, "has_more": False})
