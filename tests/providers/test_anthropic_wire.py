"""AnthropicWire: OpenAI requests to Messages API bodies, Claude's answers back to OpenAI.

Pure tests: the answers come from fixtures written from Anthropic's documented format.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from llmswitch.providers.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicTranslator,
    AnthropicWire,
    UnsupportedRequest,
    UpstreamFormatError,
)
from llmswitch.providers.wire import Translator, Wire
from tests.providers.samples import (
    STRING,
    data_bytes,
    data_json,
    object_schema,
    openai_events,
    weather_tool,
)

MODEL = "claude-sonnet-4-20250514"

WEATHER_TOOL = weather_tool(object_schema("location", location=STRING))
fixture = partial(data_json, "anthropic")
fixture_bytes = partial(data_bytes, "anthropic")


def wire() -> AnthropicWire:
    return AnthropicWire(clock=lambda: 1_700_000_000.0)


def sse_fixture(name: str) -> bytes:
    return "\n".join(fixture(name)["sse"]).encode()


def request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body = wire().call({"model": "auto", "messages": messages, **extra}, MODEL).body
    return body


def events(data: bytes) -> list[Any]:
    """The JSON payloads of OpenAI SSE bytes; "[DONE]" stays a string."""
    assert data.endswith(b"\n\n") or not data
    return openai_events(data)


def feed_in_pieces(data: bytes, size: int, model: str = MODEL) -> tuple[bytes, AnthropicTranslator]:
    translator = wire().translator(model)
    out = b"".join(translator.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + translator.close(), translator


def test_satisfies_the_wire_protocol() -> None:
    w: Wire = wire()
    t: Translator = w.translator(MODEL)
    assert t.feed(b"") == b""


# -- requests -----------------------------------------------------------------------


def test_plain_request_path_headers_and_defaults() -> None:
    call = wire().call(
        {
            "model": "auto",
            "messages": [{"role": "user", "content": "hi"}],
            "stream_options": {"include_usage": True},
            "n": 1,
            "seed": 7,
            "user": "someone",
            "response_format": {"type": "json_object"},
            "presence_penalty": 0.5,
            "logprobs": True,
        },
        MODEL,
    )
    assert call.path == "/messages"
    assert call.headers == {"anthropic-version": "2023-06-01"}
    assert call.params == {}
    assert call.body == {
        "model": MODEL,
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_a_json_schema_response_format_becomes_output_config_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}
    body = request([{"role": "user", "content": "title?"}], response_format=fmt)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_system_and_developer_messages_join_into_system() -> None:
    body = request(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "hello"},
            {"role": "system", "content": "Late instruction."},
        ]
    )
    assert body["system"] == "You are terse.\n\nAnswer in French.\n\nLate instruction."
    assert body["messages"] == [{"role": "user", "content": "hello"}]


def test_multi_turn_and_same_role_turns_merge() -> None:
    body = request(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "three"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "four"},
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {"role": "assistant", "content": "three"},
        {"role": "user", "content": "four"},
    ]


def test_images_data_url_and_http_url() -> None:
    body = request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_non_base64_data_url_is_encoded() -> None:
    body = request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/svg+xml,%3Csvg%2F%3E"}}
                ],
            }
        ]
    )
    source = body["messages"][0]["content"][0]["source"]
    assert source == {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zy8+"}


def test_pdf_file_part_becomes_a_document() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    }
    body = request([{"role": "user", "content": [part]}])
    assert body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        }
    ]


def test_tools_tool_calls_and_tool_results() -> None:
    body = request(
        [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "21C"}],
            },
            {"role": "user", "content": "Thanks, which is warmer?"},
        ],
        tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "now"}}],
    )
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "21C"}],
                },
                {"type": "text", "text": "Thanks, which is warmer?"},
            ],
        },
    ]


def test_assistant_text_before_tool_calls_is_kept() -> None:
    body = request(
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ]
    )
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "c", "name": "f", "input": {}},
    ]
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "c", "content": "ok"}],
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_variants(choice: Any, expected: dict[str, Any]) -> None:
    body = request([{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], tool_choice=choice)
    assert body["tool_choice"] == expected


def test_parallel_tool_calls_false_disables_parallel_use() -> None:
    body = request(
        [{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL], parallel_tool_calls=False
    )
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    body = request(
        [{"role": "user", "content": "hi"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
    )
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_tool_choice_without_tools_is_dropped() -> None:
    body = request([{"role": "user", "content": "hi"}], tool_choice="auto")
    assert "tool_choice" not in body and "tools" not in body


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"max_tokens": 50}, 50),
        ({"max_completion_tokens": 70}, 70),
        ({"max_tokens": 50, "max_completion_tokens": 70}, 70),
        ({}, DEFAULT_MAX_TOKENS),
    ],
)
def test_max_tokens(extra: dict[str, Any], expected: int) -> None:
    assert request([{"role": "user", "content": "hi"}], **extra)["max_tokens"] == expected


def test_stop_sampling_and_stream() -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert request(messages, stop="END")["stop_sequences"] == ["END"]
    assert request(messages, stop=["a", "b"])["stop_sequences"] == ["a", "b"]
    assert "stop_sequences" not in request(messages, stop=None)
    body = request(messages, temperature=0.3, stream=True)
    assert body["temperature"] == 0.3 and body["stream"] is True
    assert request(messages, temperature=1.7)["temperature"] == 1.0  # Anthropic's range is 0..1
    assert request(messages, top_p=0.9)["top_p"] == 0.9
    both = request(messages, temperature=0.5, top_p=0.9)
    assert both["temperature"] == 0.5 and "top_p" not in both
    assert "stream" not in request(messages, stream=False)


def test_final_assistant_prefill_loses_trailing_whitespace() -> None:
    body = request(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure: \n"}]
    )
    assert body["messages"][-1] == {"role": "assistant", "content": "Sure:"}


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]},
        {"role": "function", "name": "f", "content": "x"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]},
    ],
)
def test_untranslatable_requests_raise(message: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedRequest):
        request([message])


def test_non_function_tools_raise() -> None:
    with pytest.raises(UnsupportedRequest):
        request([{"role": "user", "content": "hi"}], tools=[{"type": "custom", "custom": {}}])


# -- non-stream answers ---------------------------------------------------------------


def test_answer_text() -> None:
    out = json.loads(wire().answer(fixture_bytes("message_text.json"), MODEL))
    assert out == {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today?",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 10, "total_tokens": 22},
    }


def test_answer_tool_use_and_cached_usage() -> None:
    out = json.loads(wire().answer(fixture_bytes("message_tool_use.json"), MODEL))
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the weather in Paris."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {
        "location": "Paris, France",
        "unit": "celsius",
    }
    assert out["usage"] == {
        "prompt_tokens": 500,
        "completion_tokens": 67,
        "total_tokens": 567,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_answer_finish_reasons(stop_reason: str | None, finish: str) -> None:
    message = dict(fixture("message_text.json"), stop_reason=stop_reason)
    out = json.loads(wire().answer(json.dumps(message).encode(), MODEL))
    assert out["choices"][0]["finish_reason"] == finish


def test_answer_only_tool_use_has_null_content() -> None:
    message = fixture("message_tool_use.json")
    message["content"] = message["content"][1:]
    out = json.loads(wire().answer(json.dumps(message).encode(), MODEL))
    assert out["choices"][0]["message"]["content"] is None


def test_answer_rejects_non_messages() -> None:
    with pytest.raises(UpstreamFormatError):
        wire().answer(b"<html>", MODEL)
    with pytest.raises(UpstreamFormatError):
        wire().answer(fixture_bytes("error_overloaded.json"), MODEL)


# -- streams --------------------------------------------------------------------------


def test_stream_text() -> None:
    out, translator = feed_in_pieces(sse_fixture("stream_text.json"), 1 << 20)
    chunks = events(out)
    assert chunks[-1] == "[DONE]"
    assert translator.done and translator.error is None
    first = chunks[0]
    assert first["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"
    assert first["object"] == "chat.completion.chunk"
    assert first["model"] == MODEL
    assert first["created"] == 1_700_000_000
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-2])
    assert text == fixture("stream_text.json")["reply"]
    finish = chunks[-3]
    assert finish["choices"] == [
        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    ]
    usage = chunks[-2]
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40}


@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_use.json", "stream_error.json"])
@pytest.mark.parametrize("size", [1, 2, 7, 13, 64])
def test_awkward_chunk_splits_give_identical_output(name: str, size: int) -> None:
    data = sse_fixture(name)
    whole, _ = feed_in_pieces(data, len(data))
    pieces, _ = feed_in_pieces(data, size)
    assert pieces == whole


def test_only_whole_events_come_out() -> None:
    data = sse_fixture("stream_text.json")
    translator = wire().translator(MODEL)
    for i in range(0, len(data), 7):
        out = translator.feed(data[i : i + 7])
        assert out == b"" or (out.startswith(b"data: ") and out.endswith(b"\n\n"))
        events(out)  # every piece parses on its own


def test_crlf_line_endings() -> None:
    data = sse_fixture("stream_text.json")
    crlf, _ = feed_in_pieces(data.replace(b"\n", b"\r\n"), 5)
    plain, _ = feed_in_pieces(data, 5)
    assert crlf == plain


def test_stream_tool_use() -> None:
    spec = fixture("stream_tool_use.json")
    out, translator = feed_in_pieces(sse_fixture("stream_tool_use.json"), 7)
    chunks = events(out)
    assert translator.done
    deltas = [c["choices"][0]["delta"] for c in chunks if c != "[DONE]" and c["choices"]]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == spec["text"]
    calls = [call for d in deltas for call in d.get("tool_calls") or ()]
    head = calls[0]
    assert head == {
        "index": 0,
        "id": spec["tool"]["id"],
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    for later in calls[1:]:
        assert set(later) == {"index", "function"} and later["index"] == 0
        assert set(later["function"]) == {"arguments"}
        assert later["function"]["arguments"]  # empty fragments are not relayed
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert arguments == spec["tool"]["arguments"]
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["usage"] == {
        "prompt_tokens": 472,
        "completion_tokens": 89,
        "total_tokens": 561,
    }


def _sse(name: str, payload: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode()


def test_two_tool_blocks_get_their_own_indexes_and_thinking_is_skipped() -> None:
    start = {
        "type": "message_start",
        "message": {"id": "msg_x", "model": MODEL, "usage": {"input_tokens": 3}},
    }
    data = b"".join(
        [
            _sse("message_start", start),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "thinking", "thinking": ""},
                },
            ),
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "thinking_delta", "thinking": "hmm"},
                },
            ),
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "signature_delta", "signature": "abc"},
                },
            ),
            _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {"type": "tool_use", "id": "t1", "name": "a", "input": {}},
                },
            ),
            _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": "{}"},
                },
            ),
            _sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
            _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 2,
                    "content_block": {
                        "type": "tool_use",
                        "id": "t2",
                        "name": "b",
                        "input": {"x": 1},
                    },
                },
            ),
            _sse("content_block_stop", {"type": "content_block_stop", "index": 2}),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use"},
                    "usage": {"output_tokens": 9},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]
    )
    out, _ = feed_in_pieces(data, 11)
    chunks = events(out)
    assert "hmm" not in out.decode()
    calls = [
        call
        for c in chunks
        if c != "[DONE]" and c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert [(c["index"], c.get("id"), c["function"].get("arguments")) for c in calls] == [
        (0, "t1", ""),
        (0, None, "{}"),
        (1, "t2", ""),
        (1, None, '{"x": 1}'),  # an input given whole at block start is sent at block stop
    ]


def test_stream_error_event() -> None:
    out, translator = feed_in_pieces(sse_fixture("stream_error.json"), 7)
    chunks = events(out)
    assert "[DONE]" not in chunks
    assert chunks[-1] == {
        "error": {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": "overloaded_error",
        }
    }
    assert chunks[1]["choices"][0]["delta"] == {"content": "Partial"}
    assert translator.error == "Overloaded" and not translator.done
    assert translator.feed(b"event: message_stop\ndata: {}\n\n") == b""
    assert translator.close() == b""


def test_cut_stream_closes_with_nothing() -> None:
    data = sse_fixture("stream_text.json")
    cut = data[: data.index(b"event: message_delta")]
    translator = wire().translator(MODEL)
    out = translator.feed(cut)
    assert events(out)[-1]["choices"][0]["delta"] == {"content": " world!"}
    assert translator.close() == b""
    assert not translator.done


def test_cut_inside_message_stop_event_is_not_done() -> None:
    data = sse_fixture("stream_text.json")
    cut = data[: data.index(b"event: message_stop") + 10]
    translator = wire().translator(MODEL)
    translator.feed(cut)
    assert translator.close() == b""


def test_unterminated_last_event_is_flushed_by_close() -> None:
    data = sse_fixture("stream_text.json").rstrip(b"\n")  # ends right after message_stop's data
    translator = wire().translator(MODEL)
    out = translator.feed(data)
    assert b"[DONE]" not in out
    tail = translator.close()
    assert tail.endswith(b"data: [DONE]\n\n")
    assert events(tail)[0]["choices"][0]["finish_reason"] == "stop"
    whole, _ = feed_in_pieces(sse_fixture("stream_text.json"), 1000)
    assert out + tail == whole


def test_usage_updates_from_message_delta_replace_message_start() -> None:
    data = b"".join(
        [
            _sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {"id": "m", "usage": {"input_tokens": 5, "output_tokens": 1}},
                },
            ),
            _sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "max_tokens"},
                    "usage": {"output_tokens": 4, "input_tokens": 6, "cache_read_input_tokens": 2},
                },
            ),
            _sse("message_stop", {"type": "message_stop"}),
        ]
    )
    chunks = events(feed_in_pieces(data, 3)[0])
    assert chunks[-3]["choices"][0]["finish_reason"] == "length"
    assert chunks[-2]["usage"] == {
        "prompt_tokens": 8,
        "completion_tokens": 4,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 2},
    }


# -- errors ---------------------------------------------------------------------------


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def test_error_message() -> None:
    w = wire()
    assert w.error_message(529, fixture_bytes("error_overloaded.json")) == (
        "HTTP 529: Overloaded (overloaded_error)"
    )
    assert w.error_message(502, b"<html>Bad Gateway</html>") == "HTTP 502: <html>Bad Gateway</html>"
    assert w.error_message(500, b"") == "HTTP 500"
    leaked = w.error_message(401, _error("authentication_error", "bad key sk-ant-api03-SECRET_x"))
    assert "SECRET" not in leaked and "authentication_error" in leaked


@pytest.mark.parametrize(
    ("status", "payload", "retry"),
    [
        (429, _error("rate_limit_error", "slow down"), True),
        (500, _error("api_error", "oops"), True),
        (502, b"bad gateway", True),
        (503, b"", True),
        (504, _error("timeout_error", "timeout"), True),
        (529, fixture_bytes("error_overloaded.json"), True),
        (401, _error("authentication_error", "invalid x-api-key"), True),
        (403, _error("permission_error", "no access"), True),
        (404, _error("not_found_error", "model: claude-nope"), True),
        (402, _error("billing_error", "pay up"), True),
        (
            400,
            _error("invalid_request_error", "Your credit balance is too low to access the API."),
            True,
        ),
        (400, _error("invalid_request_error", "messages: field required"), False),
        (413, _error("request_too_large", "too big"), False),
        (422, b"", False),
    ],
)
def test_retryable(status: int, payload: bytes, retry: bool) -> None:
    assert wire().retryable(status, payload) is retry
