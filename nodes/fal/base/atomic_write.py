"""Writing a small state file so that a crash leaves the old version or the new one, never half of either;
replacing and removing state files under Windows' sharing rules.

On Windows a file that another process holds open (Python opens files without FILE_SHARE_DELETE)
cannot be replaced or deleted: PermissionError, where POSIX would just unlink the name. Readers of
state files (the panel, a second ComfyUI, the CLI) hold them for milliseconds, so both are retried
for up to SHARING_WAIT seconds before the error is raised.
"""

from __future__ import annotations

import os
import tempfile
import time
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
        replace_file(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


SHARING_WAIT = 2.0  # seconds a reader may hold a file we replace or remove (Windows)


def _while_shared(operation, *args) -> None:
    end, delay = time.monotonic() + SHARING_WAIT, 0.005
    while True:
        try:
            operation(*args)
            return
        except PermissionError:
            if time.monotonic() >= end:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def replace_file(source: str | Path, target: str | Path) -> None:
    """``os.replace``, waiting out a reader that holds ``target`` open (Windows)."""
    _while_shared(os.replace, source, target)


def remove_file(path: str | Path) -> bool:
    """Remove ``path`` if it exists, waiting out a reader that holds it open (Windows); whether it was there."""
    try:
        _while_shared(os.unlink, path)
    except FileNotFoundError:
        return False
    return True


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
