"""The results file: ``results.jsonl`` in the output folder, one JSON line per item as it ends.

Each line: ``line``, ``name``, ``status`` (``done``, ``failed``, ``cancelled``, or
``running`` once its job is submitted), ``request_id``, ``files`` (relative to the
output folder), ``cost_usd`` (the estimate of its job), ``error``, and ``key``,
the item's identity (plan.py), by which a later run finds it again; the last
line of a key wins. A ``done`` line is on disk (flushed and fsynced) before the
pipeline forgets the item's journalled job, so after a crash an item is either
done here or resumed from the journal, never paid for twice. A line cut short
by a crash is skipped on reading. One run at a time may write to a folder (a
lock beside the file): a second would submit the same items again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from ..base.atomic_write import ends_cut_short
from ..base.errors import FalError
from ..base.file_lock import try_lock

if TYPE_CHECKING:
    from filelock import BaseFileLock

FILE_NAME = "results.jsonl"
DONE, FAILED, CANCELLED, RUNNING = "done", "failed", "cancelled", "running"
STATUSES = (DONE, FAILED, CANCELLED, RUNNING)


class FolderBusyError(FalError):
    """Another batch run is writing to this output folder."""


class ResultsFile:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        self._lock = threading.Lock()
        self._handle: BinaryIO | None = None  # open between __enter__ and __exit__
        self._folder_lock: BaseFileLock | None = None

    def __enter__(self) -> "ResultsFile":
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = try_lock(self.folder / f".{FILE_NAME}.lock")
        if lock is None:
            raise FolderBusyError(f"Another fal-qwen-edit batch is writing to {self.folder}; wait for it to end "
                                  "(two runs would submit the same items twice), or give another --out.")
        self._folder_lock = lock
        self._handle = handle = open(self.path, "a+b")
        if ends_cut_short(handle):
            handle.write(b"\n")  # end a line a crash cut short, so it cannot swallow the next
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._folder_lock is not None:
            self._folder_lock.release()
            self._folder_lock = None

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last record of every key written so far."""
        found: dict[str, dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8") as handle:
                for raw in handle:
                    try:
                        record = json.loads(raw)
                    except ValueError:
                        continue  # cut short by a crash
                    if isinstance(record, dict) and isinstance(record.get("key"), str) \
                            and record.get("status") in STATUSES:
                        found[record["key"]] = record
        except FileNotFoundError:
            pass
        return found

    def append(self, record: dict[str, Any], *, durable: bool = True) -> None:
        """Write one record; ``durable``: fsync it (what a done line promises)."""
        data = (json.dumps({**record, "at": round(time.time(), 3)}, ensure_ascii=False) + "\n").encode()
        with self._lock:
            handle = self._handle
            if handle is None:
                raise RuntimeError("the results file is written only inside its with block")
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
