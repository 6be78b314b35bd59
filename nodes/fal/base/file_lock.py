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
import time
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


RECORDLESS_AGE = 5.0  # seconds an empty lock file may stand before it counts as a crashed holder's
POLL = 0.05


def _take(lock: filelock.BaseFileLock, timeout: float) -> filelock.BaseFileLock:
    if not isinstance(lock, filelock.SoftFileLock):
        lock.acquire(timeout=timeout)
        return lock
    # A lock file: filelock takes over one whose recorded owner died, but not one left empty by an
    # owner killed between creating it and writing its record (an empty file reads as an older
    # filelock's holder, held for good): cleared here once it has stood RECORDLESS_AGE seconds.
    deadline = None if timeout < 0 else time.monotonic() + timeout
    while True:
        for _ in range(2):  # filelock 3.22-3.29: the attempt that breaks a dead owner's file does not take it
            try:
                lock.acquire(timeout=0)
                return lock
            except filelock.Timeout:
                pass
        if _clear_recordless(Path(lock.lock_file)):
            continue
        if deadline is not None and time.monotonic() >= deadline:
            raise filelock.Timeout(lock.lock_file)
        time.sleep(POLL)


def _clear_recordless(path: Path) -> bool:
    """Remove ``path`` if it is an empty lock file older than RECORDLESS_AGE; whether it did."""
    try:
        seen = os.stat(path)
    except OSError:
        return False
    if seen.st_size or time.time() - seen.st_mtime < RECORDLESS_AGE:
        return False
    aside = path.with_name(f"{path.name}.crashed-{os.getpid()}-{threading.get_ident()}")
    try:
        os.rename(path, aside)  # atomic: of several contenders, one moves it
    except OSError:
        return False
    moved = os.stat(aside)
    if (moved.st_ino, moved.st_mtime_ns, moved.st_size) != (seen.st_ino, seen.st_mtime_ns, 0):
        with contextlib.suppress(OSError):  # a new holder's file came between: give it its name back
            os.link(aside, path)
    with contextlib.suppress(OSError):
        os.unlink(aside)
    return True


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
def wait_for_lock(lock_file: Path, sleep: Callable[[float], None], poll: float) -> Iterator[None]:
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
