"""The SSE parser copes with events split anywhere across reads."""

from comfyui_fal_qwen_edit.nodes.fal.sse import SSEParser
from comfyui_fal_qwen_edit.nodes.fal.transport import parse_retry_after

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
