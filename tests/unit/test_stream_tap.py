"""StreamTap forwards whole SSE events however the bytes are split, and finds the usage."""

from __future__ import annotations

import json

from llmswitch.providers.openai import StreamTap

EVENTS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
    {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}},
]
STREAM = (
    b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in EVENTS) + b"data: [DONE]\n\n"
)


def relay(tap: StreamTap, size: int) -> bytes:
    out = b""
    for i in range(0, len(STREAM), size):
        out += tap.feed(STREAM[i : i + size])
    return out


def test_events_split_anywhere_come_out_whole_and_unchanged() -> None:
    for size in (1, 3, 7, 64, len(STREAM)):
        tap = StreamTap(forward_usage=True)
        assert relay(tap, size) == STREAM, size
        assert tap.done and tap.output_chars == 5
        assert tap.usage is not None and (tap.usage.prompt_tokens, tap.usage.completion_tokens) == (
            7,
            2,
        )


def test_the_usage_event_is_hidden_unless_the_client_asked() -> None:
    tap = StreamTap(forward_usage=False)
    out = relay(tap, 5)
    assert b'"usage"' not in out and out.endswith(b"data: [DONE]\n\n")
    assert tap.final_usage(prompt_chars=100).estimated is False


def test_usage_is_estimated_when_the_upstream_sends_none() -> None:
    tap = StreamTap(forward_usage=False)
    tap.feed(b"data: " + json.dumps(EVENTS[0]).encode() + b"\n\n")
    usage = tap.final_usage(prompt_chars=400)
    assert usage.estimated and usage.prompt_tokens == 100 and usage.completion_tokens == 1
