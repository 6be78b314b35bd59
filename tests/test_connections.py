"""Which connection a submit travels on: a pooled one only if it was used moments ago.

A keep-alive connection that the server closes just as a POST goes out fails after the request
was sent, and a paid submit that fails that way can only be reported as "maybe billed". Reads
may reuse any pooled connection (a failed read is simply retried).
"""

from __future__ import annotations

import pytest

from comfyui_fal_qwen_edit.nodes.fal.wire import sending
from comfyui_fal_qwen_edit.nodes.fal.wire import transport

from test_queue import ENDPOINT, arguments


@pytest.fixture
def connects(monkeypatch):
    """Counts new TCP connections the client opens."""
    opened = []
    original = transport._Tracked.connect

    def counting(self):
        opened.append(self)
        return original(self)

    monkeypatch.setattr(transport._Tracked, "connect", counting)
    return opened


def test_a_submit_reuses_a_connection_used_moments_ago(fake_fal, make_client, connects):
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    client.queue.status(handle)  # the connection goes back to the pool, just used
    before = len(connects)
    client.queue.submit(ENDPOINT, arguments())
    assert len(connects) == before and fake_fal.submissions == 2


def test_a_submit_never_rides_an_idle_connection(fake_fal, make_client, connects, monkeypatch):
    monkeypatch.setattr(sending, "SUBMIT_REUSE_IDLE", 0.0)  # every pooled connection counts as idle
    client = make_client(fake_fal)
    handle = client.queue.submit(ENDPOINT, arguments())
    client.queue.status(handle)
    before = len(connects)
    client.queue.status(handle)  # a read reuses the pooled connection
    assert len(connects) == before
    client.queue.submit(ENDPOINT, arguments())
    assert len(connects) == before + 1 and fake_fal.submissions == 2
