"""fal's own guards for a paid job, as submit headers (fal-client 1.0.3 ``_headers.py``; fal's
"common parameters" docs, docs.fal.ai/documentation/model-apis/common-parameters):

* ``X-Fal-Request-Timeout: <s>``: a deadline to *start* (queue wait, runner acquisition and
  retries; not inference). Past it fal drops the job, answers 504 with
  ``X-Fal-Request-Timeout-Type: user``, and nothing runs or is billed. Written as
  ``str(float(s))`` and refused at 1 s or less, as fal-client does (its docs name 0.1 s).
  ``start_timeout`` unset ("auto") sends what is left of the edit's own time at the submit,
  as fal-client's ``subscribe(client_timeout=T)`` sends T: a job nobody waits for any more
  never starts. ``0``: no deadline.
* ``X-Fal-Queue-Priority: normal|low``: a batch that is not urgent can yield to interactive work.
* ``X-Fal-Store-IO: 0`` (the connection's ``keep_on_fal`` off): fal keeps neither the inputs'
  nor the outputs' JSON (30 days otherwise); the result is then fetchable for 1 hour, or
  6 minutes when it is 10 KB or more (fal's payloads docs). Not in fal-client 1.0.3: sent as a
  plain header, as its docs say.

Defaults for an edit that names neither: ``FAL_START_TIMEOUT`` / ``FAL_QUEUE_PRIORITY``, else
``[queue] start_timeout`` / ``priority`` in config.ini, else auto and normal.
"""

from __future__ import annotations

import os
from typing import Mapping

from ..base.errors import REQUEST_TIMEOUT_TYPE_HEADER, ConfigError  # noqa: F401 - the header is named here too
from .config import _read_config_file

REQUEST_TIMEOUT_HEADER = "X-Fal-Request-Timeout"
QUEUE_PRIORITY_HEADER = "X-Fal-Queue-Priority"
STORE_IO_HEADER = "X-Fal-Store-IO"
MIN_START_TIMEOUT = 1.0  # fal-client: "Timeout must be greater than 1 seconds"
AUTO_FLOOR = 2.0         # an auto deadline never goes below this (an edit at its very end)
PRIORITIES = ("normal", "low")


def check_start_timeout(value: float | str | None, where: str = "start_timeout") -> float | None:
    """None (auto), 0 (no deadline) or seconds above fal-client's minimum; ConfigError otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds == 0:
        return 0.0
    if not seconds > MIN_START_TIMEOUT or seconds == float("inf"):
        raise ConfigError(f"{where} must be auto, 0 (no start deadline) or a number of seconds above "
                          f"{MIN_START_TIMEOUT:g} (fal's minimum), not {value!r}.")
    return seconds


def check_priority(value: str | None, where: str = "priority") -> str:
    priority = (value or "normal").strip().lower()
    if priority not in PRIORITIES:
        raise ConfigError(f"{where} must be one of {', '.join(PRIORITIES)}, not {value!r}.")
    return priority


def start_deadline(start_timeout: float | None, remaining: float | None) -> float | None:
    """Seconds to send as the start deadline: the given ones, or (auto) what is left of the edit's
    time (None: the edit has no time limit, so no deadline); None for 0."""
    if start_timeout == 0:
        return None
    if start_timeout is not None:
        return start_timeout
    return None if remaining is None else max(round(remaining, 1), AUTO_FLOOR)


def submit_headers(start_timeout: float | None, remaining: float | None, priority: str = "normal",
                   store_io: bool = True) -> dict[str, str]:
    """The guard headers of one submit."""
    headers = {QUEUE_PRIORITY_HEADER: check_priority(priority)}
    deadline = start_deadline(check_start_timeout(start_timeout), remaining)
    if deadline is not None:
        headers[REQUEST_TIMEOUT_HEADER] = str(float(deadline))  # fal-client: 30 -> "30.0"
    if not store_io:
        headers[STORE_IO_HEADER] = "0"
    return headers


def queue_defaults(environ: Mapping[str, str] | None = None) -> tuple[float | None, str]:
    """(start_timeout, priority) where an edit names neither (see the module docstring)."""
    env = os.environ if environ is None else environ
    parser, file_path = _read_config_file(env)
    start, start_where = env.get("FAL_START_TIMEOUT", ""), "FAL_START_TIMEOUT"
    if not start.strip():
        start, start_where = parser.get("queue", "start_timeout", fallback=""), f"{file_path} [queue] start_timeout"
    priority, priority_where = env.get("FAL_QUEUE_PRIORITY", ""), "FAL_QUEUE_PRIORITY"
    if not priority.strip():
        priority, priority_where = parser.get("queue", "priority", fallback=""), f"{file_path} [queue] priority"
    return check_start_timeout(start, start_where), check_priority(priority, priority_where)


def resolve_guards(start_timeout: float | str | None, priority: str | None, environ: Mapping[str, str] | None = None,
                   where: str = "start_timeout") -> tuple[float | None, str]:
    """An edit's (start_timeout, priority): what it names, else the defaults above (None, or a priority
    of "" / "default", names nothing). One rule for the node, the CLI's single edit and its batch."""
    default_start, default_priority = queue_defaults(environ)
    start = default_start if start_timeout is None else check_start_timeout(start_timeout, where)
    return start, default_priority if priority in (None, "", "default") else check_priority(priority)
