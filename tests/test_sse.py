"""Pure units: the SSE parser (events split anywhere across reads), Retry-After forms, and which
connection failures prove that a submit never left the machine."""

import ssl

import requests
from urllib3.exceptions import MaxRetryError
from urllib3.exceptions import SSLError as Urllib3SSLError

from comfyui_fal_qwen_edit.nodes.fal.wire.sse import SSEParser
from comfyui_fal_qwen_edit.nodes.fal.wire.transport import _never_connected, parse_retry_after

STREAM = (b": ping\n\n"
          b"data: {\"status\": \"IN_QUEUE\"}\r\n\r\n"
          b"event: status\nid: 3\ndata: {\"a\":\ndata: 1}\n\n"
          b"data:{\"status\":\"COMPLETED\"}\n\n"
          b"data: trailing-without-blank-line\n")


def test_parser_whole_stream():
    assert list(SSEParser().feed(STREAM)) == ['{"status": "IN_QUEUE"}', '{"a":\n1}', '{"status":"COMPLETED"}']


def test_parser_byte_by_byte_gives_same_events():
    parser = SSEParser()
    events = [event for i in range(len(STREAM)) for event in parser.feed(STREAM[i:i + 1])]
    assert events == list(SSEParser().feed(STREAM))


def test_retry_after_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


def test_connect_phase_failures_are_recognised_without_tracking():
    def wrapped(cause):
        return requests.exceptions.SSLError(MaxRetryError(None, "/", Urllib3SSLError(cause)))

    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    assert _never_connected(wrapped(verify))
    assert not _never_connected(wrapped(ssl.SSLError(1, "decryption failed or bad record mac")))
    assert _never_connected(requests.exceptions.ProxyError("proxy refused"))
    assert _never_connected(requests.exceptions.ConnectTimeout("connect timed out"))
    assert not _never_connected(requests.exceptions.ReadTimeout("read timed out"))
