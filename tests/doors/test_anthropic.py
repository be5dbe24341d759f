"""The Anthropic door's translators, checked against the official SDKs' own models.

Requests are translated and the result validated with the ``openai`` SDK's request types;
answers and streams are validated with the ``anthropic`` SDK's models, and finally the
``anthropic`` client itself is pointed at a mock transport serving our translations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pydantic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming

from llmswitch.doors.anthropic import (
    MessageStreamWriter,
    anthropic_error,
    messages_to_openai,
    openai_to_message,
)
from llmswitch.doors.common import DoorError
from llmswitch.doors.sse import DONE, OpenAISSEReader

try:  # the anthropic SDK moved from httpx to its fork httpx2; mock whichever it uses
    import httpx2 as http
except ImportError:  # pragma: no cover - older SDKs
    import httpx as http  # type: ignore[no-redef]

STREAM_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
OPENAI_REQUEST = pydantic.TypeAdapter(CompletionCreateParamsNonStreaming)
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


# -- helpers ----------------------------------------------------------------------------


def _consume(value: Any) -> Any:
    """pydantic validates ``Iterable`` fields lazily: walk them so every error surfaces."""
    if isinstance(value, dict):
        return {k: _consume(v) for k, v in value.items()}
    if isinstance(value, list | tuple | Iterator):
        return [_consume(v) for v in value]
    return value


def assert_openai_request(body: dict[str, Any]) -> None:
    """The body is a chat-completions request as the openai SDK types it."""
    plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    _consume(OPENAI_REQUEST.validate_python(plain))


def assert_no_extras(model: Any, where: str = "") -> None:
    """The SDK's models accept unknown keys silently; a misspelt field must fail here."""
    if isinstance(model, pydantic.BaseModel):
        assert not model.model_extra, f"unexpected fields at {where or 'top'}: {model.model_extra}"
        for name in type(model).model_fields:
            assert_no_extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            assert_no_extras(item, f"{where}[{i}]")


def gateway_client(handler: Any) -> anthropic.Anthropic:
    """The official client, its requests answered by *handler* instead of a gateway."""
    return anthropic.Anthropic(
        api_key="unused",
        base_url="http://gateway.test",
        http_client=http.Client(transport=http.MockTransport(handler)),
        max_retries=0,
    )


def request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
    }
    body.update(overrides)
    return body


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of Anthropic SSE bytes, checking the framing."""
    assert raw.endswith(b"\n\n")
    out = []
    for block in raw.decode().split("\n\n")[:-1]:
        lines = block.split("\n")
        assert len(lines) == 2, block
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        out.append((lines[0][7:], json.loads(lines[1][6:])))
    return out


def validated(events: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Each event through the SDK's RawMessageStreamEvent, its name matching its type."""
    models = []
    for name, data in events:
        assert name == data["type"]
        if name in ("ping", "error"):
            continue
        model = STREAM_EVENT.validate_python(data)
        assert_no_extras(model, name)
        models.append(model)
    return models


def accumulate(models: list[Any]) -> dict[str, Any]:
    """Rebuilds a message from stream events, checking Anthropic's ordering rules."""
    assert models[0].type == "message_start" and models[-1].type == "message_stop"
    assert [m.type for m in models].count("message_start") == 1
    message = models[0].message
    assert message.content == [] and message.stop_reason is None
    blocks: list[dict[str, Any]] = []
    open_index: int | None = None
    stop_reason = None
    usage: dict[str, Any] = {}
    for m in models[1:-1]:
        if m.type == "content_block_start":
            assert open_index is None, "a block started while another was open"
            assert m.index == len(blocks), "block indexes must count up from 0"
            open_index = m.index
            start = m.content_block
            if start.type == "text":
                blocks.append({"type": "text", "text": start.text})
            else:
                assert start.type == "tool_use" and start.input == {}
                blocks.append({"type": "tool_use", "id": start.id, "name": start.name, "json": ""})
        elif m.type == "content_block_delta":
            assert m.index == open_index
            block = blocks[m.index]
            if m.delta.type == "text_delta":
                assert block["type"] == "text"
                block["text"] += m.delta.text
            else:
                assert m.delta.type == "input_json_delta" and block["type"] == "tool_use"
                block["json"] += m.delta.partial_json
        elif m.type == "content_block_stop":
            assert m.index == open_index
            open_index = None
        else:
            assert m.type == "message_delta"
            assert open_index is None, "message_delta while a block is open"
            stop_reason = m.delta.stop_reason
            usage = m.usage.model_dump(exclude_none=True)
    for block in blocks:
        if block["type"] == "tool_use":
            block["input"] = json.loads(block.pop("json"))
    return {"content": blocks, "stop_reason": stop_reason, "usage": usage, "id": message.id}


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices: list[dict[str, Any]] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    data = {
        "id": "chatcmpl-abc123",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "qwen2.5-coder:14b",
        "choices": choices,
        **extra,
    }
    ChatCompletionChunk.model_validate(data)  # the fixture is a real OpenAI chunk
    return data


def tool_delta(
    index: int, args: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if call_id is not None:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


WEATHER_ARGS = {"city": "Paris", "units": "celsius"}
TIME_ARGS = {"tz": "Europe/Paris"}


def realistic_chunks() -> list[dict[str, Any]]:
    """What vLLM or OpenAI stream: text, two tool calls in fragments, finish, then usage."""
    weather = json.dumps(WEATHER_ARGS)
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "check — ☀️."}),
        chunk(tool_delta(0, "", "call_Wx1", "get_weather")),
        *(chunk(tool_delta(0, weather[i : i + 7])) for i in range(0, len(weather), 7)),
        chunk(tool_delta(1, '{"tz": ', "call_Tm2", "get_time")),
        chunk(tool_delta(1, '"Europe/Paris"}')),
        chunk({}, finish="tool_calls"),
        chunk(
            None,
            usage={
                "prompt_tokens": 120,
                "completion_tokens": 42,
                "total_tokens": 162,
                "prompt_tokens_details": {"cached_tokens": 20},
            },
        ),
    ]


def stream_of(chunks: list[dict[str, Any]], **kwargs: Any) -> bytes:
    writer = MessageStreamWriter("auto", **kwargs)
    return b"".join(writer.feed(c) for c in chunks) + writer.finish()


def openai_sse(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + (
        b"data: [DONE]\n\n"
    )


# -- request translation --------------------------------------------------------------


def test_minimal_request_passes_model_and_max_tokens_through() -> None:
    out = messages_to_openai(request(model="claude-sonnet-4-5"))
    assert out == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert_openai_request(out)


def test_system_string_and_blocks_become_one_system_message() -> None:
    out = messages_to_openai(request(system="Be terse."))
    assert out["messages"][0] == {"role": "system", "content": "Be terse."}
    blocks = [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "Repo: llmswitch", "cache_control": {"type": "ephemeral"}},
    ]
    out = messages_to_openai(request(system=blocks))
    assert out["messages"][0] == {
        "role": "system",
        "content": "You are a coding agent.\n\nRepo: llmswitch",
    }
    assert [m["role"] for m in messages_to_openai(request(system=""))["messages"]] == ["user"]
    assert_openai_request(out)


def test_system_messages_anywhere_join_the_system_prompt() -> None:
    """Claude Code's default: a ``role: "system"`` message after the first user turn."""
    out = messages_to_openai(
        request(
            system="Identity.",
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "system", "content": [{"type": "text", "text": "Env: linux"}]},
                {"role": "assistant", "content": "hello"},
                {"role": "system", "content": "Date: today"},
                {"role": "user", "content": "go"},
            ],
        )
    )
    assert out["messages"] == [
        {"role": "system", "content": "Identity.\n\nEnv: linux\n\nDate: today"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "go"},
    ]
    assert_openai_request(out)


def test_output_format_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    config = {"effort": "low", "format": {"type": "json_schema", "schema": schema}}
    out = messages_to_openai(request(output_config=config))
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert_openai_request(out)


def test_text_blocks_and_images() -> None:
    content = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    out = messages_to_openai(request(messages=[{"role": "user", "content": content}]))
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]
    assert_openai_request(out)
    one_block = [{"type": "text", "text": "just text", "cache_control": {"type": "ephemeral"}}]
    out = messages_to_openai(request(messages=[{"role": "user", "content": one_block}]))
    assert out["messages"] == [{"role": "user", "content": "just text"}]


def test_documents() -> None:
    content = [
        {
            "type": "document",
            "title": "notes",
            "source": {"type": "text", "media_type": "text/plain", "data": "a note"},
        },
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
        {"type": "text", "text": "Summarise."},
    ]
    out = messages_to_openai(request(messages=[{"role": "user", "content": content}]))
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "notes\n\na note"},
        {
            "type": "file",
            "file": {
                "filename": "document.pdf",
                "file_data": "data:application/pdf;base64,JVBERi0=",
            },
        },
        {"type": "text", "text": "Summarise."},
    ]
    assert_openai_request(out)


TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "cache_control": {"type": "ephemeral"},
    },
    {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
]


def tool_conversation() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "two calls", "signature": "sig=="},
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_02",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Here you go:"},
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "timeout"},
                        {"type": "text", "text": "retry later"},
                    ],
                },
            ],
        },
    ]


def test_tool_use_and_tool_result_round_trip() -> None:
    out = messages_to_openai(request(messages=tool_conversation(), tools=TOOLS))
    user, assistant, paris, oslo, rest = out["messages"]
    assert user == {"role": "user", "content": "Weather in Paris and Oslo?"}
    assert assistant["role"] == "assistant" and assistant["content"] == "Checking both."
    calls = assistant["tool_calls"]
    assert [(c["id"], c["type"], c["function"]["name"]) for c in calls] == [
        ("toolu_01", "function", "get_weather"),
        ("toolu_02", "function", "get_weather"),
    ]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Oslo"},
    ]
    # tool results first, then the rest of that user turn
    assert paris == {"role": "tool", "tool_call_id": "toolu_01", "content": "18°C, sunny"}
    assert oslo == {
        "role": "tool",
        "tool_call_id": "toolu_02",
        "content": "Error: timeout\n\nretry later",
    }
    assert rest == {"role": "user", "content": "Here you go:"}
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": TOOLS[0]["input_schema"],
            },
        },
        {"type": "function", "function": {"name": "noop", "parameters": TOOLS[1]["input_schema"]}},
    ]
    assert_openai_request(out)


def test_tool_only_turns_and_tool_result_images() -> None:
    messages = [
        {"role": "user", "content": "screenshot please"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "shot", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_9",
                    "content": [
                        {"type": "text", "text": "captured"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                    ],
                },
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9"}]},
    ]
    out = messages_to_openai(request(messages=messages))
    _, assistant, tool, images, bare = out["messages"]
    assert assistant["content"] is None
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {}
    assert tool == {"role": "tool", "tool_call_id": "toolu_9", "content": "captured"}
    assert images["role"] == "user"
    assert images["content"][0] == {"type": "text", "text": "(image from tool result toolu_9)"}
    assert images["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert bare == {"role": "tool", "tool_call_id": "toolu_9", "content": ""}
    assert_openai_request(out)


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        (
            {"type": "tool", "name": "noop"},
            {"type": "function", "function": {"name": "noop"}},
            None,
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
        ({"type": "any", "disable_parallel_tool_use": False}, "required", None),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    out = messages_to_openai(request(tools=TOOLS, tool_choice=choice))
    assert out["tool_choice"] == expected
    assert out.get("parallel_tool_calls") is parallel
    assert_openai_request(out)


def test_tool_choice_without_tools_is_dropped() -> None:
    out = messages_to_openai(request(tool_choice={"type": "any"}, tools=[]))
    assert "tool_choice" not in out and "tools" not in out


def test_sampling_stop_stream_and_user() -> None:
    out = messages_to_openai(
        request(
            stop_sequences=["\n\nHuman:", "END"],
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            metadata={"user_id": "u-42"},
            stream=True,
        )
    )
    assert out["stop"] == ["\n\nHuman:", "END"]
    assert (out["temperature"], out["top_p"], out["user"]) == (0.2, 0.9, "u-42")
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert "top_k" not in out and "metadata" not in out
    assert_openai_request(out)
    plain = messages_to_openai(request(stream=False, stop_sequences=[]))
    assert "stream" not in plain and "stream_options" not in plain and "stop" not in plain


@pytest.mark.parametrize(
    ("thinking", "carried"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, {"type": "enabled", "budget_tokens": 1024}),
        ({"type": "adaptive"}, {"type": "adaptive"}),
        ({"type": "disabled"}, None),
    ],
)
def test_thinking_is_carried_as_given(thinking: Any, carried: Any) -> None:
    out = messages_to_openai(request(max_tokens=4096, thinking=thinking))
    assert out.get("thinking") == carried


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"messages": None}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"messages": [{"role": "developer", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "system", "content": 7}]}, "messages[0].content"),
        ({"thinking": {"type": "on"}}, "thinking.type"),
        ({"thinking": "enabled"}, "thinking.type"),
        ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "thinking.budget_tokens"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format.type"),
        ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "user", "content": [{"text": "no type"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": "x"}],
                    }
                ]
            },
            "messages[0].content[0].input",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source.type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "video"}],
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].content[0].type",
        ),
        ({"system": [{"type": "image"}]}, "system[0].type"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({"tools": TOOLS, "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"tools": TOOLS, "tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"temperature": "hot"}, "temperature"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_malformed_requests_name_the_field(change: dict[str, Any], param: str) -> None:
    body = request(**change)
    if change.get("max_tokens", 1) is None:
        del body["max_tokens"]
    with pytest.raises(DoorError) as info:
        messages_to_openai(body)
    assert info.value.param == param
    assert info.value.status == 400
    body = anthropic_error(info.value.status, info.value.message)
    err = anthropic.types.shared.ErrorResponse.model_validate(body)
    assert err.error.type == "invalid_request_error"
    assert err.error.message == str(info.value) and param in err.error.message


def test_request_built_by_the_anthropic_sdk() -> None:
    """The body the real client sends for a typed tool conversation translates cleanly."""
    seen: list[dict[str, Any]] = []

    def handler(req: Any) -> Any:
        body = json.loads(req.content)
        seen.append(messages_to_openai(body))
        completion = {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "ok"},
                }
            ],
        }
        return http.Response(200, json=openai_to_message(completion, body["model"]))

    client = gateway_client(handler)
    params: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": tool_conversation(),
        "tools": TOOLS,
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "u-1"},
        "stop_sequences": ["STOP"],
        "extra_body": {"temperature": 0.5},  # this SDK's create() has no sampling params
    }
    answer = client.messages.create(**params)
    assert answer.content[0].type == "text" and answer.model == "auto"
    (out,) = seen
    assert [m["role"] for m in out["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "user",
    ]
    assert (out["user"], out["stop"], out["tool_choice"]) == ("u-1", ["STOP"], "auto")
    assert out["temperature"] == 0.5
    assert_openai_request(out)


# -- completion -> message ------------------------------------------------------------


def completion(
    message: dict[str, Any], finish: str | None = "stop", **extra: Any
) -> dict[str, Any]:
    data = {
        "id": "chatcmpl-9z.x",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "qwen2.5:7b",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        **extra,
    }
    if finish is not None:
        ChatCompletion.model_validate(data)
    return data


def as_message(data: dict[str, Any]) -> anthropic.types.Message:
    message = anthropic.types.Message.model_validate(data)
    assert_no_extras(message)
    return message


def test_text_completion_becomes_a_message() -> None:
    data = completion(
        {"role": "assistant", "content": "Hello!"},
        usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    )
    out = openai_to_message(data, "auto")
    message = as_message(out)
    assert out["id"] == "msg_chatcmpl-9z_x"
    assert message.model == "auto" and message.role == "assistant"
    assert [b.model_dump(exclude_none=True) for b in message.content] == [
        {"type": "text", "text": "Hello!"}
    ]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (11, 3)


def test_tool_calls_become_tool_use_blocks() -> None:
    data = completion(
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {
                    "id": "call_A1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call:B/2",
                    "type": "function",
                    "function": {"name": "noop", "arguments": "{not json"},
                },
                {"id": "", "type": "function", "function": {"name": "noop", "arguments": "[1]"}},
            ],
        },
        finish="tool_calls",
        usage={
            "prompt_tokens": 50,
            "completion_tokens": 9,
            "total_tokens": 59,
            "prompt_tokens_details": {"cached_tokens": 30},
        },
    )
    message = as_message(openai_to_message(data, "coder"))
    text, first, second, third = message.content
    assert text.type == "text" and text.text == "Calling."
    assert first.type == "tool_use" and (first.id, first.name, first.input) == (
        "call_A1",
        "get_weather",
        {"city": "Paris"},
    )
    assert second.type == "tool_use" and (second.id, second.input) == ("call_B_2", {})
    assert third.type == "tool_use" and third.id.startswith("toolu_") and third.input == {}
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 20 and message.usage.cache_read_input_tokens == 30


@pytest.mark.parametrize(
    ("finish", "with_tool", "expected"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("stop", True, "tool_use"),  # Ollama reports tool calls with "stop"
        ("tool_calls", False, "end_turn"),  # no call to act on
        ("length", True, "max_tokens"),
        ("content_filter", False, "refusal"),
        ("function_call", True, "tool_use"),
        (None, False, "end_turn"),
    ],
)
def test_stop_reasons(finish: str | None, with_tool: bool, expected: str) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": "x"}
    if with_tool:
        message["tool_calls"] = [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    out = openai_to_message(completion(message, finish=finish), "m")
    assert as_message(out).stop_reason == expected


def test_empty_or_odd_completions_still_make_valid_messages() -> None:
    cases: list[dict[str, Any]] = [
        {"choices": []},
        {},
        completion({"role": "assistant", "content": None, "refusal": "I can't help."}),
        completion({"role": "assistant", "content": ""}),
    ]
    for data in cases:
        message = as_message(openai_to_message(data, "m"))
        assert message.id.startswith("msg_")
        assert message.usage.input_tokens == 0 and message.usage.output_tokens == 0
    refusal = openai_to_message(
        completion({"role": "assistant", "content": None, "refusal": "I can't help."}), "m"
    )
    assert refusal["content"] == [{"type": "text", "text": "I can't help."}]
    assert openai_to_message({"choices": []}, "m")["content"] == []


# -- streams --------------------------------------------------------------------------


def test_realistic_stream_validates_and_accumulates() -> None:
    raw = stream_of(realistic_chunks(), message_id="msg_fixed", input_tokens=100)
    events = parse_sse(raw)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["id"] == "msg_fixed" and start["model"] == "auto"
    assert start["usage"] == {"input_tokens": 100, "output_tokens": 0}
    result = accumulate(validated(events))
    assert result["content"] == [
        {"type": "text", "text": "Let me check — ☀️."},
        {"type": "tool_use", "id": "call_Wx1", "name": "get_weather", "input": WEATHER_ARGS},
        {"type": "tool_use", "id": "call_Tm2", "name": "get_time", "input": TIME_ARGS},
    ]
    assert result["stop_reason"] == "tool_use"
    # the usage chunk came after the finish chunk and still made it into message_delta
    assert result["usage"] == {
        "input_tokens": 100,
        "output_tokens": 42,
        "cache_read_input_tokens": 20,
    }
    # the weather arguments arrived in several fragments and were streamed as such
    fragments = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["index"] == 1
    ]
    assert len(fragments) > 3 and "".join(fragments) == json.dumps(WEATHER_ARGS)


def test_nothing_is_emitted_before_finish_for_a_trailing_usage_chunk() -> None:
    writer = MessageStreamWriter("auto", message_id="msg_1")
    chunks = realistic_chunks()
    for c in chunks[:-2]:
        writer.feed(c)
    assert writer.feed(chunks[-2]) == b""  # the finish-reason chunk: wait for usage
    assert writer.feed(chunks[-1]) == b""  # the usage chunk
    tail = [name for name, _ in parse_sse(writer.finish())]
    assert tail == ["content_block_stop", "message_delta", "message_stop"]
    assert (writer.input_tokens, writer.output_tokens, writer.usage_estimated) == (100, 42, False)
    assert writer.finish() == b"" and writer.feed(chunks[0]) == b"" and writer.closed


def test_raw_bytes_split_anywhere_give_the_same_events() -> None:
    chunks = realistic_chunks()
    expected = stream_of(chunks, message_id="msg_1")
    raw = openai_sse(chunks).replace(b"\n", b"\r\n")
    for size in (1, 3, 17, 4096):
        writer = MessageStreamWriter("auto", message_id="msg_1")
        out = b"".join(writer.feed_sse(raw[i : i + size]) for i in range(0, len(raw), size))
        assert out == expected, size


def test_the_anthropic_client_reads_our_stream() -> None:
    """End to end through the official client: its own SSE decoder and accumulator."""

    def handler(req: Any) -> Any:
        body = messages_to_openai(json.loads(req.content))
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        writer = MessageStreamWriter(body["model"])
        sse = writer.feed_sse(openai_sse(realistic_chunks()))
        return http.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    client = gateway_client(handler)
    with client.messages.stream(
        model="auto",
        max_tokens=300,
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]  # TOOLS is a plain list of dicts
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Let me check — ☀️."
    assert_no_extras(final)
    assert final.id == "msg_chatcmpl-abc123" and final.stop_reason == "tool_use"
    tools = [b for b in final.content if b.type == "tool_use"]
    assert [(t.name, t.input) for t in tools] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (100, 42)


def test_text_after_a_tool_call_and_whole_tool_calls_in_one_chunk() -> None:
    """Ollama sends each call whole, several in one chunk, and finishes with "stop"."""
    calls = [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "noop", "arguments": "{}"},
        },
        {
            "index": 1,
            "id": "call_2",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
    ]
    chunks = [
        chunk({"role": "assistant", "tool_calls": calls}),
        chunk({"content": "Done."}),
        chunk({}, finish="stop"),
    ]
    result = accumulate(validated(parse_sse(stream_of(chunks))))
    assert [b["type"] for b in result["content"]] == ["tool_use", "tool_use", "text"]
    assert result["content"][1]["input"] == {"city": "Oslo"}
    assert result["content"][2]["text"] == "Done."
    assert result["stop_reason"] == "tool_use"


def test_tool_call_without_arguments_gets_an_empty_object() -> None:
    chunks = [chunk(tool_delta(0, "", "call_x", "noop")), chunk({}, finish="tool_calls")]
    result = accumulate(validated(parse_sse(stream_of(chunks))))
    assert result["content"] == [{"type": "tool_use", "id": "call_x", "name": "noop", "input": {}}]


def test_arguments_before_the_name_wait_for_it() -> None:
    chunks = [
        chunk({"tool_calls": [{"index": 0, "id": "call_q", "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}),
        chunk({}, finish="tool_calls"),
    ]
    result = accumulate(validated(parse_sse(stream_of(chunks))))
    assert result["content"] == [
        {"type": "tool_use", "id": "call_q", "name": "f", "input": {"a": 1}}
    ]


def test_interleaved_fragments_for_a_closed_block_are_counted_not_sent() -> None:
    chunks = [
        chunk(tool_delta(0, '{"x":', "call_a", "f")),
        chunk(tool_delta(1, '{"y":2}', "call_b", "g")),
        chunk(tool_delta(0, "1}")),
        chunk({}, finish="tool_calls"),
    ]
    writer = MessageStreamWriter("m")
    raw = b"".join(writer.feed(c) for c in chunks) + writer.finish()
    validated(parse_sse(raw))  # still a well-formed stream
    assert writer.late_fragments == 1


def test_stream_without_usage_estimates_output_tokens() -> None:
    chunks = [chunk({"content": "x" * 40}), chunk({}, finish="length")]
    writer = MessageStreamWriter("m")
    raw = b"".join(writer.feed(c) for c in chunks) + writer.finish()
    result = accumulate(validated(parse_sse(raw)))
    assert result["stop_reason"] == "max_tokens"
    assert result["usage"] == {"output_tokens": 10}
    assert writer.usage_estimated and writer.output_tokens == 10


def test_empty_upstream_stream_is_still_a_valid_message() -> None:
    writer = MessageStreamWriter("m")
    events = parse_sse(writer.feed_sse(b"data: [DONE]\n\n"))
    result = accumulate(validated(events))
    assert result["content"] == [] and result["stop_reason"] == "end_turn"
    assert result["id"].startswith("msg_")


def test_error_event_mid_stream() -> None:
    writer = MessageStreamWriter("m", message_id="msg_e")
    head = writer.feed(chunk({"content": "partial"}))
    tail = writer.error("upstream died", "overloaded_error")
    events = parse_sse(head + tail)
    assert events[-1] == (
        "error",
        {"type": "error", "error": {"type": "overloaded_error", "message": "upstream died"}},
    )
    anthropic.types.shared.ErrorResponse.model_validate(events[-1][1])
    assert writer.finish() == b"" and writer.error("again") == b"" and writer.ping() == b""


def test_openai_error_event_from_the_relay_becomes_an_anthropic_error() -> None:
    writer = MessageStreamWriter("m")
    writer.feed(chunk({"content": "partial"}))
    relay_error = {
        "error": {"message": "stream cut", "type": "upstream_error", "param": None, "code": None}
    }
    ((name, data),) = parse_sse(writer.feed(relay_error))
    assert name == "error" and data["error"] == {"type": "api_error", "message": "stream cut"}


def test_the_anthropic_client_raises_on_an_error_event() -> None:
    def handler(req: Any) -> Any:
        writer = MessageStreamWriter("m")
        sse = writer.feed(chunk({"content": "partial"})) + writer.error("boom", "api_error")
        return http.Response(200, content=sse, headers={"content-type": "text/event-stream"})

    client = gateway_client(handler)
    stream = client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}], stream=True
    )
    with pytest.raises(anthropic.APIStatusError, match="boom"):
        for _ in stream:
            pass


def test_ping() -> None:
    assert parse_sse(MessageStreamWriter("m").ping()) == [("ping", {"type": "ping"})]


# -- the OpenAI SSE reader -------------------------------------------------------------


def test_reader_handles_partial_events_comments_and_done() -> None:
    reader = OpenAISSEReader()
    assert reader.feed(b": keep-alive\n\nda") == []
    assert reader.feed(b'ta: {"a": 1}\n') == []
    assert reader.feed(b"\ndata: [DO") == [{"a": 1}]
    assert reader.feed(b"NE]\n\n") == [DONE]


def test_reader_joins_multiline_data_and_skips_junk() -> None:
    reader = OpenAISSEReader()
    raw = (
        b'event: chunk\ndata: {"a":\ndata: 2}\n\n'
        b"data: not json\n\ndata: [1]\n\n"
        b'data:{"b":3}\r\n\r\n'
    )
    assert reader.feed(raw) == [{"a": 2}, {"b": 3}]
    assert reader.skipped == 2


def test_reader_close_parses_an_unterminated_last_event() -> None:
    reader = OpenAISSEReader()
    assert reader.feed(b'data: {"a": 1}\n\ndata: [DONE]') == [{"a": 1}]
    assert reader.close() == [DONE]
    assert reader.close() == []


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "type_"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "conflict_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (599, "api_error"),
    ],
)
def test_anthropic_error_types(status: int, type_: str) -> None:
    body = anthropic_error(status, "nope")
    assert body == {"type": "error", "error": {"type": type_, "message": "nope"}}
    if type_ not in ("request_too_large", "conflict_error"):  # documented, not in the SDK
        err = anthropic.types.shared.ErrorResponse.model_validate(body)
        assert err.error.type == type_
    with_id = anthropic_error(status, "nope", request_id="req_1")
    assert with_id["request_id"] == "req_1"
