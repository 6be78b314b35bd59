"""Typed, readable errors.

Every message is written for the person looking at a red node: it says what
went wrong, what to change, and the request id whenever fal gave us one (so a
paid job can always be found again). Messages pass through ``redact`` because
servers sometimes echo headers or URLs back, and a key must never reach the
screen or a log.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable, Sequence

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
    """The server answered with an unexpected HTTP status."""

    def __init__(self, message: str, *, status: int, request_id: str | None = None,
                 detail: object = None):
        self.status = status
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

    def __init__(self, message: str, *, request_id: str | None = None, by_user: bool = False,
                 fal_answer: str | None = None):
        self.by_user = by_user
        self.fal_answer = fal_answer
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


def error_for_response(resp: Any, what: str, request_id: str | None = None,
                       key_source: str = "", mode: str = "fal") -> HTTPStatusError | StartDeadlineError:
    """Turn an unsuccessful response into the typed error a user can act on."""
    status = resp.status_code
    request_id = request_id or resp.headers.get("x-fal-request-id")
    detail = response_detail(resp)
    text = _detail_text(detail)
    if status == 504 and resp.headers.get(REQUEST_TIMEOUT_TYPE_HEADER):  # its presence, as fal-client reads it
        return StartDeadlineError(
            f"{what}: fal dropped the job before it started; nothing ran and nothing is billed. Its start "
            f"deadline (start_timeout) passed while it waited in fal's queue (HTTP 504, "
            f"{REQUEST_TIMEOUT_TYPE_HEADER}: {resp.headers.get(REQUEST_TIMEOUT_TYPE_HEADER)}). Run it again "
            "when fal's queue is shorter, or raise start_timeout (0: no deadline).",
            request_id=request_id, error_type="start_deadline")
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
