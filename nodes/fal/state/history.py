"""The job history: every job the pack submitted, resumed or fetched, kept after the journal forgets it.

``history/jobs.jsonl`` in the state folder holds one JSON line per change of a job (its fields merged
in order, so a job's record is the union of its lines); ``history/thumbs/`` its ≤ 256 px WebP
thumbnails, which stay after the result cache evicts the full images. Shared by ComfyUI and the CLI
under a file lock like the spending ledger; a line cut short by a crash is skipped, the others count.
Bounded: jobs older than ``MAX_AGE`` go, then the oldest past ``MAX_JOBS``; the file is rewritten
(atomically) when it holds twice as many lines as jobs. Thumbnails are made off the edit's way to its
result (``add_thumbnails_later``, one worker thread): a reader in this process waits for those on
their way (at most ``THUMBNAIL_WAIT``), a crash loses only them (the job's record is written first). Never a key: the connection is its kind, its
host and the *name* of the key's environment variable.

A job: request_id, endpoint, model, prompt (first 200 characters), submitted_at, finished_at (Unix
seconds), status (running, done, failed, cancelled, unknown), cost_usd_estimate, cost_usd_billed,
num_outputs, error, connection {kind, host, base_url, key_env}, source (node, cli, batch, fetch).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..base.atomic_write import append_lines, remove_file, write_atomic
from ..base.file_lock import locked
from ..base.tail_reader import Tail, read_new_lines

log = logging.getLogger("fal_qwen_edit")

STATUSES = ("running", "done", "failed", "cancelled", "unknown")
PROMPT_CHARS = 200
MAX_AGE = 90 * 24 * 3600.0  # fal's own request history reaches back 90 days
MAX_JOBS = 5000
MAX_THUMB_BYTES = 200 * 1024**2
PRUNE_TO = 0.9     # of MAX_THUMB_BYTES, once past it
RESCAN_EVERY = 200  # thumbnail additions between two listings of the folder
THUMBNAIL_WAIT = 5.0  # seconds a reader waits for thumbnails on their way
PENDING_THUMBNAILS = 2  # jobs whose thumbnails wait for the worker; past that, made by the caller
FIELDS = ("request_id", "endpoint", "model", "prompt", "submitted_at", "finished_at", "status",
          "cost_usd_estimate", "cost_usd_billed", "billed_units", "unit_price_usd", "price_source",
          "num_outputs", "thumbnails", "error", "connection", "source", "cache_key")
REQUEST_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
Listener = Callable[[dict], None]


def is_request_id(text: Any) -> bool:
    """fal's request ids are UUIDs; nothing else goes into a path or a URL."""
    return isinstance(text, str) and bool(REQUEST_ID.match(text))


@dataclass
class _Parsed:
    tail: Tail = field(default_factory=Tail)  # how far the file is parsed (base/tail_reader.py)
    lines: int = 0                       # valid lines among them
    # Each job's merged record as compact JSON: a third of the memory of the decoded dicts, so the
    # 5,000 jobs the history may hold cost a few MB in a ComfyUI that runs for weeks.
    jobs: dict[str, str] = field(default_factory=dict)


class JobHistory:
    def __init__(self, directory: Path | None):
        self.directory = Path(directory) if directory is not None else None
        self._memory: dict[str, dict] = {}  # the history when there is no state folder
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._seen: _Parsed | None = None   # what of jobs.jsonl is parsed already
        self._thumb_bytes: int | None = None  # this process's idea of the thumbnails' total size
        self._thumbs_lock = threading.Lock()
        self._thumb_adds = 0
        self._making: dict[str, int] = {}  # request id -> the thread making its thumbnails
        self._made = threading.Condition()
        self._worker: ThreadPoolExecutor | None = None

    # -- reading -----------------------------------------------------------------------------
    def jobs(self) -> list[dict]:
        """Every job, newest submitted first."""
        self.settle(None)
        with self._locked():
            jobs = self._read()
        return sorted(jobs.values(), key=lambda j: (j.get("submitted_at") or 0, j["request_id"]), reverse=True)

    def get(self, request_id: str) -> dict | None:
        self.settle(request_id)
        with self._locked():
            return self._read().get(request_id)

    def page(self, limit: int, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """Newest first; ``cursor`` is the last request id of the previous page."""
        jobs = self.jobs()
        start = 0
        if cursor:
            ids = [job["request_id"] for job in jobs]
            start = ids.index(cursor) + 1 if cursor in ids else len(jobs)
        chosen = jobs[start:start + limit]
        more = start + limit < len(jobs)
        return chosen, (chosen[-1]["request_id"] if more and chosen else None)

    def thumbnail_path(self, request_id: str, index: int) -> Path | None:
        if self.directory is None or not is_request_id(request_id):
            return None
        self.settle(request_id)
        path = self._thumbs() / f"{request_id}_{int(index)}.webp"
        return path if path.is_file() else None

    # -- writing -----------------------------------------------------------------------------
    def on_change(self, listener: Listener) -> None:
        """Called with the job's whole record after each change (ComfyUI's websocket, for one)."""
        self._listeners.append(listener)

    def record(self, request_id: str, **fields: Any) -> dict:
        """Merge ``fields`` into the job's record (None values are left out, so nothing known is lost)."""
        if not is_request_id(request_id):
            raise ValueError(f"not a fal request id: {request_id!r}")
        change = {k: v for k, v in fields.items() if k in FIELDS and v is not None}
        if isinstance(change.get("prompt"), str):
            change["prompt"] = change["prompt"][:PROMPT_CHARS]
        if "status" in change and change["status"] not in STATUSES:
            change["status"] = "unknown"
        change["request_id"] = request_id
        with self._locked():
            # a job as a dict in memory, as its JSON line in the file
            jobs: dict[str, dict] | dict[str, str] = self._memory if self.directory is None else self._parsed()
            if request_id not in jobs:
                change.setdefault("submitted_at", time.time())  # first seen now: its line says when
            earlier = jobs.get(request_id, {})
            job = {**(json.loads(earlier) if isinstance(earlier, str) else earlier), **change}
            self._append(change, job)
        self._tell(job)
        return job

    def add_thumbnails(self, request_id: str, thumbnails: Sequence[bytes]) -> dict | None:
        if self.directory is None or not thumbnails:
            return self.get(request_id)
        for index, data in enumerate(thumbnails):
            write_atomic(self._thumbs() / f"{request_id}_{index}.webp", data)
        job = self.record(request_id, thumbnails=len(thumbnails))
        self._prune_thumbnails(sum(len(data) for data in thumbnails))
        return job

    def add_thumbnails_later(self, request_id: str, make: Callable[[], Sequence[bytes]]) -> None:
        """``make``'s thumbnails added on the worker thread, so the edit that made the images returns
        without waiting for them; made here when the worker is behind (its queue holds images)."""
        if self.directory is None:
            return
        worker = None
        with self._made:
            if len(self._making) < PENDING_THUMBNAILS and request_id not in self._making:
                if self._worker is None:  # its queue is finished at a normal exit (concurrent.futures)
                    self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fal-thumbs")
                worker = self._worker
                self._making[request_id] = -1  # claimed; the worker's thread id once it starts
        if worker is None:
            self._thumbnails(request_id, make)
        else:
            worker.submit(self._thumbnails, request_id, make, True)

    def _thumbnails(self, request_id: str, make: Callable[[], Sequence[bytes]], pending: bool = False) -> None:
        try:
            if pending:
                with self._made:
                    self._making[request_id] = threading.get_ident()  # its listeners read without waiting
            self.add_thumbnails(request_id, make())
        except (OSError, ValueError) as exc:
            log.warning("fal: could not keep thumbnails of %s (%s)", request_id, exc)
        except Exception:  # noqa: BLE001 - a picture for the panel must never break anything else
            log.exception("fal: thumbnails of %s failed", request_id)
        finally:
            if pending:
                with self._made:
                    del self._making[request_id]
                    self._made.notify_all()

    def settle(self, request_id: str | None = None) -> None:
        """Wait (up to THUMBNAIL_WAIT) for thumbnails on their way: of one job, or of all (None)."""
        me = threading.get_ident()
        with self._made:
            if me in self._making.values():
                return  # the worker's own listeners: what they wait for is behind them in its queue
            self._made.wait_for(lambda: not any(owner != me and (request_id is None or rid == request_id)
                                                for rid, owner in self._making.items()), THUMBNAIL_WAIT)

    def _tell(self, job: dict) -> None:
        for listener in list(self._listeners):
            try:
                listener(dict(job))
            except Exception:  # noqa: BLE001 - a listener's trouble must never break an edit
                log.exception("fal: a job-history listener failed")

    # -- the file ----------------------------------------------------------------------------
    def _folder(self) -> Path:
        if self.directory is None:  # callers look at self.directory first: without one, all is in memory
            raise RuntimeError("this job history has no state folder")
        return self.directory

    def _path(self) -> Path:
        return self._folder() / "jobs.jsonl"

    def _thumbs(self) -> Path:
        return self._folder() / "thumbs"

    def _locked(self):
        # ComfyUI and the CLI read and write it at the same moment
        return locked(self._lock, self.directory / "jobs.lock" if self.directory is not None else None)

    def _read(self) -> dict[str, dict]:
        """Every job within MAX_AGE (copies: callers may change them). Under the lock."""
        if self.directory is None:
            return {k: dict(v) for k, v in self._memory.items()}
        cutoff = time.time() - MAX_AGE
        jobs = {k: json.loads(v) for k, v in self._parsed().items()}
        return {k: v for k, v in jobs.items() if (v.get("submitted_at") or 0) >= cutoff}

    def _parsed(self) -> dict[str, str]:
        """The file's jobs, parsing only the lines appended since the last call: a batch of thousands of
        jobs writes a line per change, and re-reading the whole file each time made that quadratic.
        The file is parsed again from the start when another process rewrote it (base/tail_reader.py).
        A last line without its newline is left for the next call (append_lines ends it)."""
        seen = self._seen or _Parsed()
        try:
            lines, tail, restarted = read_new_lines(self._path(), seen.tail)
        except FileNotFoundError:
            self._seen = None
            return {}
        if restarted:
            seen = _Parsed()
        seen.tail = tail
        for line in lines:
            try:
                change = json.loads(line)
            except ValueError:
                continue  # cut short by a crash: the other lines still count
            if isinstance(change, dict) and is_request_id(change.get("request_id")):
                seen.lines += 1
                earlier = seen.jobs.get(change["request_id"])
                seen.jobs[change["request_id"]] = json.dumps({**json.loads(earlier), **change} if earlier else change)
        self._seen = seen
        return seen.jobs

    def _append(self, change: dict, job: dict) -> None:
        """Under the lock, right after ``_parsed``: the file's jobs are ``self._seen``'s."""
        if self.directory is None:
            self._memory[job["request_id"]] = job
            return
        seen = self._seen or _Parsed()
        count = len(seen.jobs) + (job["request_id"] not in seen.jobs)
        if count > MAX_JOBS or seen.lines + 1 > 2 * count + 100:
            jobs = {**{k: json.loads(v) for k, v in seen.jobs.items()}, job["request_id"]: job}
            cutoff = time.time() - MAX_AGE
            kept = sorted((j for j in jobs.values() if (j.get("submitted_at") or 0) >= cutoff),
                          key=lambda j: j.get("submitted_at") or 0)[-MAX_JOBS:]
            write_atomic(self._path(), "".join(json.dumps(j) + "\n" for j in kept).encode())
            return
        append_lines(self._path(), (json.dumps(change) + "\n").encode())

    def _prune_thumbnails(self, added: int) -> None:
        """Past MAX_THUMB_BYTES, the oldest files go (their jobs stay listed, without pictures).
        The folder is only listed when this process's running total says it may be full, or every
        RESCAN_EVERY additions for what other processes added: not once per job."""
        with self._thumbs_lock:
            self._thumb_adds += 1
            if self._thumb_bytes is not None and self._thumb_adds % RESCAN_EVERY:
                self._thumb_bytes += added
                if self._thumb_bytes <= MAX_THUMB_BYTES:
                    return
            sizes = {}
            for path in self._thumbs().glob("*.webp"):
                with contextlib.suppress(FileNotFoundError):
                    sizes[path] = path.stat()
            total = sum(s.st_size for s in sizes.values())
            for path in sorted(sizes, key=lambda p: sizes[p].st_mtime) if total > MAX_THUMB_BYTES else ():
                if total <= MAX_THUMB_BYTES * PRUNE_TO:  # some room, so the next adds need no listing
                    break
                total -= sizes[path].st_size
                with contextlib.suppress(OSError):  # held open by a reader (Windows): pruned next time
                    remove_file(path)
            self._thumb_bytes = total
