"""OpenAIWire and StreamTap against fixtures written from OpenAI's documented format.

tests/data/providers/openai/ holds a non-streamed ``chat.completion`` with tool calls and
usage, and a stream with content deltas, streamed tool-call arguments, the usage-only
chunk (empty ``choices``) that ``stream_options.include_usage`` adds, and ``[DONE]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from itertools import pairwise
from typing import Any

import pytest

from llmswitch.providers.openai import OpenAIWire, StreamTap, Usage, content_chars, usage_of
from tests.providers.samples import data_bytes, data_json, openai_events

fixture = partial(data_json, "openai")
fixture_bytes = partial(data_bytes, "openai")
STREAM = "stream_tool_call.txt"


def pieces(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    """*data* cut into pieces of the given sizes, cycling through them."""
    i = 0
    n = 0
    while i < len(data):
        size = sizes[n % len(sizes)]
        yield data[i : i + size]
        i += size
        n += 1


def between_the_newlines(data: bytes) -> list[bytes]:
    """Cut between the two newlines that end each event."""
    ends = [i + 1 for i in range(len(data) - 1) if data[i : i + 2] == b"\n\n"]
    cuts = [0, *ends, len(data)]
    return [data[a:b] for a, b in pairwise(cuts)]


SPLITS = {
    "bytewise": lambda data: list(pieces(data, [1])),
    "sevens": lambda data: list(pieces(data, [7])),
    "uneven": lambda data: list(pieces(data, [3, 50, 1, 2])),
    "whole": lambda data: [data],
    "between_newlines": between_the_newlines,
}


def tap_all(chunks: list[bytes], forward_usage: bool) -> tuple[list[bytes], StreamTap]:
    tap = StreamTap(forward_usage=forward_usage)
    return [tap.feed(c) for c in chunks], tap


def stream_payloads() -> list[Any]:
    return openai_events(fixture_bytes(STREAM))


def test_the_stream_fixture_is_what_openai_documents() -> None:
    payloads = stream_payloads()
    assert payloads[-1] == "[DONE]"
    chunks = payloads[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    usage_only = [c for c in chunks if not c["choices"]]
    assert len(usage_only) == 1 and usage_only[0] is chunks[-1]
    assert all(c["usage"] is None for c in chunks[:-1])
    args = "".join(
        call["function"].get("arguments", "")
        for c in chunks[:-1]
        for call in c["choices"][0]["delta"].get("tool_calls", ())
    )
    assert json.loads(args) == {"location": "Paris, France", "unit": "celsius"}


@pytest.mark.parametrize("split", SPLITS)
def test_stream_tap_forwards_whole_events_unchanged(split: str) -> None:
    data = fixture_bytes(STREAM)
    chunks = SPLITS[split](data)
    assert b"".join(chunks) == data
    out, tap = tap_all(chunks, forward_usage=True)
    assert b"".join(out) == data
    for piece in out:
        assert piece == b"" or piece.endswith(b"\n\n")
    assert tap.done
    assert tap.usage == Usage(96, 31, estimated=False)
    assert tap.final_usage(prompt_chars=10_000) == Usage(96, 31, estimated=False)
    assert tap.events == len(stream_payloads()) - 1  # [DONE] is not counted


@pytest.mark.parametrize("split", SPLITS)
def test_stream_tap_hides_the_usage_only_event_unless_asked(split: str) -> None:
    data = fixture_bytes(STREAM)
    out, tap = tap_all(SPLITS[split](data), forward_usage=False)
    expected = [p for p in stream_payloads() if p == "[DONE]" or p["choices"]]
    assert openai_events(b"".join(out)) == expected
    raw_events = [e + b"\n\n" for e in data.split(b"\n\n") if e]
    assert b"".join(out) == b"".join(e for e in raw_events if b'"choices":[]' not in e)
    assert tap.usage == Usage(96, 31, estimated=False)
    assert tap.done


def test_stream_tap_counts_content_and_argument_characters() -> None:
    _, tap = tap_all([fixture_bytes(STREAM)], forward_usage=True)
    text = "Let me check the weather in Paris, café ☕."
    arguments = '{"location":"Paris, France","unit":"celsius"}'
    assert tap.output_chars == len(text) + len(arguments)


def test_stream_tap_is_not_done_before_the_done_event() -> None:
    data = fixture_bytes(STREAM)
    tap = StreamTap(forward_usage=True)
    out = tap.feed(data[: data.rindex(b"data: [DONE]")])
    assert not tap.done and tap.usage == Usage(96, 31, estimated=False)
    assert out.endswith(b"\n\n") and b"[DONE]" not in out
    assert tap.feed(b"data: [DONE]\n") == b""
    assert not tap.done
    assert tap.feed(b"\n") == b"data: [DONE]\n\n"
    assert tap.done


def test_non_streamed_answer_passes_through_and_usage_is_read() -> None:
    raw = fixture_bytes("chat_completion_tool_calls.json")
    out = OpenAIWire().answer(raw, "gpt-4o-2024-08-06")
    assert out == raw
    completion = json.loads(out)
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert usage_of(completion) == Usage(82, 18, estimated=False)
    arguments = completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert content_chars(completion) == len(arguments)


def test_a_stream_chunk_with_null_usage_has_no_usage() -> None:
    first = stream_payloads()[0]
    assert first["usage"] is None
    assert usage_of(first) is None


def test_streamed_request_asks_for_usage_and_keeps_the_rest() -> None:
    body = fixture("chat_request_tools_image.json")
    call = OpenAIWire().call({**body, "stream": True}, "gpt-4o-2024-08-06")
    assert call.body["stream_options"] == {"include_usage": True}
    assert call.body["model"] == "gpt-4o-2024-08-06"
    assert {k: v for k, v in call.body.items() if k not in ("model", "stream_options")} == {
        **{k: v for k, v in body.items() if k != "model"},
        "stream": True,
    }
