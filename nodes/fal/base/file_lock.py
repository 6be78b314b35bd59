"""Cross-process locks on state files (ComfyUI and the CLI share them), on every platform.

All of the pack's locking goes through here, on `filelock`, the field's portable lock (torch
depends on it, so every ComfyUI has it): ``fcntl.flock`` on Linux and macOS, ``msvcrt.locking``
on Windows. Where neither exists (a Python without ``fcntl``, as the no-POSIX test tier runs) it
falls back to a lock file created exclusively that records its owner's pid, host and start time;
since filelock 3.22 a contender takes over such a file when its owner is gone, so a process killed
with SIGKILL leaves no lock that blocks the next run.

filelock removes the lock file on release and, on POSIX, retries when it locked a file that its
previous holder had just removed, so a lock file per journal key does not pile up (the journal made
that check by hand with inode numbers, which Windows does not promise).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator

with warnings.catch_warnings():
    # "only soft file lock is available": expected without fcntl; the soft lock is the design there.
    warnings.simplefilter("ignore")
    import filelock

MODE = 0o600  # the owner only, where the platform has modes (Windows: the profile folder's ACL)


def os_lock_available() -> bool:
    """Whether the lock is the OS's (released by the OS when its process dies) rather than a lock file."""
    return not issubclass(filelock.FileLock, filelock.SoftFileLock)


def _lock(lock_file: Path) -> filelock.BaseFileLock:
    # thread_local=False: the holder, not the thread, owns it (a claim may be released by the same
    # code on another thread); one object per acquisition, so threads never share its count.
    return filelock.FileLock(str(lock_file), mode=MODE, thread_local=False)


@contextlib.contextmanager
def locked(thread_lock: threading.Lock, lock_file: Path | None) -> Iterator[None]:
    """Hold ``thread_lock``, and the cross-process lock on ``lock_file`` unless it is None (state in memory)."""
    with thread_lock:
        if lock_file is None:
            yield
            return
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        with _lock(lock_file):
            yield


def try_lock(lock_file: Path) -> filelock.BaseFileLock | None:
    """The lock on ``lock_file`` if nobody holds it now, else None; release it with ``.release()``."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock(lock_file)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return None
    return lock


@contextlib.contextmanager
def wait_for_lock(lock_file: Path, sleep: Callable[[float], object], poll: float) -> Iterator[None]:
    """Hold the lock on ``lock_file``, polling every ``poll`` seconds with ``sleep`` (which may raise,
    so that Cancel and deadlines stay live while another process holds it)."""
    while (lock := try_lock(lock_file)) is None:
        sleep(poll)
    try:
        yield
    finally:
        lock.release()
