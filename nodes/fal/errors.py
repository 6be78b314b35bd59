"""Typed, readable errors.

Every message is written for the person looking at a red node: it says what
went wrong, what to change, and the request id whenever fal gave us one (so a
paid job can always be found again). Messages pass through ``redact`` because
servers sometimes echo headers or URLs back, and a key must never reach the
screen or a log.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

# Secrets registered here are scrubbed from every FalError message. The
# configuration registers each key it loads (see config.Secret).
_SECRETS: set[str] = set()

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
        self.detail = detail
        super().__init__(message, request_id=request_id)


class AuthError(HTTPStatusError):
    """401/403: the key or token was refused."""


class ValidationError(HTTPStatusError):
    """422: fal rejected fields of the request; ``fields`` names them."""

    def __init__(self, message: str, *, status: int, fields: Iterable[str],
                 request_id: str | None = None, detail: object = None):
        self.fields = list(fields)
        super().__init__(message, status=status, request_id=request_id, detail=detail)


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


class FalTimeoutError(FalError):
    """The overall time limit passed before the job finished."""


class CancelledError(FalError):
    """The user cancelled; the cancel request was sent to fal when a job existed."""


class TransportError(FalError):
    """The network failed after every retry (connection refused, reset, timeout)."""


class DownloadError(FalError):
    """An output image could not be fetched (expired URL, size cap, broken stream)."""


class ImageDecodeError(FalError):
    """Bytes that are not an image, or an image too large to decode safely."""
