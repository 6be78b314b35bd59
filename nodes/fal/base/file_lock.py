"""One lock shared by this process's threads and by other processes (ComfyUI and the CLI) on a state file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def locked(thread_lock: threading.Lock, lock_file: Path | None) -> Iterator[None]:
    """Hold ``thread_lock``, and an exclusive flock on ``lock_file`` unless it is None (state in memory)."""
    with thread_lock:
        if lock_file is None:
            yield
            return
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
