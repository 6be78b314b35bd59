"""Unit prices from fal's pricing API, cached on disk (``prices.json`` in the state folder) and asked for
when a job is submitted.

Two uses, two rules (models/pricing.py has the estimate's):

* an estimate (``price_for``): the endpoint table's price, else the cached pricing-API price, else None
  ("price unknown"); it never waits on the network, except ``ask=True``, which the spending cap uses when
  it would otherwise have to refuse an edit of unknown price;
* a billed figure (``billed``): fal's ``X-Fal-Billable-Units`` on a result × fal's own unit price (which
  may carry the account's discount), else the table's. Each figure says where it came from.

The price is asked when a job is submitted, in the background while the job runs (``ask_soon``), and the
billed figure waits for that answer (up to ``BILLED_WAIT`` seconds): so even the first job on a fresh
install is billed at fal's price, not the table's. A cached price is asked again once a day at most; an ask
that got nothing is not repeated within ``RETRY_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from ..base.atomic_write import write_atomic
from ..base.errors import FalError
from ..models.endpoints import EndpointSpec, spec_for
from ..models.pricing import FROM_FAL, FROM_TABLE, UnitPrice, api_price, table_price
from .client import PlatformClient, unreachable_reason

log = logging.getLogger("fal_qwen_edit")

REFRESH_SECONDS = 24 * 3600.0
RETRY_SECONDS = 600.0   # an ask that failed (offline, a key without that scope) is not repeated sooner
ANSWER_WAIT = 10.0      # how long the cap waits for an ask already under way (it would refuse otherwise)
# How long a finished job's billed figure waits for it: on the path to the result, and only for a job that
# ended before an ask made at its submit (once a day per endpoint at most); past it, the table's price.
BILLED_WAIT = 2.0
__all__ = ["PriceBook", "FROM_FAL", "FROM_TABLE"]


class PriceBook:
    """``path`` None: the endpoint table only (no state folder, e.g. a throwaway client). ``platform``
    None: the cache is read, never refreshed (the price route: it computes only)."""

    def __init__(self, path: Path | None, platform: PlatformClient | None = None):
        self.path = Path(path) if path is not None else None
        self.platform = platform if path is not None else None
        self._lock = threading.Lock()
        self._asked: dict[str, float] = {}             # endpoint → when it was last asked (monotonic)
        self._answers: dict[str, threading.Event] = {}  # endpoint → set once its ask under way has ended
        self._read: tuple[tuple[int, int, int], dict] | None = None  # ((inode, mtime, size), its prices)

    def _cached(self) -> dict:
        """The file's prices, parsed again only when it changed (every finished job asks)."""
        if self.path is None:
            return {}
        try:
            stat = self.path.stat()
            seen, read = (stat.st_ino, stat.st_mtime_ns, stat.st_size), self._read
            if read is not None and read[0] == seen:
                return dict(read[1])
            prices = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(prices, dict):
            return {}
        self._read = (seen, prices)
        return dict(prices)

    # -- estimates ----------------------------------------------------------------------
    def price_for(self, spec: EndpointSpec, *, ask: bool = False) -> UnitPrice | None:
        """The estimate's price: the table's, else fal's cached one, else None. ``ask``: when neither is
        known, ask fal now and wait for the answer (bounded)."""
        price = table_price(spec) or api_price(self._cached().get(spec.endpoint))
        if price is None and ask and self.ask_soon(spec.endpoint):
            self.wait_for(spec.endpoint)
            price = api_price(self._cached().get(spec.endpoint))
        return price

    # -- asking fal -----------------------------------------------------------------------
    def reachable(self) -> bool:
        return self.platform is not None and unreachable_reason(self.platform.config) is None

    def ask_soon(self, endpoint: str) -> bool:
        """Ask fal's pricing API for ``endpoint`` in the background, unless its price is fresh or it was
        asked a moment ago; True when an ask is under way (this one or an earlier one)."""
        if not self.reachable():
            return False
        entry = self._cached().get(endpoint)
        fresh = isinstance(entry, dict) and time.time() - entry.get("fetched_at", 0) < REFRESH_SECONDS
        with self._lock:
            running = self._answers.get(endpoint)
            if running is not None and not running.is_set():
                return True
            asked = self._asked.get(endpoint)
            if fresh or (asked is not None and time.monotonic() - asked < RETRY_SECONDS):
                return False
            self._asked[endpoint] = time.monotonic()
            done = self._answers[endpoint] = threading.Event()
        threading.Thread(target=self._ask, args=(endpoint, done), name="fal-prices", daemon=True).start()
        return True

    def wait_for(self, endpoint: str, timeout: float = ANSWER_WAIT) -> None:
        with self._lock:
            running = self._answers.get(endpoint)
        if running is not None:
            running.wait(timeout)

    def _ask(self, endpoint: str, done: threading.Event) -> None:
        try:
            self.refresh([endpoint])
        finally:
            done.set()

    def refresh(self, endpoints: list[str]) -> None:
        platform, path = self.platform, self.path
        if platform is None or path is None:
            return
        try:
            prices = platform.unit_prices(endpoints)
        except FalError as exc:  # offline, or a key without that scope: the table stays the truth
            log.info("fal: prices not refreshed (%s); using the cached or table price", exc)
            return
        if not prices:
            log.info("fal: fal's pricing API has no price for %s", ", ".join(endpoints))
            return
        with self._lock:  # two asks ending together must not drop each other's entry
            cached = self._cached()
            cached.update({endpoint: {**price, "fetched_at": time.time()} for endpoint, price in prices.items()})
            write_atomic(path, json.dumps(cached, indent=1).encode())

    # -- billed figures --------------------------------------------------------------------
    def unit_price(self, endpoint: str) -> tuple[float | None, str]:
        """(USD per billed unit, where it came from): fal's own price (an ask under way is waited for),
        else the table's; a stale price is asked again in the background for the next job."""
        self.wait_for(endpoint, BILLED_WAIT)
        self.ask_soon(endpoint)  # nothing when it is fresh or was just asked
        entry = self._cached().get(endpoint)
        if isinstance(entry, dict) and isinstance(entry.get("unit_price"), (int, float)):
            return float(entry["unit_price"]), FROM_FAL
        return spec_for(None, endpoint).price_per_mp, FROM_TABLE

    def billed(self, endpoint: str, units: float | None) -> tuple[float | None, float | None, str]:
        """(billed USD, unit price, source) for ``units`` of fal's X-Fal-Billable-Units (in fal's own unit:
        megapixels or images, as its pricing API names it)."""
        if units is None:
            return None, None, ""
        price, source = self.unit_price(endpoint)
        return (round(units * price, 4) if price is not None else None), price, source
