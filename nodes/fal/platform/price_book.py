"""Unit prices from fal's pricing API, refreshed at most once a day and cached on disk (``prices.json``
in the state folder); the endpoint table (models/endpoints.py) stays the fallback and the offline truth.

What a job really cost is fal's ``X-Fal-Billable-Units`` on its result × the unit price: each figure
says where it came from ("fal pricing API" or "endpoint table").
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ..base.atomic_write import write_atomic
from ..base.errors import FalError
from ..models.endpoints import spec_for
from .client import PlatformClient, unreachable_reason

log = logging.getLogger("fal_qwen_edit")

REFRESH_SECONDS = 24 * 3600.0
FROM_FAL, FROM_TABLE = "fal pricing API", "endpoint table"


class PriceBook:
    def __init__(self, path: Path | None, platform: PlatformClient | None = None):
        self.path = Path(path) if path is not None else None
        self.platform = platform

    def _cached(self) -> dict:
        try:
            return json.loads(self.path.read_text()) if self.path else {}
        except (OSError, ValueError):
            return {}

    def unit_price(self, endpoint: str) -> tuple[float | None, str]:
        """(USD per billed unit, where it came from)."""
        cached = self._cached()
        entry = cached.get(endpoint)
        fresh = entry is not None and time.time() - entry.get("fetched_at", 0) < REFRESH_SECONDS
        if not fresh and self.platform is not None and unreachable_reason(self.platform.config) is None:
            try:
                for endpoint_id, price in self.platform.unit_prices([endpoint]).items():
                    cached[endpoint_id] = {**price, "fetched_at": time.time()}
                if self.path:
                    write_atomic(self.path, json.dumps(cached, indent=1).encode())
                entry = cached.get(endpoint)
            except FalError as exc:  # offline, or a key without that scope: the table is the truth
                log.info("fal: prices not refreshed (%s); using the cached or table price", exc)
        if entry is not None:
            return float(entry["unit_price"]), FROM_FAL
        return spec_for(None, endpoint).price_per_mp, FROM_TABLE

    def billed(self, endpoint: str, units: float | None) -> tuple[float | None, float | None, str]:
        """(billed USD, unit price, source) for ``units`` of fal's X-Fal-Billable-Units."""
        if units is None:
            return None, None, ""
        price, source = self.unit_price(endpoint)
        return (round(units * price, 4) if price is not None else None), price, source
