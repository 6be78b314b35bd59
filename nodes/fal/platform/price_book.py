"""Unit prices from fal's pricing API, refreshed at most once a day and cached on disk (``prices.json``
in the state folder); the endpoint table (models/endpoints.py) stays the fallback and the offline truth.

What a job really cost is fal's ``X-Fal-Billable-Units`` on its result × the unit price: each figure
says where it came from ("fal pricing API" or "endpoint table").
"""

from __future__ import annotations

import json
import logging
import threading
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
    """``path`` None: the endpoint table only (no state folder, e.g. a throwaway client)."""

    def __init__(self, path: Path | None, platform: PlatformClient | None = None):
        self.path = Path(path) if path is not None else None
        self.platform = platform if path is not None else None
        self._lock = threading.Lock()
        self._asked_at = 0.0  # the last refresh tried, ok or not: at most one a REFRESH_SECONDS

    def _cached(self) -> dict:
        try:
            return json.loads(self.path.read_text()) if self.path else {}
        except (OSError, ValueError):
            return {}

    def unit_price(self, endpoint: str) -> tuple[float | None, str]:
        """(USD per billed unit, where it came from). Never waits on the network: a stale or missing
        price is refreshed in the background for the next job, and this one takes the table's."""
        entry = self._cached().get(endpoint)
        if entry is None or time.time() - entry.get("fetched_at", 0) >= REFRESH_SECONDS:
            self._refresh_soon(endpoint)
        if entry is not None:
            return float(entry["unit_price"]), FROM_FAL
        return spec_for(None, endpoint).price_per_mp, FROM_TABLE

    def _refresh_soon(self, endpoint: str) -> None:
        if self.platform is None or unreachable_reason(self.platform.config) is not None:
            return
        with self._lock:
            if time.monotonic() - self._asked_at < REFRESH_SECONDS and self._asked_at:
                return
            self._asked_at = time.monotonic()
        threading.Thread(target=self.refresh, args=([endpoint],), name="fal-prices", daemon=True).start()

    def refresh(self, endpoints: list[str]) -> None:
        platform, path = self.platform, self.path
        if platform is None or path is None:  # the table only (_refresh_soon never gets here then)
            return
        try:
            prices = platform.unit_prices(endpoints)
        except FalError as exc:  # offline, or a key without that scope: the table stays the truth
            log.info("fal: prices not refreshed (%s); using the cached or table price", exc)
            return
        cached = self._cached()
        cached.update({endpoint: {**price, "fetched_at": time.time()} for endpoint, price in prices.items()})
        write_atomic(path, json.dumps(cached, indent=1).encode())

    def billed(self, endpoint: str, units: float | None) -> tuple[float | None, float | None, str]:
        """(billed USD, unit price, source) for ``units`` of fal's X-Fal-Billable-Units."""
        if units is None:
            return None, None, ""
        price, source = self.unit_price(endpoint)
        return (round(units * price, 4) if price is not None else None), price, source
