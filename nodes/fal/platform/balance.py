"""A gateway's credit left, from the balance calls the new-api / one-api relay software answers with the
same Bearer token as the edits (docs/gateways.md has the sources):

* ``GET /v1/dashboard/billing/subscription`` → ``{"hard_limit_usd": remain + used, …}`` and
  ``GET /v1/dashboard/billing/usage`` → ``{"total_usage": used × 100}`` (cents), OpenAI's old billing
  shape (one-api ``controller/billing.go``, new-api ``controller/billing.go``): left = hard limit −
  usage / 100. The figures are the token's (``DisplayTokenStatEnabled``) or the user's, in the unit the
  gateway shows (US dollars by default; a gateway set to show ¥ or tokens reports those under the same
  names). An unlimited token reports ``hard_limit_usd`` 100000000 (1e8);
* new-api's ``GET /api/usage/token/`` → ``{"code": true, "data": {"total_available", "unlimited_quota",
  …}}`` in raw quota units (500,000 to the dollar unless the gateway changed ``QuotaPerUnit``).

Asked at most once a minute per connection and token (an answer, or the lack of one, is kept that
long; new-api puts ``/api/usage`` behind a strict rate limit), one call at a time, and never on an
edit's way: only ``--check``, the fal panel's header and the batch runner's plan ask.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from ..base.errors import redact
from ..base.server_words import host_of, parse, words_of
from ..base.waiting import Waiter
from ..wire.config import FalConfig
from ..wire.transport import Transport

ASK_EVERY = 60.0          # seconds an answer is kept: at most one question a minute
UNLIMITED = 100_000_000   # what one-api / new-api report as the total of an unlimited token
QUOTA_PER_USD = 500_000   # new-api / one-api's default QuotaPerUnit (raw quota units per dollar)
SUBSCRIPTION, USAGE = "/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage"
TOKEN_USAGE = "/api/usage/token/"
CALL_TIMEOUT = (5.0, 10.0)


@dataclass(frozen=True)
class Balance:
    host: str
    usd: float | None = None   # credit left, in the gateway's unit; None when unlimited or unknown
    unlimited: bool = False
    source: str = ""           # the calls that answered
    note: str = ""             # why it is not known (not offered, refused, unreachable)
    asked_at: float = 0.0      # time.time() of the answer

    @property
    def known(self) -> bool:
        return self.unlimited or self.usd is not None

    def text(self) -> str:
        if self.unlimited:
            return f"unlimited token at {self.host}"
        if self.usd is not None:
            assumed = " (raw quota at new-api's default 500,000 a dollar)" if self.source == TOKEN_USAGE else ""
            return f"${self.usd:.2f} left at {self.host}{assumed}"
        return f"{self.note} ({self.host})" if self.note else f"not offered by this gateway ({self.host})"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "known": self.known, "text": self.text()}


_answers: dict[str, Balance] = {}
_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def forget_answers() -> None:
    """Drop every kept answer (tests; a token changed on purpose)."""
    with _guard:
        _answers.clear()


class GatewayBalance:
    """The balance of one connection; ``current`` is None for fal direct and the proxy (no such call)."""

    def __init__(self, config: FalConfig, transport: Transport):
        self.config, self.transport = config, transport

    def _key(self) -> str:
        # Per token too: one saved in the panel's Keys a moment ago has a balance of its own. Only a digest.
        token = hashlib.sha256(self.config.key.reveal().encode()).hexdigest()[:16] if self.config.key else ""
        return f"{self.config.connection_id} {token}"

    def current(self, max_age: float = ASK_EVERY) -> Balance | None:
        if self.config.mode != "gateway":
            return None
        key = self._key()
        with _guard:
            lock = _locks.setdefault(key, threading.Lock())
        with lock:  # one question at a time; the others take its answer
            kept = _answers.get(key)
            if kept is not None and time.time() - kept.asked_at < max_age:
                return kept
            answer = self.ask()
            with _guard:
                _answers[key] = answer
            return answer

    # -- the calls ---------------------------------------------------------------------------
    def ask(self) -> Balance:
        root = "{0.scheme}://{0.netloc}".format(urlsplit(self.config.queue_base))  # the relay's routes sit at its root
        host = host_of(self.config.queue_base)
        now = time.time()
        subscription, why = self._get(root + SUBSCRIPTION)
        if isinstance(subscription, dict) and isinstance(subscription.get("hard_limit_usd"), (int, float)):
            total = float(subscription["hard_limit_usd"])
            if abs(total - UNLIMITED) < 0.5:
                return Balance(host, unlimited=True, source=SUBSCRIPTION, asked_at=now)
            usage, why_usage = self._get(root + USAGE)
            if isinstance(usage, dict) and isinstance(usage.get("total_usage"), (int, float)):
                left = total - float(usage["total_usage"]) / 100.0
                return Balance(host, usd=round(max(left, 0.0), 4), source=f"{SUBSCRIPTION} + {USAGE}", asked_at=now)
            why = why_usage
        token, why_token = self._get(root + TOKEN_USAGE)
        data = token.get("data") if isinstance(token, dict) else None
        if isinstance(data, dict):
            if data.get("unlimited_quota") is True:
                return Balance(host, unlimited=True, source=TOKEN_USAGE, asked_at=now)
            if isinstance(data.get("total_available"), (int, float)):
                return Balance(host, usd=round(max(float(data["total_available"]), 0.0) / QUOTA_PER_USD, 4),
                               source=TOKEN_USAGE, asked_at=now)
        return Balance(host, note=why or why_token or "not offered by this gateway", asked_at=now)

    def _get(self, url: str) -> tuple[Any, str]:
        """(the JSON answer, or None and why not). One try, no retries: a balance can wait a minute."""
        url, headers, params = self.transport.route(url)
        try:
            resp = self.transport.send_once("GET", url, waiter=Waiter(timeout=15.0), headers=headers, params=params,
                                            timeout=CALL_TIMEOUT)
        except requests.RequestException as exc:
            return None, f"the balance could not be asked ({type(exc).__name__})"
        try:
            body, text = parse(resp.content)
        except requests.RequestException as exc:
            return None, f"the balance answer broke off ({type(exc).__name__})"
        finally:
            resp.close()
        if resp.status_code in (404, 405, 501) or (resp.status_code == 200 and body is None):
            return None, ""  # not offered (a web page for unknown paths is "not offered" too)
        words = words_of(body, text)
        if resp.status_code != 200 or (isinstance(body, dict) and body.get("error")) \
                or (isinstance(body, dict) and body.get("success") is False):
            said = words.message or (json.dumps(body, ensure_ascii=False) if body is not None else text)[:120]
            return None, redact(f"the gateway did not tell its balance (HTTP {resp.status_code}: {said})")
        return body, ""
