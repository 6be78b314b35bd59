"""Paid submits for the edit client: journalled before they are sent, and a submit whose answer was
lost looked up in fal's request history before anyone is told that it may be paid for twice.

A mixin of ``FalEditClient`` (pipeline.py), which holds the ``queue``, ``config`` and ``submit_search``
(platform/submit_search.py) and hands in its ``journal`` (only a client with one journals its submits);
``edit`` is the pipeline's edit on its way.

A submit's answer can be lost three ways: no reply (a reset, a timeout once sent), an unreadable one,
or a 5xx other than the ingress's 503. fal may then have taken the job. The journal's "submitting"
entry stays, with a fingerprint of what was sent, and the job is searched for at once and again on
every later run of the same edit: found, it is waited on (no second job); proven never run (past its
start deadline and not listed), the edit is submitted once; otherwise the error says what is known.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..base.errors import FalError, HTTPStatusError, SubmitUncertainError
from ..base.phases import phase
from ..base.server_words import where_billed
from ..platform.fingerprints import fingerprint
from ..platform.submit_search import SubmitSearch
from ..queue.client import QueueClient, RequestHandle
from ..state.journal import Journal, JournalEntry
from ..wire.config import FalConfig
from ..wire.guards import check_start_timeout, start_deadline, submit_headers

log = logging.getLogger("fal_qwen_edit")

FORCE_HINT = "To submit this edit again anyway, turn on force_new_job (--fresh on the CLI)."
MAY_BE_BILLED = "The job may have been accepted and billed: check {where}."


class Submits:
    config: FalConfig
    queue: QueueClient
    submit_search: SubmitSearch

    def _submit_journalled(self, journal: Journal, edit: Any, arguments: dict[str, Any]) -> RequestHandle:
        """Submit with a "submitting" journal entry that stays whenever fal may have taken the job."""
        endpoint = edit.spec.endpoint
        # At most what the submit's header says a moment later: a later settling time, never an earlier one.
        deadline = start_deadline(check_start_timeout(edit.start_timeout), edit.waiter.remaining())
        with phase("body and fingerprint"):
            prints = fingerprint(arguments, known=edit.digests)
        with phase("bookkeeping: journal"):
            sent = journal.record_submitting(edit.journal_key, endpoint, prints, deadline, self.config.store_io)
        try:
            handle = self._submit(edit, arguments)
        except SubmitUncertainError as exc:
            return self._lost_in_this_run(journal, edit, sent, str(exc), exc.request_id)
        except HTTPStatusError as exc:
            if exc.request_id and exc.status >= 500:
                # fal named the job in its error reply: it exists, so wait on it rather than lose it.
                log.warning("fal: submit answered HTTP %d but named request %s; waiting on it", exc.status,
                            exc.request_id)
                handle = self.queue.handle_for(endpoint, exc.request_id)
            elif may_have_been_taken(exc):
                return self._lost_in_this_run(journal, edit, sent, f"{exc} {self._may_be_billed()}", exc.request_id)
            else:
                # refused (4xx, ingress 503, a gateway's own error naming no job): certainly not accepted
                journal.finish(edit.journal_key)
                raise
        except FalError:
            journal.finish(edit.journal_key)  # never connected, or cancelled / timed out before sending
            raise
        # Anything else (Ctrl-C mid-request, a crash) leaves the "submitting" entry: it may have been sent.
        try:
            with phase("bookkeeping: journal"):
                journal.record(edit.journal_key, handle)
        except OSError as exc:
            log.warning("fal: could not journal request %s (%s); waiting on it anyway", handle.request_id, exc)
        return handle

    def _lost_in_this_run(self, journal: Journal, edit: Any, sent: JournalEntry, cause: str,
                          request_id: str | None) -> RequestHandle:
        handle = self.find_lost_submit(journal, edit.journal_key, sent, cause, request_id)
        if handle is None:  # proven never run within this run: only a start deadline far shorter than the submit
            raise FalError(f"{cause} fal's request history shows it never ran: running the edit again submits it "
                           "once.", request_id=request_id)
        return handle

    def find_lost_submit(self, journal: Journal, journal_key: str, entry: JournalEntry, cause: str,
                         request_id: str | None = None) -> RequestHandle | None:
        """The job a submit without an answer made (journalled now), or None when fal certainly
        never ran it (the entry is then gone); raises SubmitUncertainError when neither is known."""
        finding = self.submit_search.find(entry.endpoint, entry.submitted_at, entry.fingerprint,
                                          entry.start_deadline, entry.store_io)
        if finding.request_id:
            log.warning("fal: a submit's answer was lost (%s) but its job was %s: waiting on it, no second "
                        "submit.", cause.split(";")[0].split(". ")[0], finding.why)
            handle = self.queue.handle_for(entry.endpoint, finding.request_id)
            journal.record(journal_key, handle)
            return handle
        if finding.never_started:
            log.warning("fal: %s But %s, so the edit is submitted once now.", cause, finding.why)
            journal.finish(journal_key)
            return None
        raise SubmitUncertainError(f"{cause} {finding.why} {FORCE_HINT}", request_id=request_id)

    def lost_submit_cause(self, entry: JournalEntry) -> str:
        sent = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.submitted_at))
        return (f"An earlier submit of this exact edit ({sent}) was sent but fal's answer never arrived, so it "
                f"may be running and billed: check {where_billed(self.config.mode, self.config.queue_base)}.")

    def _may_be_billed(self) -> str:
        return MAY_BE_BILLED.format(where=where_billed(self.config.mode, self.config.queue_base))

    def _submit(self, edit: Any, arguments: dict[str, Any]) -> RequestHandle:
        edit.waiter.check()  # last chance to cancel for free
        mark = time.monotonic()
        try:
            headers = submit_headers(edit.start_timeout, edit.waiter.remaining(), edit.priority, self.config.store_io)
            with phase("submit"):
                handle = self.queue.submit(edit.spec.endpoint, arguments, waiter=edit.waiter, extra_headers=headers)
        except BaseException as exc:
            if may_have_been_taken(exc):
                edit.charge.mark_paid()  # fal may bill it: it stays counted against the cap
            raise
        edit.charge.mark_paid()
        edit.phases["submit"] = time.monotonic() - mark
        return handle


def may_have_been_taken(exc: BaseException) -> bool:
    """Whether a failed submit may still have created a (paid) job: an uncertain answer, a 5xx
    other than the ingress's 503, or anything that is not one of our errors (Ctrl-C, a crash). A gateway's
    error in its own words that names no job (``refused``) was a refusal: nothing was queued."""
    if isinstance(exc, SubmitUncertainError):
        return True
    if isinstance(exc, HTTPStatusError):
        if exc.refused:
            return False
        return exc.status >= 500 and (exc.status != 503 or bool(exc.request_id))
    return not isinstance(exc, FalError)
