"""Reading fal's status stream (server-sent events) without blocking the caller.

A background thread reads the socket and hands parsed events to a queue, so
the waiting loop can still check Cancel every 250 ms and give up on a stalled
stream. ``close()`` shuts the socket down, which wakes the reader at once
(closing a socket alone does not wake a thread blocked in ``recv`` on Linux).
"""

from __future__ import annotations

import queue
import socket
import threading
from typing import Iterator, Literal, Union

import requests


class SSEParser:
    """Incremental parser: feed bytes, get the ``data`` of each complete event."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[str]:
        self._buffer += chunk
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                return
            line = self._buffer[:newline].rstrip(b"\r").decode("utf-8", "replace")
            self._buffer = self._buffer[newline + 1:]
            if not line:
                if self._data:
                    yield "\n".join(self._data)
                    self._data = []
            elif line.startswith(":"):
                continue  # comment / keep-alive ping
            elif line.startswith("data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(" ") else value)
            # "event:", "id:" and "retry:" carry nothing we need: every fal event is a status.


# What EventStream.events holds: a check of the first item tells the checker what the second is.
Event = Union[tuple[Literal["data"], str], tuple[Literal["end"], None], tuple[Literal["error"], Exception]]


class EventStream:
    """Events of one open SSE response, read on a daemon thread.

    ``events`` yields ("data", text) for each event, then one ("end", None) when
    the server closes or ("error", exception) when the connection breaks.
    """

    def __init__(self, response: requests.Response):
        self.response = response
        self.events: queue.Queue[Event] = queue.Queue()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="fal-sse-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        raw = self.response.raw
        # read1 returns as soon as any bytes arrive; read(n) would wait for n of them.
        read = getattr(raw, "read1", None) or (lambda n: raw.read(1))
        parser = SSEParser()
        try:
            while not self._closed.is_set():
                chunk = read(65536)
                if not chunk:
                    break
                for data in parser.feed(chunk):
                    self.events.put(("data", data))
            self.events.put(("end", None))
        except Exception as exc:  # noqa: BLE001 - any read failure means "stream broke"
            if not self._closed.is_set():
                self.events.put(("error", exc))

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        sock = _socket_of(self.response)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()
        self._thread.join(timeout=1.0)


def _socket_of(response: requests.Response):
    raw = response.raw
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        fp = getattr(raw, "_fp", None)
        sock = getattr(getattr(getattr(fp, "fp", None), "raw", None), "_sock", None)
    return sock
