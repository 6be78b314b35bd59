"""Persistent result cache: an identical edit with a fixed seed costs nothing the second time.

Keyed like the journal (endpoint + arguments + input image content). Stores
fal's result JSON and the output image bytes exactly as downloaded, so a
cached edit decodes to the same pixels. Bounded: least recently used entries
are removed past ``max_bytes``. Requests without a seed are never cached:
fal would pick a new seed, so the user is asking for a new image.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .journal import write_atomic

log = logging.getLogger("fal_qwen_edit")

DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass
class CachedResult:
    request_id: str
    result: dict[str, Any]
    blobs: list[bytes]


class ResultCache:
    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES):
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def _entry(self, key: str) -> Path:
        return self.directory / key

    def get(self, key: str) -> CachedResult | None:
        entry = self._entry(key)
        meta_path = entry / "result.json"
        try:
            meta = json.loads(meta_path.read_text())
            blobs = [(entry / name).read_bytes() for name in meta["files"]]
        except (OSError, ValueError, KeyError):
            return None
        try:
            meta_path.touch()  # LRU: recently used entries survive pruning
        except OSError:
            pass
        log.info("fal: result of request %s served from the cache (no new job)", meta.get("request_id"))
        return CachedResult(meta["request_id"], meta["result"], blobs)

    def put(self, key: str, request_id: str, result: dict[str, Any], blobs: list[bytes]) -> None:
        entry = self._entry(key)
        files = [f"output_{i}.bin" for i in range(len(blobs))]
        for name, blob in zip(files, blobs):
            write_atomic(entry / name, blob)
        meta = {"request_id": request_id, "result": _without_inline_images(result), "files": files,
                "stored_at": time.time()}
        write_atomic(entry / "result.json", json.dumps(meta).encode())  # written last: marks it complete
        self.prune()

    def prune(self) -> None:
        entries = []
        total = 0
        for entry in self.directory.glob("*/result.json"):
            folder = entry.parent
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            entries.append((entry.stat().st_mtime, size, folder))
            total += size
        for _, size, folder in sorted(entries):
            if total <= self.max_bytes:
                break
            shutil.rmtree(folder, ignore_errors=True)
            total -= size


def _without_inline_images(result: dict[str, Any]) -> dict[str, Any]:
    """sync_mode results carry data URIs; their bytes are already stored as files."""
    copy = dict(result)
    copy["images"] = [{k: ("(stored)" if k == "url" and str(v).startswith("data:") else v)
                       for k, v in image.items()} if isinstance(image, dict) else image
                      for image in result.get("images") or []]
    return copy
