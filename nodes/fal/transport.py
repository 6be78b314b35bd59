"""One pooled HTTP session with retries, and the mapping of HTTP failures to typed errors.

Retry rules (the money rule first):

* calls that cannot cost anything (status, result, cancel, uploads, downloads)
  are retried on connection errors, 429 (honouring ``Retry-After``) and
  502/503/504, with exponential backoff and jitter;
* a submit is retried only when the server certainly did not accept it: the
  connection was never established, or the answer was 429, or a 503 from the
  ingress (no ``x-fal-request-id`` header, fal-client's test for "the app never
  saw it"). A submit whose answer is lost raises ``SubmitUncertainError``
  instead, because resending it could pay twice.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .config import FalConfig
from .errors import (AuthError, FalError, HTTPStatusError, RateLimitError, SubmitUncertainError,
                     TransportError, ValidationError, redact)
from .waiting import Waiter

log = logging.getLogger("fal_qwen_edit")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "comfyui-fal-qwen-edit/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all, the first one included
    base_delay: float = 0.1
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a longer Retry-After is reported instead of slept

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): exponential with jitter."""
        delay = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return delay * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _never_connected(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
        name = type(reason).__name__
        return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
    return False


def response_detail(resp: requests.Response) -> Any:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def _detail_text(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, (dict,)):
        return json.dumps(detail)[:500]
    return str(detail)


def error_for_response(resp: requests.Response, what: str, request_id: str | None = None,
                       key_source: str = "") -> HTTPStatusError:
    """Turn an unsuccessful response into the typed error a user can act on."""
    status = resp.status_code
    request_id = request_id or resp.headers.get("x-fal-request-id")
    detail = response_detail(resp)
    text = _detail_text(detail)
    if status in (401, 403):
        where = f" (taken from {key_source})" if key_source else ""
        return AuthError(f"{what}: the server refused the key{where} with HTTP {status}. "
                         "Check that the key is valid and matches the connection mode "
                         "(fal keys use 'Key', gateway tokens use 'Bearer').",
                         status=status, request_id=request_id, detail=detail)
    if status == 422:
        fields = []
        if isinstance(detail, list):
            for item in detail:
                loc = [str(x) for x in (item.get("loc", []) if isinstance(item, dict) else []) if x != "body"]
                if loc:
                    fields.append(".".join(loc))
        return ValidationError(f"{what}: fal rejected the request: {text}", status=status,
                               fields=fields, request_id=request_id, detail=detail)
    if status == 429:
        return RateLimitError(f"{what}: rate limited by the server (HTTP 429) after every retry; "
                              "wait a little or lower concurrency.", status=status,
                              request_id=request_id, detail=detail)
    return HTTPStatusError(f"{what}: HTTP {status}: {text}", status=status,
                           request_id=request_id, detail=detail)


class Transport:
    """requests.Session shared by every call of a client; thread-safe for our use.

    ``config=None`` makes a keyless transport (for fetching arbitrary URLs)."""

    def __init__(self, config: FalConfig | None, retry: RetryPolicy | None = None,
                 timeout: tuple[float, float] = (10.0, 60.0), pool_size: int = 16,
                 verify: bool | str = True):
        self.config = config
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.session = requests.Session()
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify = verify  # a CA bundle path may be given; never False by default
        self.session.verify = verify
        adapter = HTTPAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self.session.close()

    def headers_for(self, url: str, extra: dict | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.config is not None and self.config.may_send_key_to(url):
            headers.update(self.config.auth_header())
        return headers

    def request(self, method: str, url: str, *, what: str, waiter: Waiter | None = None,
                submit: bool = False, request_id: str | None = None,
                ok: tuple[int, ...] = (200, 201, 202), headers: dict | None = None,
                auth: bool = True, timeout: tuple[float, float] | None = None,
                **kwargs: Any) -> requests.Response:
        """Send with retries; return a response whose status is in ``ok``.

        ``submit=True`` applies the never-pay-twice rule. ``what`` names the call
        in error messages ("Submit to fal-ai/qwen-image-edit-plus").
        """
        waiter = waiter or Waiter()
        send_headers = self.headers_for(url, headers) if auth else dict(headers or {})
        attempt = 0
        while True:
            attempt += 1
            waiter.check(request_id)
            try:
                resp = self.session.request(method, url, headers=send_headers, verify=self.verify,
                                            timeout=timeout or self.timeout, **kwargs)
            except requests.RequestException as exc:
                retryable = _never_connected(exc) if submit else True
                if not retryable:
                    raise SubmitUncertainError(
                        f"{what}: the connection failed after the request was sent "
                        f"({type(exc).__name__}); the job may have been accepted and billed, so it "
                        "was not resent. Check your fal dashboard before running it again.",
                        request_id=request_id) from None
                if attempt >= self.retry.attempts:
                    raise TransportError(f"{what}: network error after {attempt} tries: "
                                         f"{redact(type(exc).__name__)}. Check the connection and the base URL.",
                                         request_id=request_id) from None
                delay = self.retry.backoff(attempt)
                log.debug("%s: %s, retry %d in %.2fs", what, type(exc).__name__, attempt, delay)
                waiter.sleep(delay, request_id)
                continue

            if resp.status_code in ok:
                return resp
            if resp.status_code in RETRY_STATUSES and attempt < self.retry.attempts \
                    and self._may_retry_status(resp, submit):
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else self.retry.backoff(attempt)
                if delay <= self.retry.max_retry_after:
                    log.info("%s: HTTP %d, retry %d in %.2fs", what, resp.status_code, attempt, delay)
                    resp.close()
                    waiter.sleep(delay, request_id)
                    continue
            try:
                raise error_for_response(resp, what, request_id,
                                         self.config.key_source if self.config else "")
            finally:
                resp.close()

    @staticmethod
    def _may_retry_status(resp: requests.Response, submit: bool) -> bool:
        if not submit:
            return True
        if resp.status_code == 429:
            return True
        # A 503 from the ingress never reached the app; 502/504 might have.
        return resp.status_code == 503 and "x-fal-request-id" not in resp.headers


def json_body(resp: requests.Response, what: str, request_id: str | None = None) -> Any:
    try:
        return resp.json()
    except ValueError:
        snippet = redact(resp.text[:120])
        raise FalError(f"{what}: the server sent malformed JSON ({snippet!r}).",
                       request_id=request_id) from None
