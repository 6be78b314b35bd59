"""Typed, readable errors.

Every message is written for the person looking at a red node: it says what
went wrong, what to change, and the request id whenever fal gave us one (so a
paid job can always be found again). Messages pass through ``redact`` because
servers sometimes echo headers or URLs back, and a key must never reach the
screen or a log.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from .server_words import (BAD_TOKEN, CONTENT_REFUSED, NO_BALANCE, NO_CHANNEL, NOT_ALLOWED, RATE_LIMITED, Words,
                           advice, fal_detail_text, parse, verdict, words_of)

# Secrets registered here are scrubbed from every FalError message. The
# configuration registers each key it loads (see config.Secret).
_SECRETS: set[str] = set()

# fal's answer to a request whose start deadline (X-Fal-Request-Timeout) passed before any runner
# started it: 504 with this header (fal's "common parameters" docs; fal-client 1.0.3 `_headers.py`).
REQUEST_TIMEOUT_TYPE_HEADER = "X-Fal-Request-Timeout-Type"

# Anything that looks like an Authorization value is scrubbed too, whatever it is.
_AUTH_VALUE = re.compile(r"(?i)\b(Key|Bearer)\s+[A-Za-z0-9._:\-+/=]{8,}")


def register_secret(value: str) -> None:
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Remove every known secret (and any ``Key …``/``Bearer …`` value) from text."""
    if not text:
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return _AUTH_VALUE.sub(lambda m: f"{m.group(1)} ***", text)


def redact_value(value: object) -> object:
    """``redact`` applied to every string inside a JSON-like value (a server's error detail)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, dict):
        return {redact_value(k) if isinstance(k, str) else k: redact_value(v) for k, v in value.items()}
    return value


class FalError(Exception):
    """Base of every error raised by this package."""

    def __init__(self, message: str, *, request_id: str | None = None):
        self.request_id = request_id
        if request_id and request_id not in message:
            message = f"{message} (request id {request_id})"
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(FalError):
    """The connection settings are unusable (bad URL, unknown auth style…)."""


class MissingKeyError(ConfigError):
    """No key or token was found in any of the documented places."""


class InputError(FalError):
    """A request field is out of range; raised before any money moves."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"Fix these inputs before running the edit:\n{lines}")


class HTTPStatusError(FalError):
    """The server answered with an unexpected HTTP status.

    ``verdict`` (server_words.py) says what a gateway's own answer means; ``refused`` is True when a
    gateway answered a submit with an error in its own words and named no job: nothing was queued."""

    def __init__(self, message: str, *, status: int, request_id: str | None = None,
                 detail: object = None, verdict: str | None = None, refused: bool = False):
        self.status = status
        self.verdict, self.refused = verdict, refused
        # Kept for callers that inspect it (e.g. "still in progress"); servers may echo a
        # request's headers back, so it is scrubbed like the message.
        self.detail = redact_value(detail)
        super().__init__(message, request_id=request_id)


class AuthError(HTTPStatusError):
    """401/403: the key or token was refused."""


class ValidationError(HTTPStatusError):
    """422: fal rejected fields of the request; ``fields`` names them."""

    def __init__(self, message: str, *, status: int, fields: Iterable[str],
                 request_id: str | None = None, detail: object = None):
        self.fields = list(fields)
        super().__init__(message, status=status, request_id=request_id, detail=detail)


class JobUnknownError(HTTPStatusError):
    """The result URL answers 404: the server knows no such request (expired, another account,
    another endpoint). Only this, never a missing status route, makes a journalled job "unknown"."""


class RateLimitError(HTTPStatusError):
    """429 that outlasted every retry."""


class BalanceError(HTTPStatusError):
    """A gateway said the balance (or the token's quota) is used up."""


class NoChannelError(HTTPStatusError):
    """A gateway has no upstream channel for the endpoint right now (new-api's 503 "无可用渠道")."""


class ContentRefusedError(HTTPStatusError):
    """A gateway refused the prompt or the images for their content (sensitive words, a blocked prompt)."""


class SubmitUncertainError(FalError):
    """The submit was sent but its answer was lost: the job may exist and be billed.

    It is never retried automatically, because a retry could pay twice.
    """


class JobFailedError(FalError):
    """The job ran and fal reported an error for it."""

    def __init__(self, message: str, *, request_id: str | None = None,
                 error_type: str | None = None):
        self.error_type = error_type
        super().__init__(message, request_id=request_id)


class StartDeadlineError(JobFailedError):
    """fal dropped the job at its start deadline (``start_timeout``, sent as X-Fal-Request-Timeout)
    before any runner started it: nothing ran and nothing is billed. Never retried (fal-client
    1.0.3 `_should_retry_response`: "Honor user defined timeouts, do not retry")."""


class FalTimeoutError(FalError):
    """The overall time limit passed before the job finished."""


class CancelledError(FalError):
    """The job was cancelled: by the user (``by_user``), or remotely on fal.

    When the user cancelled while a job existed, ``fal_answer`` holds what fal answered to the
    cancel request ("CANCELLATION_REQUESTED", "ALREADY_COMPLETED" or "an error (...)"), so a
    caller can tell a job that finished anyway (its result is paid for and can be fetched)
    from one that was stopped. ``fal_answer`` is None when no cancel request was sent.
    """

    by_user: bool = False
    fal_answer: str | None = None
    never_started: bool = False  # every status seen had it in the queue: nothing ran, nothing is billed

    def __init__(self, message: str, *, request_id: str | None = None, by_user: bool = False,
                 fal_answer: str | None = None, never_started: bool = False):
        self.by_user = by_user
        self.fal_answer = fal_answer
        self.never_started = never_started
        super().__init__(message, request_id=request_id)


class TransportError(FalError):
    """The network failed after every retry (connection refused, reset, timeout)."""


class DownloadError(FalError):
    """An output image could not be fetched (expired URL, size cap, broken stream)."""


class ImageDecodeError(FalError):
    """Bytes that are not an image, or an image too large to decode safely."""


class OutputGoneError(DownloadError):
    """An output URL answered 403/404/410: those images can no longer be fetched from fal."""


# -- HTTP failures → typed errors (duck-typed on requests.Response, so this module needs no requests) --

def response_detail(resp: Any) -> Any:
    body, text = parse(resp.content)
    return _detail_of(body, text)


def _detail_of(body: Any, text: str) -> Any:
    if body is None:
        return text[:500]
    if isinstance(body, dict) and "detail" in body:
        return body["detail"]
    return body


def _said(status: int, words: Words) -> str:
    """"HTTP 403 (insufficient_user_quota): 用户余额不足" — the status, the body's code, its words."""
    code = words.code
    named = f" ({'code ' + code if code.isdigit() else code})" if code and code != str(status) else ""
    return f"HTTP {status}{named}" + (f": {words.message}" if words.message else "")


def gateway_error(what: str, status: int, words: Words, request_id: str | None = None, key_source: str = "",
                  host: str = "", submit: bool = False, detail: object = None,
                  endpoint: str = "") -> HTTPStatusError:
    """A gateway's answer in its own words, with the verdict's advice. A submit answered with an error
    the gateway wrote itself (or a 4xx of any kind), naming no job, was refused: nothing was queued
    (``refused``). Only an answer in nobody's words (a front server's page, an empty or plain-text 5xx)
    leaves open whether it got through."""
    name = verdict(status, words)
    refused = submit and name is not None and not request_id
    said = _said(status, words)
    if refused:
        head = f"{what}: the gateway {host} refused the edit: nothing was queued. It answered {said}."
    elif name is None:
        page = " (a page of its front server)" if words.page else ""
        head = f"{what}: the gateway {host} answered {said}{page}, with no error of its own."
    else:
        head = f"{what}: the gateway {host} answered {said}."
    kind = {BAD_TOKEN: AuthError, NOT_ALLOWED: AuthError, NO_BALANCE: BalanceError, RATE_LIMITED: RateLimitError,
            NO_CHANNEL: NoChannelError, CONTENT_REFUSED: ContentRefusedError}.get(name or "", HTTPStatusError)
    message = f"{head} {advice(name, host, key_source, endpoint)}" if name else head
    return kind(message, status=status, request_id=request_id, detail=detail, verdict=name, refused=refused)


def error_for_response(resp: Any, what: str, request_id: str | None = None, key_source: str = "",
                       mode: str = "fal", host: str = "", submit: bool = False) -> HTTPStatusError | StartDeadlineError:
    """Turn an unsuccessful response into the typed error a user can act on. Through a gateway, its
    own words and the verdict on them (server_words.py); fal's (direct or by its proxy) as fal says."""
    status = resp.status_code
    request_id = request_id or resp.headers.get("x-fal-request-id")
    body, raw_text = parse(resp.content)
    detail = _detail_of(body, raw_text)
    text = fal_detail_text(detail)
    if status == 504 and resp.headers.get(REQUEST_TIMEOUT_TYPE_HEADER):  # its presence, as fal-client reads it
        return StartDeadlineError(
            f"{what}: fal dropped the job before it started; nothing ran and nothing is billed. Its start "
            f"deadline (start_timeout) passed while it waited in fal's queue (HTTP 504, "
            f"{REQUEST_TIMEOUT_TYPE_HEADER}: {resp.headers.get(REQUEST_TIMEOUT_TYPE_HEADER)}). Run it again "
            "when fal's queue is shorter, or raise start_timeout (0: no deadline).",
            request_id=request_id, error_type="start_deadline")
    if mode == "gateway" and status != 422:  # fal's own validation answer, relayed, names its fields
        return gateway_error(what, status, words_of(body, raw_text), request_id, key_source, host, submit, detail)
    if status in (401, 403) and mode == "proxy":
        sent = f"the token from {key_source}" if key_source else "no token"
        return AuthError(f"{what}: the proxy (or fal behind it) refused the call with HTTP {status}; this client "
                         f"sent {sent}. Check the proxy's FAL_KEY, and set FAL_PROXY_TOKEN only if your proxy "
                         "checks a token of its own.", status=status, request_id=request_id, detail=detail)
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
