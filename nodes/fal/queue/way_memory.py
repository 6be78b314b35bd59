"""Which way of waiting each server offers, remembered per connection and endpoint.

The first job on a status-less gateway costs a request or two to learn that
``/status/stream`` and ``/status`` are not there; every later job goes straight
to the way that worked, in this process and (through ``ways.json`` in the state
folder, beside the journal) in the next one and in the CLI. An entry is
re-learned after ``RELEARN_AFTER``, so a server that gains a faster way is
noticed within a week at the cost of one request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from ..base.atomic_write import write_atomic

log = logging.getLogger("fal_qwen_edit")

WAYS = ("stream", "status", "result")  # fastest to notice completion first
RELEARN_AFTER = 7 * 24 * 3600.0


class WayMemory:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else None
        self._ways: dict[str, tuple[str, float]] = {}
        self._loaded_mtime: float | None = None
        self._lock = threading.Lock()

    def first_way(self, key: str) -> str | None:
        """The way that worked last time for ``key``, if it is still fresh."""
        with self._lock:
            self._reload()
            way, learned_at = self._ways.get(key, (None, 0.0))
        if way not in WAYS or time.time() - learned_at > RELEARN_AFTER:
            return None
        return way

    def remember(self, key: str, way: str) -> None:
        with self._lock:
            self._reload()
            known = self._ways.get(key)
            if known is not None and known[0] == way and time.time() - known[1] < RELEARN_AFTER / 2:
                return  # nothing new: no write
            self._ways[key] = (way, time.time())
            if known is None or known[0] != way:
                log.info("fal: %s: waiting by %s from now on", key, way)
            self._save()

    def _reload(self) -> None:
        """Take in what another process (ComfyUI, the CLI) learned since we last looked."""
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime == self._loaded_mtime:
            return
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            raw = {}
        for key, entry in (raw.items() if isinstance(raw, dict) else ()):
            if isinstance(entry, dict) and entry.get("way") in WAYS and isinstance(entry.get("at"), (int, float)):
                if key not in self._ways or self._ways[key][1] < entry["at"]:
                    self._ways[key] = (entry["way"], float(entry["at"]))
        self._loaded_mtime = mtime

    def _save(self) -> None:
        if self.path is None:
            return
        data = {key: {"way": way, "at": at} for key, (way, at) in sorted(self._ways.items())}
        try:
            write_atomic(self.path, json.dumps(data, indent=1).encode())
            self._loaded_mtime = self.path.stat().st_mtime
        except OSError as exc:
            log.warning("fal: could not save %s (%s); the way of waiting is kept in memory", self.path, exc)
