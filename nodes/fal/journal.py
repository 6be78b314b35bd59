"""Job journal: every submitted job is on disk before the wait starts.

If ComfyUI (or the CLI) dies while a paid job runs, running the same edit
again finds the journalled request and waits on it instead of submitting a
second job. One small JSON file per request key, written atomically, so
concurrent processes never see half a record. Entries are removed when the
job's result is in hand or the job definitely ended (failed, cancelled).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from .queue import RequestHandle

log = logging.getLogger("fal_qwen_edit")

MAX_RESUME_AGE = 24 * 3600.0  # fal keeps queue results for a while; a day-old job is not resumed


def request_key(endpoint: str, arguments: dict[str, Any], inputs: Iterable[str]) -> str:
    """Identity of an edit: endpoint + every argument + the *content* of the input images.

    Image URLs are left out because the same pixels get a new storage URL after
    a restart; ``inputs`` carries a content hash per image instead.
    """
    fields = {k: v for k, v in arguments.items() if k != "image_urls"}
    payload = json.dumps({"endpoint": endpoint, "arguments": fields, "inputs": list(inputs)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Journal:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def record(self, key: str, handle: RequestHandle) -> None:
        entry = {"key": key, "endpoint": handle.endpoint, "request_id": handle.request_id,
                 "status_url": handle.status_url, "response_url": handle.response_url,
                 "cancel_url": handle.cancel_url, "submitted_at": time.time()}
        write_atomic(self._path(key), json.dumps(entry, indent=1).encode())

    def pending(self, key: str, max_age: float = MAX_RESUME_AGE) -> RequestHandle | None:
        """The journalled job for this edit, if one is still worth waiting for."""
        path = self._path(key)
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("fal: unreadable journal entry %s; ignoring it", path.name)
            return None
        if time.time() - float(entry.get("submitted_at", 0)) > max_age:
            self.finish(key)
            return None
        return RequestHandle(entry["endpoint"], entry["request_id"], entry["status_url"],
                             entry["response_url"], entry["cancel_url"])

    def finish(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def entries(self) -> list[dict]:
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return found
