"""A submit's fingerprint: one digest per field of its JSON body, the one definition that the journal's
"submitting" entry and fal's request history (submit_search.py) are compared by.

A field's digest is the sha256 of its canonical JSON text (sorted keys, compact, UTF-8, 4.0 written 4),
hashed piece by piece: a data URI the pack made is hashed as it is, never escaped or copied whole
(base/json_text.py). The definition has not changed since journal entries first carried it, so an
entry written by an earlier release still matches its job.

Through a gateway, ``image_urls`` is megabytes of data URIs. ``ListDigest`` hashes that field the same
way, element by element as each input's data URI is made (edit/ahead.py), on the threads that make them:
the first inputs are hashed while the last ones are still being encoded, and the submit does not wait
for a pass over the whole body.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from ..base.json_text import encoded, pieces

DIGEST_CHARS = 32  # of the hex sha256: 128 bits, in every journal entry since the first


def fingerprint(arguments: dict[str, Any], known: dict[str, str] | None = None) -> dict[str, str]:
    """A digest of each field of a submit's JSON body; ``known``: fields already digested (ListDigest)."""
    known = known or {}
    return {name: known.get(name) or _digest(value) for name, value in arguments.items()}


def matches(prints: dict[str, str], json_input: Any) -> bool:
    return isinstance(json_input, dict) and bool(prints) and \
        all(name in json_input and _digest(json_input[name]) == digest for name, digest in prints.items())


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 4 and 4.0 are one JSON number to fal
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _update(digest: Any, value: Any) -> None:
    for block in encoded(pieces(_canonical(value), ensure_ascii=False, sort_keys=True)):
        digest.update(block)


def _digest(value: Any) -> str:
    digest = hashlib.sha256()
    _update(digest, value)
    return digest.hexdigest()[:DIGEST_CHARS]


class ListDigest:
    """``_digest`` of a list of ``count`` items, given one at a time, in any order, by any thread.

    Each item is hashed once every item before it has been: the thread that gives the next item in
    order hashes it, and the items given meanwhile that follow it, before ``add`` returns. So once
    every ``add`` has returned, ``value`` is ready without waiting."""

    def __init__(self, count: int):
        self._count = count
        self._lock = threading.Lock()
        self._waiting: dict[int, Any] = {}
        self._next = 0
        self._hashing = False
        self._digest = hashlib.sha256(b"[")

    def add(self, index: int, item: Any) -> None:
        with self._lock:
            self._waiting[index] = item
            if self._hashing or index != self._next:
                return  # whoever hashes the items before it hashes it too
            self._hashing = True
        while True:
            with self._lock:
                if self._next not in self._waiting:
                    self._hashing = False
                    return
                position, item = self._next, self._waiting.pop(self._next)
            if position:
                self._digest.update(b",")
            _update(self._digest, item)  # outside the lock: others may add meanwhile
            with self._lock:
                self._next += 1

    def value(self) -> str | None:
        """The list's digest, or None while an item is missing (then the field is digested whole)."""
        with self._lock:
            if self._hashing or self._next != self._count:
                return None
            digest = self._digest.copy()
        digest.update(b"]")
        return digest.hexdigest()[:DIGEST_CHARS]
