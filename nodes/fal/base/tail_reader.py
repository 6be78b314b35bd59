"""Reading a shared, append-only file of JSON lines (the spending ledger, the job history) a piece at
a time: only the lines appended since the last read, whichever process appended them.

Parsing the whole file for every change made a batch of thousands of edits quadratic. A file is the
one read before when it has not shrunk and still holds the same first bytes and the same bytes just
before where the last read stopped: a file another process rewrote (compaction, through
write_atomic) lost its oldest lines, so it starts with other bytes. The bytes decide, not inode
numbers: Windows gives none on some file systems (FAT, exFAT, many network shares report 0) and a
freed number can come back on any. Where the platform gives a file id, a different id is one more
sign of a rewrite. Otherwise the file is read again from the start, and the caller drops what it
had parsed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MARK_BYTES = 64


@dataclass(frozen=True)
class Tail:
    """Where the last read of a file stopped."""

    identity: tuple[int, int] = (0, 0)  # (st_dev, st_ino); st_ino 0: the platform gave no file id
    offset: int = 0                     # bytes read up to the end of the last whole line
    mark: bytes = b""                   # the bytes just before ``offset``
    head: bytes = b""                   # the file's first bytes (up to MARK_BYTES)


def read_new_lines(path: Path, tail: Tail) -> tuple[list[bytes], Tail, bool]:
    """(the whole lines appended since ``tail``, where this read stopped, ``restarted``).

    ``restarted``: the file is not the one ``tail`` describes (or ``tail`` is new), so the lines are
    all of it. A last line without its newline (being written, or cut short by a crash) is left for
    the next read. FileNotFoundError when there is no file."""
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        identity = (stat.st_dev, stat.st_ino)
        other_id = bool(tail.identity[1] and identity[1]) and tail.identity != identity
        same = bool(tail.offset) and not other_id and stat.st_size >= tail.offset \
            and _bytes_at(handle, 0, len(tail.head)) == tail.head \
            and _bytes_at(handle, tail.offset - len(tail.mark), len(tail.mark)) == tail.mark
        start = tail.offset if same else 0
        handle.seek(start)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    before = tail.mark if same else b""
    mark = data[end - MARK_BYTES:end] if end >= MARK_BYTES else (before + data[:end])[-MARK_BYTES:]
    head = ((tail.head if same else b"") + data[:min(end, MARK_BYTES)])[:MARK_BYTES]
    return data[:end].splitlines(), Tail(identity, start + end, mark, head), not same


def _bytes_at(handle: BinaryIO, offset: int, count: int) -> bytes:
    handle.seek(offset)
    return handle.read(count)
