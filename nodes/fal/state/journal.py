"""Job journal: every paid submit is on disk before it is sent, and its request id right after.

If ComfyUI (or the CLI) dies while a paid job runs, running the same edit
again finds the journalled request and waits on it instead of submitting a
second job. An entry is written in two steps: "submitting" before the POST
(so a submit whose answer was lost still blocks a silent second payment) and
the request's URLs as soon as fal answers. Entries are removed when the job's
result is in hand or the job definitely ended. One small JSON file per edit,
written atomically; ``claim`` serialises edits of the same key across threads
and processes, so two identical edits started together share one job.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..base.atomic_write import remove_file, write_atomic
from ..base.file_lock import wait_for_lock
from ..queue.client import RequestHandle
from ..base.waiting import Waiter

log = logging.getLogger("fal_qwen_edit")

MAX_RESUME_AGE = 24 * 3600.0  # fal keeps queue results for a while; a day-old job is not resumed
LOCK_POLL = 0.05              # seconds between attempts to take a busy claim (Cancel stays live)


def request_key(endpoint: str, arguments: dict[str, Any], inputs: Iterable[str]) -> str:
    """Identity of an edit: endpoint + every argument + the *content* of the input images.

    Image URLs are left out because the same pixels get a new storage URL after
    a restart; ``inputs`` carries a content hash per image instead.
    """
    fields = {k: v for k, v in arguments.items() if k != "image_urls"}
    payload = json.dumps({"endpoint": endpoint, "arguments": fields, "inputs": list(inputs)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass
class JournalEntry:
    endpoint: str
    submitted_at: float
    handle: RequestHandle | None  # None: the submit was sent but fal's answer never arrived
    # What a submit without an answer sent, to find its job in fal's history (platform/submit_search.py):
    fingerprint: dict[str, str] | None = None
    start_deadline: float | None = None  # seconds, the X-Fal-Request-Timeout it carried
    store_io: bool = True


class Journal:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    @contextlib.contextmanager
    def claim(self, key: str, waiter: Waiter | None = None) -> Iterator[None]:
        """Hold the key's lock (threads and processes alike) while deciding whether to submit; while
        an identical edit elsewhere holds it, wait with Cancel live (base/file_lock.py)."""
        waiter = waiter or Waiter()
        with wait_for_lock(self.directory / f"{key}.lock", waiter.sleep, LOCK_POLL):
            yield

    def record_submitting(self, key: str, endpoint: str, fingerprint: dict[str, str] | None = None,
                          start_deadline: float | None = None, store_io: bool = True) -> JournalEntry:
        """The entry as written (what a lost answer is looked up by, without reading it back)."""
        entry = JournalEntry(endpoint, time.time(), None, fingerprint, start_deadline, store_io)
        self._write(key, {"endpoint": endpoint, "submitted_at": entry.submitted_at, "request_id": None,
                          "fingerprint": fingerprint, "start_deadline": start_deadline, "store_io": store_io})
        return entry

    def record(self, key: str, handle: RequestHandle) -> None:
        self._write(key, {"endpoint": handle.endpoint, "request_id": handle.request_id,
                          "status_url": handle.status_url, "response_url": handle.response_url,
                          "cancel_url": handle.cancel_url, "submitted_at": time.time()})

    def _write(self, key: str, entry: dict[str, Any]) -> None:
        write_atomic(self._path(key), json.dumps({"key": key, **entry}, indent=1).encode())

    def pending(self, key: str, max_age: float = MAX_RESUME_AGE) -> JournalEntry | None:
        """The journalled job for this edit, if one is still worth waiting for.

        An entry that cannot be read (truncated, edited by hand, an older
        layout) is reported and removed: it must never stop an edit.
        """
        path = self._path(key)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            raw = None
        entry = _parse(raw)
        if entry is None:
            log.warning("fal: unreadable journal entry %s; removing it", path.name)
            self.finish(key)
            return None
        if time.time() - entry.submitted_at > max_age:
            self.finish(key)
            return None
        return entry

    def finish(self, key: str) -> None:
        remove_file(self._path(key))

    def sweep(self, max_age: float = MAX_RESUME_AGE) -> None:
        """Remove entries too old to resume (an edit that is never run again leaves its entry behind)."""
        cutoff = time.time() - max_age
        for path in self.directory.glob("*.json"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    remove_file(path)

    def entries(self) -> list[dict]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found


def _parse(raw: Any) -> JournalEntry | None:
    if not isinstance(raw, dict):
        return None
    endpoint, submitted_at = raw.get("endpoint"), raw.get("submitted_at")
    if not isinstance(endpoint, str) or not isinstance(submitted_at, (int, float)):
        return None
    if raw.get("request_id") is None:
        prints, deadline = raw.get("fingerprint"), raw.get("start_deadline")
        prints = prints if isinstance(prints, dict) and all(isinstance(v, str) for v in prints.values()) else None
        deadline = float(deadline) if isinstance(deadline, (int, float)) and deadline > 0 else None
        return JournalEntry(endpoint, float(submitted_at), None, prints, deadline, raw.get("store_io") is not False)
    urls = [raw.get(name) for name in ("request_id", "status_url", "response_url", "cancel_url")]
    named = [value for value in urls if isinstance(value, str) and value]
    if len(named) != len(urls):
        return None
    request_id, status_url, response_url, cancel_url = named
    return JournalEntry(endpoint, float(submitted_at),
                        RequestHandle(endpoint, request_id, status_url, response_url, cancel_url))


class KeysInUse:
    """Journal keys whose job this process is waiting on right now (a journal entry alone cannot
    tell a job left by a dead process from one this process is still running)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: collections.Counter[str] = collections.Counter()

    def holds(self, key: str) -> bool:
        with self._lock:
            return self._count[key] > 0

    @contextlib.contextmanager
    def hold(self, key: str):
        with self._lock:
            self._count[key] += 1
        try:
            yield
        finally:
            with self._lock:
                self._count[key] -= 1
                if not self._count[key]:
                    del self._count[key]


WAITING = KeysInUse()  # one per process
