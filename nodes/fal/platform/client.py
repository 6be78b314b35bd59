"""fal's Platform API: the requests a key made to an endpoint, and the endpoints' unit prices.

Shapes from fal's Platform API OpenAPI (api.fal.ai/v1/openapi.json, mirrored in tryAGI/Fal
``src/libs/Fal/openapi.json``): ``GET /v1/models/requests/by-endpoint?endpoint_id=…&limit=…&cursor=…
&start=…&end=…`` answers ``{items: [{request_id, endpoint_id, started_at, sent_at, ended_at,
status_code, duration}], next_cursor, has_more}`` (the last 24 h unless ``start`` says otherwise, up
to 90 days); ``GET /v1/models/pricing?endpoint_id=…`` answers ``{prices: [{endpoint_id, unit_price,
unit, currency}]}``. Auth ``Authorization: Key …``. Only fal direct reaches it: a gateway is not fal,
and @fal-ai/server-proxy 1.2.1's default allow-list admits fal.run, queue.fal.run and storage
initiation, not api.fal.ai (its 400 "Invalid request").
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

from ..base.errors import FalError
from ..wire.config import FalConfig
from ..wire.transport import Transport, json_body

MAX_LIMIT = 100
MAX_DAYS = 90


def unreachable_reason(config: FalConfig) -> str | None:
    """Why fal's own history cannot be read through this connection, or None."""
    if config.mode == "gateway":
        return ("fal's request history is not reachable through a gateway: it is fal's Platform API, "
                "which only a fal key can read (use fal direct with FAL_KEY to list it).")
    if config.mode == "proxy":
        return ("fal's request history is not reachable through fal's server proxy: its allow-list admits "
                "fal.run, queue.fal.run and storage uploads, not api.fal.ai.")
    if not config.key:
        return "fal's request history needs a fal key (FAL_KEY)."
    return None


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


def unix(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def job_from_item(item: dict) -> dict:
    """A Platform API request as a job of the history (its status from its HTTP status code)."""
    code, ended = item.get("status_code"), unix(item.get("ended_at"))
    status = "running" if code is None and ended is None else "done" if code is not None and code < 400 \
        else "failed"
    return {"request_id": item.get("request_id"), "endpoint": item.get("endpoint_id"), "status": status,
            "submitted_at": unix(item.get("sent_at")) or unix(item.get("started_at")), "finished_at": ended,
            "error": f"fal answered HTTP {code}" if status == "failed" else None}


class PlatformClient:
    def __init__(self, config: FalConfig, transport: Transport):
        self.config, self.transport = config, transport

    def _get(self, path: str, params: Sequence[tuple[str, Any]], what: str) -> Any:
        reason = unreachable_reason(self.config)
        if reason:
            raise FalError(reason)
        resp = self.transport.request("GET", f"{self.config.api_base}/v1/{path}", what=what, params=list(params),
                                      ok=(200,))
        return json_body(resp, what)

    def requests(self, endpoint_ids: Sequence[str], *, limit: int = 50, cursor: str | None = None,
                 start: float | None = None, end: float | None = None) -> tuple[list[dict], str | None]:
        """One page of the key's requests to these endpoints, newest first, as history jobs."""
        items, next_cursor = self.request_items(endpoint_ids, limit=limit, cursor=cursor, start=start, end=end)
        return [job_from_item(item) for item in items], next_cursor

    def request_items(self, endpoint_ids: Sequence[str], *, limit: int = 50, cursor: str | None = None,
                      start: float | None = None, end: float | None = None,
                      payloads: bool = False) -> tuple[list[dict], str | None]:
        """One page of fal's request items as it gives them (``payloads``: with their ``json_input``
        and ``json_output``, ``expand=payloads``), and the next page's cursor or None."""
        params: list[tuple[str, Any]] = [("endpoint_id", e) for e in endpoint_ids]
        params.append(("limit", max(1, min(MAX_LIMIT, int(limit)))))
        if cursor:
            params.append(("cursor", cursor))
        if start is not None:
            params.append(("start", iso(start)))
        if end is not None:
            params.append(("end", iso(end)))
        if payloads:
            params.append(("expand", "payloads"))
        body = self._get("models/requests/by-endpoint", params, "Listing fal's request history")
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise FalError("fal's request history answered without an items list.")
        items = [item for item in items if isinstance(item, dict) and item.get("request_id")]
        return items, (body.get("next_cursor") if body.get("has_more", True) else None)

    def unit_prices(self, endpoint_ids: Sequence[str]) -> dict[str, dict]:
        """{endpoint_id: {unit_price, unit, currency}} (account discounts may apply)."""
        body = self._get("models/pricing", [("endpoint_id", e) for e in endpoint_ids], "Reading fal's prices")
        prices = body.get("prices") if isinstance(body, dict) else None
        return {p["endpoint_id"]: {"unit_price": float(p["unit_price"]), "unit": p.get("unit"),
                                   "currency": p.get("currency", "USD")}
                for p in prices or () if isinstance(p, dict) and isinstance(p.get("unit_price"), (int, float))}
