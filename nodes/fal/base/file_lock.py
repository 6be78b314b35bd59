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
import os
import sys
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


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


# filelock 3.22-3.29 removes the lock file on release itself (while still holding it); from 3.30 it
# keeps it. Removing it ourselves as well, before such a release, could remove a newer holder's file.
_REMOVE_WHILE_HELD = sys.platform != "win32" and os_lock_available() and _version(filelock.__version__) >= (3, 30)


def _lock(lock_file: Path, soft: bool = False) -> filelock.BaseFileLock:
    # thread_local=False: the holder, not the thread, owns it (a claim may be released by the same
    # code on another thread); one object per acquisition, so threads never share its count.
    kind = filelock.SoftFileLock if soft else filelock.FileLock
    return kind(str(lock_file), mode=MODE, thread_local=False)


def _acquire(lock_file: Path, timeout: float) -> filelock.BaseFileLock:
    """The lock, held; filelock.Timeout when it is not free within ``timeout`` (-1: wait)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _take(_lock(lock_file), timeout)
    except NotImplementedError:  # a file system without flock (some network shares): a lock file there
        return _take(_lock(lock_file, soft=True), timeout)


def _take(lock: filelock.BaseFileLock, timeout: float) -> filelock.BaseFileLock:
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        if timeout != 0 or not isinstance(lock, filelock.SoftFileLock):
            raise
        # A lock file whose owner died is broken by the attempt that finds it; filelock 3.22-3.29
        # takes it only on the next attempt (later versions in the same one).
        lock.acquire(timeout=0)
    return lock


@contextlib.contextmanager
def locked(thread_lock: threading.Lock, lock_file: Path | None) -> Iterator[None]:
    """Hold ``thread_lock``, and the cross-process lock on ``lock_file`` unless it is None (state in memory)."""
    with thread_lock:
        if lock_file is None:
            yield
            return
        lock = _acquire(lock_file, timeout=-1)
        try:
            yield
        finally:
            lock.release()


def try_lock(lock_file: Path) -> filelock.BaseFileLock | None:
    """The lock on ``lock_file`` if nobody holds it now, else None; release it with ``.release()``."""
    try:
        return _acquire(lock_file, timeout=0)
    except filelock.Timeout:
        return None


@contextlib.contextmanager
def wait_for_lock(lock_file: Path, sleep: Callable[[float], object], poll: float) -> Iterator[None]:
    """Hold the lock on ``lock_file``, polling every ``poll`` seconds with ``sleep`` (which may raise,
    so that Cancel and deadlines stay live while another process holds it)."""
    while (lock := try_lock(lock_file)) is None:
        sleep(poll)
    try:
        yield
    finally:
        if _REMOVE_WHILE_HELD and not isinstance(lock, filelock.SoftFileLock):
            # One lock file per journal key would pile up (filelock >= 3.30 keeps them). Removed while
            # still held: a waiter that locks the removed file sees it has no name left and tries again
            # (filelock checks st_nlink). Windows and lock files remove theirs on release.
            with contextlib.suppress(OSError):
                os.unlink(lock_file)
        lock.release()
