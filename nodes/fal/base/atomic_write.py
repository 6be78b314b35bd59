"""Writing a small state file so that a crash leaves the old version or the new one, never half of either."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO


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


def append_lines(path: Path, data: bytes) -> None:
    """Append whole lines and fsync them. A last line a crash cut short gets its newline first, so it
    cannot swallow the first line appended now (readers skip the broken line and keep the rest)."""
    with open(path, "a+b") as handle:
        handle.write((b"\n" if ends_cut_short(handle) else b"") + data)
        handle.flush()
        os.fsync(handle.fileno())


def ends_cut_short(handle: BinaryIO) -> bool:
    """Whether the file open in ``handle`` (readable, "a+b") ends in a line without its newline."""
    if not handle.seek(0, os.SEEK_END):
        return False
    handle.seek(-1, os.SEEK_END)
    return handle.read(1) != b"\n"
