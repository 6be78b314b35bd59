"""JSON text in pieces, so that megabytes of inline images are neither escaped nor copied into one string.

A submit through a gateway carries its inputs as data URIs: three 1 MP inputs are ~7 MB of JSON.
``json.dumps`` scans every character of them for escapes (~2 ms per MB here) and the result is copied
again to encode it; the lost-submit fingerprint (platform/fingerprints.py) did the same once more to
hash it. A ``DataUri`` made by ``DataUri.of`` holds only ``data:<type>;base64,`` and base64's
alphabet, so its JSON text is itself between quotes: ``pieces`` yields it as a piece of its own, and
everything else exactly as ``json.dumps`` writes it. Joined, the pieces are ``json.dumps``'s text,
byte for byte; ``Body`` streams them to the socket a block at a time, without joining them.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Iterator

_CONTENT_TYPE = re.compile(r"[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+")
HASH_BLOCK = 1 << 20  # characters of a data URI encoded (and hashed) at a time: the copy stays small


class DataUri(str):
    """An inline image made here from its bytes: JSON-safe as it is (see the module's docstring).
    Make one with ``DataUri.of``: the class itself checks nothing, to stay free on megabytes."""

    __slots__ = ()

    @classmethod
    def of(cls, data: bytes, content_type: str) -> "DataUri":
        if not _CONTENT_TYPE.fullmatch(content_type):
            raise ValueError(f"not a content type for a data URI: {content_type!r}")
        return cls(f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}")


def _inline(value: Any) -> bool:
    """Whether ``value`` holds a DataUri somewhere (else one ``json.dumps`` writes it all)."""
    if isinstance(value, DataUri):
        return True
    if isinstance(value, dict):
        return any(_inline(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_inline(v) for v in value)
    return False


def pieces(value: Any, *, ensure_ascii: bool = True, sort_keys: bool = False) -> Iterator[str]:
    """``json.dumps(value, separators=(",", ":"), ensure_ascii=…, sort_keys=…)`` in pieces; each
    DataUri is a piece of its own, not copied."""
    if isinstance(value, DataUri):
        yield '"'
        yield value
        yield '"'
    elif not _inline(value) or (isinstance(value, dict) and not all(isinstance(k, str) for k in value)):
        # (a dict with keys json.dumps would convert: left to it whole, as it is never a submit's body)
        yield json.dumps(value, separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys)
    elif isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0]) if sort_keys else value.items()
        for index, (key, item) in enumerate(items):
            yield ("," if index else "{") + json.dumps(key, ensure_ascii=ensure_ascii) + ":"
            yield from pieces(item, ensure_ascii=ensure_ascii, sort_keys=sort_keys)
        yield "}"
    else:
        for index, item in enumerate(value):
            yield "," if index else "["
            yield from pieces(item, ensure_ascii=ensure_ascii, sort_keys=sort_keys)
        yield "]"


def encoded(pieces_: Iterator[str]) -> Iterator[bytes]:
    """UTF-8 bytes of the pieces, a large piece ``HASH_BLOCK`` characters at a time (a hash or a
    socket takes it block by block; no copy of a whole data URI is made)."""
    for piece in pieces_:
        if len(piece) <= HASH_BLOCK:
            yield piece.encode()
        else:  # a DataUri: ASCII, so characters and bytes line up
            for start in range(0, len(piece), HASH_BLOCK):
                yield piece[start:start + HASH_BLOCK].encode("ascii")


class Body:
    """A JSON body to send, read a block at a time (requests and urllib3 take it as a file with a
    length: Content-Length is set, nothing is chunked). Byte for byte ``json.dumps(value,
    separators=(",", ":")).encode()``; a new one per attempt, as it is read once."""

    def __init__(self, value: Any):
        self._parts = [p if isinstance(p, DataUri) else p.encode() for p in _joined(pieces(value))]
        self._length = sum(len(p) for p in self._parts)  # a DataUri is ASCII: one byte per character
        self._index, self._offset = 0, 0

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        out: list[bytes] = []
        wanted = self._length if size is None or size < 0 else size
        while wanted > 0 and self._index < len(self._parts):
            part = self._parts[self._index]
            chunk = part[self._offset:self._offset + wanted]
            data = chunk.encode("ascii") if isinstance(chunk, str) else chunk
            out.append(data)
            wanted -= len(data)
            self._offset += len(data)
            if self._offset >= len(part):
                self._index, self._offset = self._index + 1, 0
        return b"".join(out)

    def value(self) -> bytes:
        """The whole body at once (a small body, or a test)."""
        return b"".join(p.encode("ascii") if isinstance(p, str) else p for p in self._parts)


def _joined(parts: Iterator[str]) -> Iterator[str]:
    """Runs of small pieces joined into one; each DataUri stays on its own."""
    run: list[str] = []
    for part in parts:
        if isinstance(part, DataUri):
            if run:
                yield "".join(run)
                run = []
            yield part
        else:
            run.append(part)
    if run:
        yield "".join(run)
