"""Persistent result cache: an identical edit with a fixed seed costs nothing the second time.

Keyed like the journal (endpoint + arguments + input image content). Stores
fal's result JSON and the output image bytes exactly as downloaded, so a
cached edit decodes to the same pixels. Bounded: least recently used entries
are removed past ``max_bytes``. Requests without a seed are never cached:
fal would pick a new seed, so the user is asking for a new image.

Outputs of a job fal does not keep (the connection's keep_on_fal off, X-Fal-Store-IO: 0)
are also stored under ``kept_key(request_id)``, whatever the seed: that is where Result by
Request ID finds them once fal has forgotten the request (an hour at most).

Pruning scans every entry, so it is not done on every put: a process scans at
its first put, then only when its own writes may have passed the bound or
``RESCAN_SECONDS`` have gone by (other processes write too), and it prunes down
to ``LOW_WATER`` of the bound so that a full cache is not rescanned at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base.atomic_write import remove_file, write_atomic

log = logging.getLogger("fal_qwen_edit")

DEFAULT_MAX_BYTES = 2 * 1024**3
INCOMPLETE_AGE = 3600.0  # seconds after which a folder without result.json is an abandoned write
RESCAN_SECONDS = 600.0
LOW_WATER = 0.9


def kept_key(request_id: str) -> str:
    """The entry holding one request's outputs, found by its id (a digest: ids come from servers)."""
    return "request-" + hashlib.sha256(request_id.encode()).hexdigest()


@dataclass
class CachedResult:
    request_id: str
    result: dict[str, Any]
    blobs: list[bytes]


class ResultCache:
    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._scanned_bytes: int | None = None  # the cache's size after the last prune
        self._scanned_at = 0.0
        self._written_since = 0  # bytes this process stored since then
        self._scanning = threading.Lock()  # one scan at a time; a put meanwhile is counted for the next

    def _entry(self, key: str) -> Path:
        return self.directory / key

    def get(self, key: str) -> CachedResult | None:
        """The stored result, or None (also for an entry that cannot be read: the caller
        then runs the edit; ``drop`` removes an entry whose bytes no longer decode)."""
        entry = self._entry(key)
        meta_path = entry / "result.json"
        if not meta_path.is_file():  # written last: without it there is no (complete) entry
            return None
        try:
            meta = json.loads(meta_path.read_text())
            hit = CachedResult(str(meta["request_id"]), dict(meta["result"]),
                               [(entry / name).read_bytes() for name in meta["files"]])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("fal: unreadable result-cache entry %s; removing it", key[:12])
            self.drop(key)
            return None
        try:
            meta_path.touch()  # LRU: recently used entries survive pruning
        except OSError:
            pass
        return hit

    def count(self, key: str) -> int | None:
        """How many images the entry holds, read from its metadata alone; None: no readable entry."""
        try:
            files = json.loads((self._entry(key) / "result.json").read_text())["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return len(files) if isinstance(files, list) else None

    def put(self, key: str, request_id: str, result: dict[str, Any], blobs: list[bytes]) -> None:
        """Store a paid result. A full disk or a racing prune must not fail an edit whose
        images are already in hand, so problems are logged, not raised."""
        entry = self._entry(key)
        files = [f"output_{i}.bin" for i in range(len(blobs))]
        meta = {"request_id": request_id, "result": _without_inline_images(result), "files": files,
                "stored_at": time.time()}
        try:
            for name, blob in zip(files, blobs):
                write_atomic(entry / name, blob)
            meta_bytes = json.dumps(meta).encode()
            write_atomic(entry / "result.json", meta_bytes)  # written last: marks it complete
            due = self._prune_due(sum(map(len, blobs)) + len(meta_bytes))
            for _ in range(3):  # again if puts made during the scan passed the bound once more
                if not (due and self._scanning.acquire(blocking=False)):
                    break  # not due, or another thread is scanning: it checks again when done
                try:
                    self.prune()
                finally:
                    self._scanning.release()
                due = self._prune_due(0, rescan_time=False)
        except OSError as exc:
            log.warning("fal: could not store the result of request %s in the cache: %s", request_id, exc)

    def keeping(self, keys: list[str], request_id: str, result: dict[str, Any], thread: bool = True) -> "Keeping":
        """A result to ``put`` under each key once its outputs' bytes are in (``Keeping.start``): on a thread
        of its own (the edit decodes meanwhile) or, ``thread`` False, there and then (a batch's edits: the
        cores are busy anyway, and a thread per edit costs memory). ``wait`` for it before the job's journal
        entry goes, so that a crash in between finds the job; ``undo`` it for outputs that do not decode."""
        return Keeping(self, keys, request_id, result, thread)

    def drop(self, key: str) -> None:
        _remove_entry(self._entry(key))

    def _prune_due(self, written: int, rescan_time: bool = True) -> bool:
        with self._lock:
            self._written_since += written
            stale = rescan_time and time.monotonic() - self._scanned_at > RESCAN_SECONDS
            return self._scanned_bytes is None or stale or self._scanned_bytes + self._written_since > self.max_bytes

    def prune(self) -> None:
        """Remove least recently used entries past ``max_bytes``, and leftovers of interrupted writes.

        Other threads and processes prune and write at the same time: a folder
        that vanishes while it is measured is simply skipped.
        """
        with self._lock:
            counted = self._written_since  # puts during the scan stay counted (perhaps twice: harmless)
        entries, total = [], 0
        now = time.time()
        for folder in self.directory.iterdir() if self.directory.is_dir() else ():
            try:
                if not folder.is_dir():
                    continue
                files = [f for f in folder.iterdir() if f.is_file()]
                size = sum(f.stat().st_size for f in files)
                meta = folder / "result.json"
                if meta.exists():
                    entries.append((meta.stat().st_mtime, size, folder))
                    total += size
                elif now - max((f.stat().st_mtime for f in files), default=folder.stat().st_mtime) \
                        > INCOMPLETE_AGE:
                    _remove_entry(folder)  # a write that never finished
            except OSError:
                continue
        if total > self.max_bytes:
            for _, size, folder in sorted(entries):
                if total <= self.max_bytes * LOW_WATER:
                    break
                _remove_entry(folder)
                total -= size
        with self._lock:
            self._scanned_bytes, self._scanned_at = total, time.monotonic()
            self._written_since = max(0, self._written_since - counted)


def _without_inline_images(result: dict[str, Any]) -> dict[str, Any]:
    """sync_mode results carry data URIs; their bytes are already stored as files."""
    copy = dict(result)
    copy["images"] = [{k: ("(stored)" if k == "url" and str(v).startswith("data:") else v)
                       for k, v in image.items()} if isinstance(image, dict) else image
                      for image in result.get("images") or []]
    return copy


def _remove_entry(folder: Path) -> None:
    """Its result.json first, so that an entry whose images cannot all go yet (a reader holds one
    open, on Windows) is no longer an entry: a later prune removes the rest as an unfinished write."""
    try:
        remove_file(folder / "result.json")
    except OSError:
        return  # still held: the entry stays whole, and is pruned again later
    shutil.rmtree(folder, ignore_errors=True)


class Keeping:
    """A result on its way into the cache (``ResultCache.keeping``)."""

    def __init__(self, cache: ResultCache, keys: list[str], request_id: str, result: dict[str, Any], thread: bool):
        self.cache, self.keys, self.request_id, self.result, self.thread = cache, keys, request_id, result, thread
        self._thread: threading.Thread | None = None

    def start(self, blobs: list[bytes]) -> None:
        if not self.thread:
            self._put(blobs)
            return
        self._thread = threading.Thread(target=self._put, args=(blobs,), name="fal-cache-put", daemon=True)
        self._thread.start()

    def _put(self, blobs: list[bytes]) -> None:
        for key in self.keys:
            self.cache.put(key, self.request_id, self.result, blobs)  # logs its own trouble: never fails the edit

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def undo(self) -> None:
        self.wait()
        for key in self.keys:
            self.cache.drop(key)
