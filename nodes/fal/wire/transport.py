"""One pooled HTTP session with retries (HTTP failures become the typed errors of errors.py).

Retry rules (the money rule first):

* calls that cannot cost anything (status, result, cancel, uploads, downloads)
  are retried on connection errors, 429 (honouring ``Retry-After``) and
  502/503/504, with exponential backoff and jitter;
* a submit is retried only when the server certainly did not accept it: not a
  byte of it was sent, or the answer was 429, or a 503 from the
  ingress (no ``x-fal-request-id`` header, fal-client's test for "the app never
  saw it"). A submit whose answer is lost raises ``SubmitUncertainError``
  instead, because resending it could pay twice.

Whether a request "went out" is told by the tracked connections of sending.py.
A connection to fal's queue that cannot be made at all is tried once on its backup
host within the same attempt (backup.py), and a 504 that names a start deadline
(``X-Fal-Request-Timeout-Type``) is never retried: fal dropped that job on purpose.

Every call runs through ``Waiter.run``: Cancel and the deadline abandon a call
stalled on a silent server within 250 ms, and its socket is shut down so the
worker thread ends at once instead of at its read timeout. A submit that has
already gone out is never abandoned: its answer names the job to cancel.
"""

from __future__ import annotations

import email.utils
import io
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Mapping

import requests

from .config import FalConfig
from ..base.errors import (REQUEST_TIMEOUT_TYPE_HEADER, FalError, SubmitUncertainError, TransportError,
                           error_for_response, redact)
from ..base.errors import HTTPStatusError, response_detail  # noqa: F401 - importable from here as before
from ..base.server_words import LASTING, host_of, parse, verdict, where_billed, words_of
from .backup import capped, connect_failed
from .routing import route_call
from .sending import _CallState, _local, _never_connected, _Tracked, _TrackingAdapter  # noqa: F401 - tests patch _Tracked
from ..base.json_text import Body
from ..base.phases import phase
from ..base.waiting import BodyWatch, Waiter

log = logging.getLogger("fal_qwen_edit")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
PIECES_FROM = 256 * 1024  # bodies above this are sent a block at a time (see _in_pieces)
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


class Transport:
    """requests.Session shared by every call of a client; thread-safe for our use.

    ``config=None`` makes a keyless transport (for fetching arbitrary URLs)."""

    def __init__(self, config: FalConfig | None, retry: RetryPolicy | None = None,
                 timeout: tuple[float, float] = (10.0, 60.0), pool_size: int = 32,
                 verify: bool | str = True):
        self.config = config
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        # Passed on every request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        self.verify = verify  # a CA bundle path may be given; never False by default
        # Connections kept per host: batch mode at its maximum concurrency (16) holds 16 status
        # streams open while the next 16 frames upload and submit.
        self.session = self._new_session(pool_size)
        self._bodies = BodyWatch()

    def _new_session(self, pool_size: int) -> requests.Session:
        session = requests.Session()
        session.verify = self.verify
        if hasattr(self, "session"):  # a fresh connection goes the same way as pooled ones
            session.proxies, session.trust_env = dict(self.session.proxies), self.session.trust_env
        adapter = _TrackingAdapter(pool_connections=8, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        return session

    def close(self) -> None:
        self.session.close()

    def route(self, url: str, headers: dict | None = None, params: dict | None = None,
              auth: bool = True) -> tuple[str, dict[str, str], Mapping[str, Any] | None]:
        """(URL, headers, params) to send a call to ``url`` with: see routing.py."""
        return route_call(self.config, url, headers, params, auth)

    def send_once(self, method: str, url: str, *, waiter: Waiter, request_id: str | None = None,
                  submit: bool = False, session: requests.Session | None = None,
                  **kwargs: Any) -> requests.Response:
        """One attempt, interruptible by ``waiter``. A RequestException it raises carries
        ``never_sent``: True when not a byte of the request reached the server.

        A call to fal's queue whose connection could not be made goes to the other queue host
        (backup.py); when that fails to connect too, the first error is raised (its retry rules
        hold). The response's ``url`` tells which host answered."""
        other = self.config.other_queue_host(url) if self.config is not None else None
        if other is None:
            return self._send_one(method, url, waiter, request_id, submit, session, kwargs)
        kwargs["timeout"] = capped(kwargs.get("timeout"), self.timeout)
        try:
            return self._send_one(method, url, waiter, request_id, submit, session, kwargs)
        except requests.RequestException as exc:
            if not (_never_sent(exc) and connect_failed(exc)):
                raise  # it reached the server, or failed some other way: never replayed elsewhere
            primary = exc
        log.warning("fal: connection to %s failed (%s); trying fal's other queue host, %s", _host(url),
                    type(primary).__name__, _host(other))
        try:
            return self._send_one(method, other, waiter, request_id, submit, session, kwargs)
        except requests.RequestException as exc:
            if _never_sent(exc) and connect_failed(exc):
                raise primary from None
            raise

    def _send_one(self, method: str, url: str, waiter: Waiter, request_id: str | None, submit: bool,
                  session: requests.Session | None, kwargs: dict[str, Any]) -> requests.Response:
        # ``guard`` (address_guard.py): the addresses a download's new connections may go to.
        state = _CallState(submit=submit, guard=kwargs.get("guard"))
        session = session or self.session
        sent_kwargs = {name: value for name, value in kwargs.items() if name != "guard"}

        def call() -> requests.Response:
            _local.state = state
            try:
                return session.request(method, url, verify=self.verify, **_in_pieces(sent_kwargs))
            finally:
                _local.state = None

        def abort() -> bool:
            if state.abort(unsent_only=submit):
                return True
            log.info("fal: the submit already went out; waiting for its answer so that the job it "
                     "created can be cancelled")
            return False

        try:
            resp = waiter.run(call, request_id, abort=abort, on_abandon=lambda resp: resp.close())
        except requests.RequestException as exc:
            setattr(exc, _NEVER_SENT, _never_connected(exc, state))
            raise
        # a streamed body still holds the connection: BodyWatch may abort it (it reads resp.fal_call)
        setattr(resp, "fal_call", state)
        return resp

    def request(self, method: str, url: str, *, what: str, waiter: Waiter | None = None,
                submit: bool = False, request_id: str | None = None,
                ok: tuple[int, ...] = (200, 201, 202), headers: dict | None = None,
                auth: bool = True, timeout: tuple[float, float] | None = None, fresh: bool = False,
                **kwargs: Any) -> requests.Response:
        """Send with retries; return a response whose status is in ``ok``.

        ``submit=True`` applies the never-pay-twice rule. ``what`` names the call
        in error messages ("Submit to fal-ai/qwen-image-edit-plus"). ``fresh`` uses
        new connections (cancel: the pooled ones may lead to the server that stalled).
        A streamed body is watched too: Cancel or the deadline breaks its read. ``guard`` (a
        download's, address_guard.py) judges the address of every new connection the call opens.
        """
        waiter = waiter or Waiter()
        url, send_headers, params = self.route(url, headers, kwargs.pop("params", None), auth)
        session = self._new_session(1) if fresh else self.session
        try:
            resp = self._attempts(method, url, what, waiter, submit, request_id, ok, session,
                                  headers=send_headers, params=params, timeout=timeout or self.timeout,
                                  **kwargs)
        finally:
            if fresh:
                session.close()  # a non-streamed body is already read; the socket can go
        if kwargs.get("stream") and not submit:
            self._bodies.add(resp, waiter)
        return resp

    def _attempts(self, method: str, url: str, what: str, waiter: Waiter, submit: bool,
                  request_id: str | None, ok: tuple[int, ...], session: requests.Session,
                  **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            attempt += 1
            waiter.check(request_id)
            try:
                resp = self.send_once(method, url, waiter=waiter, request_id=request_id, submit=submit,
                                      session=session, **kwargs)
            except requests.RequestException as exc:
                retryable = _never_sent(exc) if submit else True
                if not retryable:
                    raise SubmitUncertainError(
                        f"{what}: the connection to {_bare(url)} failed after the request was sent "
                        f"({type(exc).__name__}); the job may have been accepted and billed, so it "
                        f"was not resent. Check {self._where_billed()} before running it again.",
                        request_id=request_id) from None
                if attempt >= self.retry.attempts:
                    raise TransportError(f"{what}: network error after {attempt} tries: could not reach "
                                         f"{_bare(url)} ({redact(type(exc).__name__)}). Check the connection "
                                         "and the base URL.", request_id=request_id) from None
                delay = self.retry.backoff(attempt)
                log.debug("%s: %s, retry %d in %.2fs", what, type(exc).__name__, attempt, delay)
                waiter.sleep(delay, request_id)
                continue

            if resp.status_code in ok:
                return resp
            if resp.status_code in RETRY_STATUSES and attempt < self.retry.attempts \
                    and self._may_retry_status(resp, submit) and not self._lasting_refusal(resp):
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else self.retry.backoff(attempt)
                if delay <= self.retry.max_retry_after:
                    log.info("%s: HTTP %d, retry %d in %.2fs", what, resp.status_code, attempt, delay)
                    resp.close()
                    waiter.sleep(delay, request_id)
                    continue
            try:
                config = self.config
                raise error_for_response(resp, what, request_id, config.key_source if config and config.key else "",
                                         config.mode if config else "fal", self.host(), submit)
            finally:
                resp.close()

    def host(self) -> str:
        """The host a person knows this connection by (a gateway's, in its messages)."""
        config = self.config
        return host_of(config.proxy_url or config.queue_base) if config is not None else ""

    def _where_billed(self) -> str:
        return where_billed(self.config.mode, self.config.queue_base) if self.config is not None \
            else "your fal dashboard"

    def _lasting_refusal(self, resp: requests.Response) -> bool:
        """A gateway's own 5xx whose words say the same answer would come again ("无可用渠道": no channel
        for the model): nothing was queued, and retrying only makes the person wait (the relay software
        already tried each of its channels)."""
        if self.config is None or self.config.mode != "gateway" or resp.status_code == 429:
            return False
        body, text = parse(resp.content)
        return verdict(resp.status_code, words_of(body, text)) in LASTING

    @staticmethod
    def _may_retry_status(resp: requests.Response, submit: bool) -> bool:
        if resp.status_code == 504 and resp.headers.get(REQUEST_TIMEOUT_TYPE_HEADER):
            return False  # fal dropped the job at its start deadline (fal-client: "Honor user defined timeouts")
        if not submit:
            return True
        if resp.status_code == 429:
            return True
        # A 503 from the ingress never reached the app; 502/504 might have.
        return resp.status_code == 503 and "x-fal-request-id" not in resp.headers


def _in_pieces(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A large body goes out as a file, a block at a time, each block under the socket timeout.

    Given as bytes (or as ``json``), urllib3 hands the whole body to one ``sendall``, and since
    Python 3.5 a socket timeout bounds that whole call: on a 20 Mbit/s uplink, any body over
    ~25 MB (three 12 MP PNGs as data URIs) failed after the 10 s connect timeout. A fresh file
    per attempt, so a retry sends the body again from its start. A ``json`` body is written as it
    is read (base/json_text.py): its data URIs are never escaped or joined into one big copy."""
    body, payload = kwargs.get("data"), kwargs.get("json")
    if payload is not None and body is None:
        with phase("body and fingerprint"):
            body = Body(payload)
        kwargs = {**kwargs, "headers": {"Content-Type": "application/json", **(kwargs.get("headers") or {})}}
        kwargs.pop("json")
        kwargs["data"] = body if len(body) > PIECES_FROM else body.value()
    elif isinstance(body, (bytes, bytearray)) and len(body) > PIECES_FROM:
        kwargs = {**kwargs, "data": io.BytesIO(body)}
        kwargs.pop("json", None)
    return kwargs


# What _send_one notes on every RequestException it raises: True when not a byte of the request reached
# the server. An attribute of the exception (which requests' types do not declare), so it travels with it.
_NEVER_SENT = "never_sent"


def _never_sent(exc: requests.RequestException) -> bool:
    return getattr(exc, _NEVER_SENT)


def _host(url: str) -> str:
    return url.split("//", 1)[-1].split("/", 1)[0]


def _bare(url: str) -> str:
    """A URL as a message names it: scheme, host and path (a query may carry a webhook's secrets)."""
    return redact(url.split("?", 1)[0])


def json_body(resp: requests.Response, what: str, request_id: str | None = None) -> Any:
    try:
        return resp.json()
    except ValueError:
        snippet = redact(resp.text[:120])
        raise FalError(f"{what}: the server sent malformed JSON ({snippet!r}).",
                       request_id=request_id) from None
