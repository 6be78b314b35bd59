"""The spending cap: what paid edits cost in the last 24 hours (rolling), and refusing the one too many.

Every paid submit is entered, with its estimate (pricing.py), in ``spend.jsonl``
in the state folder, beside the job journal: so the sum holds across restarts
and is shared by ComfyUI and the CLI on one machine. An edit is entered
*before* its first upload, under a file lock, after the sum was checked: an
edit (or a per-frame batch, counted whole) that would cross the cap is refused
with nothing uploaded and nothing submitted. An entry whose job was certainly
never submitted (refused, cancelled before the submit, served from the cache,
resumed from the journal) is released again; one whose submit may have reached
fal stays, unless fal says the job never started (dropped at its start deadline). The cap comes from ``[budget] daily_usd`` in config.ini, or
``FAL_DAILY_BUDGET_USD`` (the CLI's ``--budget-usd`` for one run).

An edit whose price is unknown (no table price, and fal's pricing API has told none: models/pricing.py)
cannot be held to a cap, so with a cap set it is refused, before anything is uploaded, saying how to get a
price; a cap is never silently unlimited. Counting it after the job is no way out: its billed figure needs
the very unit price that is missing, and a batch would have sent all its jobs before the first bill. With
no cap, it runs and is entered at $0 until fal's billed figure (if fal reports one) settles it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from ..base.atomic_write import append_lines, write_atomic
from ..base.file_lock import locked
from ..base.tail_reader import Tail, read_new_lines
from ..base.errors import FalError

log = logging.getLogger("fal_qwen_edit")

WINDOW = 24 * 3600.0
COMPACT_AT = 2000  # lines; past this, entries older than the window are dropped once they are half the file
RAISE_HINT = ("Raise the cap ([budget] daily_usd in config.ini, or FAL_DAILY_BUDGET_USD; --budget-usd on the "
              "CLI), or wait until earlier edits leave the 24-hour window.")
PRICE_HINT = ("To run it under the cap, let fal's pricing API tell this machine the price: use fal direct with a "
              "fal key (FAL_KEY; a gateway or proxy cannot reach that API), which is asked now and whenever a job "
              "is submitted. Or remove the cap ([budget] daily_usd in config.ini, FAL_DAILY_BUDGET_USD) to run it "
              "uncapped, knowingly.")


class BudgetError(FalError):
    """This edit would take the last 24 hours' spend past the cap; nothing was uploaded or submitted."""


class Charge:
    """One edit's entry in the ledger. ``mark_paid`` once its submit may have reached fal; until
    then ``release_unless_paid`` takes the entry back (once)."""

    def __init__(self, budget: "Budget", entry_id: str, usd: float):
        self.budget, self.entry_id, self.usd = budget, entry_id, usd
        self.paid = False
        self.released = False

    def mark_paid(self) -> None:
        self.paid = True

    def release_unless_paid(self) -> None:
        if not self.paid and not self.released:
            self.released = True
            self.budget._release(self.entry_id)

    def never_billed(self) -> None:
        """fal said the job never started (dropped at its start deadline): nothing is billed, so the
        entry is taken back even though the submit reached fal."""
        self.paid = False
        self.release_unless_paid()

    def settle(self, billed_usd: float, request_id: str) -> None:
        """fal's billed figure replaces the estimate: the ledger gains the difference as its own line."""
        delta = round(billed_usd - self.usd, 4)
        if self.paid and not self.released and delta:
            self.budget._adjust(delta, f"billed ${billed_usd:.4f} for {request_id} (estimated ${self.usd:.4f})")
            self.usd = billed_usd


class Budget:
    def __init__(self, path: Path | None = None, cap_usd: float | None = None):
        self.path = Path(path) if path is not None else None
        self.cap_usd = cap_usd
        self._memory: list[dict] = []  # the ledger when there is no state folder
        self._tail = Tail()  # how far the file is parsed,
        self._entries: list[dict] = []  # and its entries so far
        self._lock = threading.Lock()

    def spent(self) -> float:
        with self._locked():
            return self._sum(self._read())

    def reserve(self, amounts: Sequence[float | None], what: str) -> list[Charge]:
        """Enter one charge per amount, all or none: BudgetError if their sum would cross the cap, or if an
        amount is None (price unknown) while a cap is set; without a cap such an amount is entered at $0."""
        if self.cap_usd is not None and any(amount is None for amount in amounts):
            raise BudgetError(
                f"Spending cap: {what}, so this edit cannot be held to your ${self.cap_usd:.2f} daily cap and is "
                f"refused. Nothing was uploaded or submitted. {PRICE_HINT}")
        priced = [amount or 0.0 for amount in amounts]
        total = round(sum(priced), 4)
        with self._locked():
            entries = self._read()
            spent = self._sum(entries)
            if self.cap_usd is not None and spent + total > self.cap_usd + 1e-9:
                raise BudgetError(
                    f"Spending cap: this would cost {what}, and ${spent:.2f} of your ${self.cap_usd:.2f} daily cap "
                    f"is already spent in the last 24 h (${max(self.cap_usd - spent, 0):.2f} left). Nothing was "
                    f"uploaded or submitted. {RAISE_HINT}")
            now = time.time()
            new: list[dict[str, Any]] = [{"id": uuid.uuid4().hex, "t": now, "usd": round(amount or 0.0, 4),
                                          "what": what[:120], **({"unpriced": True} if amount is None else {})}
                                         for amount in amounts]
            self._append(new, entries)
        return [Charge(self, entry["id"], entry["usd"]) for entry in new]

    def _adjust(self, usd: float, what: str) -> None:
        with self._locked():
            self._append([{"id": uuid.uuid4().hex, "t": time.time(), "usd": usd, "what": what[:120]}], None)

    def _release(self, entry_id: str) -> None:
        with self._locked():
            self._append([{"id": entry_id, "t": time.time(), "release": True}], None)

    # -- the ledger file ---------------------------------------------------------------
    @staticmethod
    def _sum(entries: list[dict]) -> float:
        released = {e["id"] for e in entries if e.get("release")}
        cutoff = time.time() - WINDOW
        return round(sum(e["usd"] for e in entries if not e.get("release") and e["id"] not in released
                         and e["t"] >= cutoff), 4)

    def _locked(self):
        # ComfyUI and the CLI read and write it at the same moment
        return locked(self._lock, Path(str(self.path) + ".lock") if self.path is not None else None)

    def _read(self) -> list[dict]:
        """The ledger's entries. Read under the lock; only the lines appended since this object's
        last read are parsed (another process's appends included, base/tail_reader.py): a batch of
        thousands of edits would otherwise parse the whole day's ledger again for every edit."""
        if self.path is None:
            return list(self._memory)
        try:
            lines, self._tail, restarted = read_new_lines(self.path, self._tail)
        except FileNotFoundError:
            self._tail, self._entries = Tail(), []
            return []
        if restarted:
            self._entries = []
        self._entries += [entry for entry in map(_entry, lines) if entry is not None]
        return list(self._entries)

    def _append(self, new: list[dict], entries: list[dict] | None) -> None:
        if self.path is None:
            self._memory.extend(new)
            return
        if entries is not None and len(entries) > COMPACT_AT:
            cutoff = time.time() - WINDOW
            kept = [e for e in entries if e["t"] >= cutoff]
            if len(kept) <= len(entries) // 2:  # rewritten only when that halves it, not for every edit
                write_atomic(self.path, "".join(json.dumps(e) + "\n" for e in kept + new).encode())
                return
        append_lines(self.path, "".join(json.dumps(e) + "\n" for e in new).encode())


def _entry(line: bytes) -> dict | None:
    """One ledger line, or None when it is not one (cut short by a crash, edited by hand)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if isinstance(entry, dict) and isinstance(entry.get("id"), str) and isinstance(entry.get("t"), (int, float)) \
            and (entry.get("release") or isinstance(entry.get("usd"), (int, float))):
        return entry
    return None
