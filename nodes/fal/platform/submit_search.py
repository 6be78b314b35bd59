"""Finding a submit whose answer was lost (a reset, a 502, a process killed mid-submit) in fal's own
request history, so the job it may have made is waited on instead of being paid for twice.

fal's queue has no idempotency key and knows a job only by the request id its answer carried. Its
Platform API lists a key's requests with their inputs (``GET /v1/models/requests/by-endpoint
?endpoint_id=…&start=…&expand=payloads``: items ``{request_id, sent_at, started_at, ended_at,
status_code, json_input, json_output}``; fal's Platform API OpenAPI, see client.py). The journal keeps
a fingerprint of the lost submit's JSON body (a digest per field, fingerprints.py, so a prompt or a
data URI is not copied into it), and a listed request whose ``json_input`` has every field alike is that submit's job.

Not found does not prove fal never took it: the docs do not say whether a request is listed before
it starts, or before it ends. It is settled only when the submit carried a start deadline
(``X-Fal-Request-Timeout``): past it, fal drops a job that has not started, unrun and unbilled, and a
job that did start has an entry (``started_at`` is a required field). ``RUN_ALLOWANCE`` more seconds
cover a job that started just in time and is listed only once it ends. Without a deadline, or when
fal keeps no payloads (``X-Fal-Store-IO: 0``), or through a gateway or the server proxy (no Platform
API), the submit stays uncertain, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..base.errors import FalError
from .client import PlatformClient, iso, unreachable_reason
from .fingerprints import matches

CLOCK_SLACK = 300.0    # seconds: this machine's clock against fal's, on the window's start
RUN_ALLOWANCE = 300.0  # seconds after the start deadline for a job that started in time to end
MAX_PAGES = 20         # of 100 requests: the jobs a big batch sent around the lost one


@dataclass
class Finding:
    request_id: str | None = None  # the job fal made of the lost submit
    never_started: bool = False    # not listed, and past its start deadline + RUN_ALLOWANCE: it never ran
    why: str = ""                  # what was searched, or why it could not be settled (for the message)


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(seconds))


class SubmitSearch:
    def __init__(self, platform: PlatformClient):
        self.platform = platform

    def find(self, endpoint: str, sent_at: float, prints: dict[str, str] | None, start_deadline: float | None,
             store_io: bool = True) -> Finding:
        reason = unreachable_reason(self.platform.config)
        if reason:
            return Finding(why=f"It cannot be looked up: {reason}")
        if not prints or not store_io:
            return Finding(why="It cannot be looked up in fal's request history: "
                               + ("fal keeps no inputs of a job sent with keep_on_fal off (X-Fal-Store-IO: 0)."
                                  if prints else "this journal entry has no fingerprint of what was sent."))
        searched_at, cursor, seen = time.time(), None, 0
        try:
            for _ in range(MAX_PAGES):
                items, cursor = self.platform.request_items([endpoint], limit=100, cursor=cursor,
                                                            start=sent_at - CLOCK_SLACK, payloads=True)
                seen += len(items)
                for item in items:
                    if matches(prints, item.get("json_input")):
                        return Finding(request_id=str(item["request_id"]),
                                       why=f"found in fal's request history as {item['request_id']}")
                if not cursor:
                    break
        except FalError as exc:
            return Finding(why=f"fal's request history could not be read ({exc}).")
        checked = f"it is not among the {seen} requests fal lists for {endpoint} since {iso(sent_at - CLOCK_SLACK)}"
        if cursor:
            return Finding(why=f"{checked} (only the newest {seen} were searched).")
        if start_deadline is None:
            return Finding(why=f"{checked}, and it had no start deadline, so it may still wait in fal's queue.")
        settled_at = sent_at + start_deadline + RUN_ALLOWANCE
        if searched_at >= settled_at:
            return Finding(never_started=True,
                           why=f"{checked}, and its start deadline passed at {_clock(sent_at + start_deadline)}: "
                               "fal never ran it")
        return Finding(why=f"{checked} yet. fal drops it unrun and unbilled if it has not started by "
                           f"{_clock(sent_at + start_deadline)} (its start deadline); from {_clock(settled_at)} on, "
                           "running the same edit again settles it: it resumes the job if fal lists it, else "
                           "submits the edit once.")
