"""EventSplitter: whole events however the bytes are cut, in linear time, bounded."""

from __future__ import annotations

import pytest

from llmswitch.providers.anthropic import AnthropicWire
from llmswitch.providers.common import UpstreamFormatError, UpstreamOverLimit
from llmswitch.providers.gemini import GeminiWire
from llmswitch.providers.openai import OpenAIWire, StreamTap
from llmswitch.providers.sse import EventSplitter, data_of, encode, field_values
from llmswitch.providers.wire import Wire

STREAM = b'event: a\r\ndata: {"x":1}\r\n\r\n: ping\n\ndata: one\rdata: two\r\rdata: [DONE]\n\n'
EVENTS = [
    [b"event: a", b'data: {"x":1}'],
    [b": ping"],
    [b"data: one", b"data: two"],
    [b"data: [DONE]"],
]


def split_in_pieces(stream: bytes, size: int) -> list[list[bytes]]:
    """The events of ``stream`` fed in pieces of ``size`` bytes; nothing is left at close."""
    splitter = EventSplitter(1024)
    events = []
    for i in range(0, len(stream), size):
        events += splitter.feed(stream[i : i + size])
    assert splitter.close() is None
    return events


def test_events_come_out_whole_whatever_the_cuts_and_line_ends() -> None:
    for size in (1, 2, 3, 5, len(STREAM)):
        assert split_in_pieces(STREAM, size) == EVENTS, size


LF_STREAM = b'data: {"x":1}\n\n\n\n: ping\nevent: e\ndata: 2\n\ndata: [DONE]\n\n'
LF_EVENTS = [[b'data: {"x":1}'], [b": ping", b"event: e", b"data: 2"], [b"data: [DONE]"]]


def test_whole_lf_events_in_one_chunk_split_as_they_do_line_by_line() -> None:
    """The fast path (whole LF-ended events, nothing pending) agrees with every cut."""
    for size in (1, 7, 20, len(LF_STREAM) - 3, len(LF_STREAM)):
        assert split_in_pieces(LF_STREAM, size) == LF_EVENTS, size
    with pytest.raises(UpstreamOverLimit):
        EventSplitter(100).feed(b"data: " + b"x" * 100 + b"\n\n")
    assert EventSplitter(100).feed(b"data: " + b"x" * 93 + b"\n\n") == [[b"data: " + b"x" * 93]]


def test_fields_and_data_follow_the_sse_rules() -> None:
    assert data_of(EVENTS[2]) == b"one\ntwo"
    assert data_of(EVENTS[1]) is None
    assert field_values(EVENTS[0], b"event") == [b"a"]
    assert encode(EVENTS[0]) == b'event: a\ndata: {"x":1}\n\n'


def test_an_unterminated_last_event_is_given_at_close() -> None:
    splitter = EventSplitter(1024)
    assert splitter.feed(b"data: 1\n\ndata: 2") == [[b"data: 1"]]
    assert splitter.close() == [b"data: 2"]


def test_an_event_over_the_limit_fails_before_more_of_it_is_kept() -> None:
    splitter = EventSplitter(100)
    splitter.feed(b"data: " + b"x" * 90)
    with pytest.raises(UpstreamOverLimit):
        splitter.feed(b"x" * 10)
    many_lines = EventSplitter(100)
    with pytest.raises(UpstreamOverLimit):
        many_lines.feed(b"data: x\n" * 20)


def test_a_huge_line_in_tiny_chunks_is_read_once_over() -> None:
    """48 MiB trickled in 4 KiB chunks used to be rescanned on every chunk (13-22 s).

    Linear time shown by behaviour, not by timing: the line is held in one growing buffer
    and every chunk is searched once, so 12,288 chunks finish and a limit still applies.
    """
    splitter = EventSplitter(64 * 1024 * 1024)
    chunk = b"a" * 4096
    splitter.feed(b"data: ")
    for _ in range(12_288):
        assert splitter.feed(chunk) == []
    events = splitter.feed(b"\n\n")
    assert len(events) == 1 and len(events[0][0]) == 6 + 48 * 1024 * 1024


@pytest.mark.parametrize("wire", [OpenAIWire(), AnthropicWire(), GeminiWire()])
def test_every_wire_bounds_one_event_with_the_limit_it_is_given(wire: Wire) -> None:
    tap = StreamTap(forward_usage=False, max_event_bytes=1024)
    translator = wire.translator("m", 1024)
    with pytest.raises(UpstreamOverLimit):
        for _ in range(3):
            tap.feed(translator.feed(b"data: " + b"x" * 500))


def test_a_stream_event_that_is_not_a_json_object_is_an_upstream_failure() -> None:
    for data in (b"<html>", b"\xff\xfe", b"[1, 2]", b"[" * 100_000):
        with pytest.raises(UpstreamFormatError):
            StreamTap(forward_usage=False).feed(b"data: " + data + b"\n\n")
