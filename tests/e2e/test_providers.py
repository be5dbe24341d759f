"""Every backend wire format behind the OpenAI door, and the Anthropic door in front.

Clients are the official SDKs; backends are the simulators speaking each provider's wire
format over real sockets. The gateway translates both ways.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import trio
from anthropic.types import Message

from tests.e2e.harness import Stack, start_stack

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
WIRES = ["openai", "ollama", "anthropic", "gemini"]
STREAMS = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


async def stack_with(nursery: trio.Nursery, tmp_path: Path, wire: str) -> Stack:
    # The "local" backend (models "small" and "medium") speaks the wire under test.
    return await start_stack(nursery, tmp_path, wires={"local": wire})


@pytest.mark.parametrize("wire", WIRES)
async def test_text_stream_and_non_stream(nursery: trio.Nursery, tmp_path: Path, wire: str) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    client = stack.client()
    messages: Any = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    completion = await client.chat.completions.create(model="small", messages=messages)
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    stream = await client.chat.completions.create(
        model="small", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: hello there"
    assert any(c.usage is not None for c in chunks)
    rows = await stack.rows()
    assert [(r.backend, r.status, r.usage_estimated) for r in rows] == [("local", 200, False)] * 2


@pytest.mark.parametrize("wire", WIRES)
async def test_streamed_tool_calls(nursery: trio.Nursery, tmp_path: Path, wire: str) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    stack.sim("local").set_knobs(tool_call=True)
    client = stack.client()
    stream = await client.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "weather in Oslo?"}],
        tools=TOOLS,
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    async for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or ():
                call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                if delta.function and delta.function.name:
                    call["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
    assert finish == "tool_calls"
    assert [c["name"] for c in calls.values()] == ["get_weather"]
    assert "city" in json.loads(calls[0]["arguments"])
    whole = await client.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "weather in Oslo?"}], tools=TOOLS
    )
    (call,) = whole.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"


@STREAMS
@pytest.mark.parametrize("wire", WIRES)
async def test_images_reach_the_backend(
    nursery: trio.Nursery, tmp_path: Path, wire: str, stream: bool
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": PIXEL}},
    ]
    client = stack.client()
    messages: Any = [{"role": "user", "content": content}]
    if stream:
        chunks = await client.chat.completions.create(model="small", messages=messages, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    else:
        completion = await client.chat.completions.create(model="small", messages=messages)
        text = completion.choices[0].message.content or ""
    assert text == "echo: what is this?"
    assert_image_sent(backend_saw(stack, wire, stream=stream))


def backend_saw(stack: Stack, wire: str, *, stream: bool) -> str:
    """The body the "local" backend last received, as JSON text, after checking that it
    came on the wire's own route for model "small", streamed exactly when asked."""
    seen = stack.sim("local").last_request()
    assert seen is not None and seen.method == "POST" and seen.model == "small"
    if wire == "gemini":
        method = "streamGenerateContent" if stream else "generateContent"
        assert seen.path == f"/v1beta/models/small:{method}"
    else:
        assert seen.path == ("/v1/messages" if wire == "anthropic" else "/v1/chat/completions")
        assert seen.body.get("stream", False) is stream
    return json.dumps(seen.body)


def assert_image_sent(body: str) -> None:
    assert PIXEL.split(",", 1)[1] in body and "image/png" in body


# -- the Anthropic door: the official anthropic SDK against /v1/messages ------------------

ANTHROPIC_TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": TOOLS[0]["function"]["parameters"],
    }
]
ANTHROPIC_IMAGE: Any = {
    "type": "image",
    "source": {"type": "base64", "media_type": "image/png", "data": PIXEL.split(",", 1)[1]},
}


def anthropic_client(stack: Stack) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=stack.url, api_key="test", max_retries=0)


async def ask_messages(stack: Stack, *, stream: bool, **request: Any) -> Message:
    """One /v1/messages call with model "small"; streamed ones must stream events in order."""
    client = anthropic_client(stack)
    if not stream:
        return await client.messages.create(model="small", max_tokens=100, **request)
    async with client.messages.stream(model="small", max_tokens=100, **request) as events:
        seen = [event async for event in events]
        final = await events.get_final_message()
    kinds = [event.type for event in seen]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    # Clients size their context from message_start: it carries the prompt's estimate.
    assert seen[0].type == "message_start" and seen[0].message.usage.input_tokens > 0
    assert "content_block_start" in kinds and "content_block_delta" in kinds
    assert kinds.index("content_block_stop") < kinds.index("message_delta")
    return final


@STREAMS
@pytest.mark.parametrize("wire", WIRES)
async def test_anthropic_sdk_through_the_messages_door(
    nursery: trio.Nursery, tmp_path: Path, wire: str, stream: bool
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    message = await ask_messages(
        stack,
        stream=stream,
        system="be brief",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [
        ("text", "echo: hello there")
    ]
    assert message.stop_reason == "end_turn" and message.model == "small"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    body = backend_saw(stack, wire, stream=stream)
    assert "be brief" in body and "hello there" in body
    rows = await stack.rows()
    assert [(r.backend, r.chosen_model, r.status, r.stream, r.usage_estimated) for r in rows] == [
        ("local", "small", 200, stream, False)
    ]


@STREAMS
@pytest.mark.parametrize("wire", WIRES)
async def test_anthropic_sdk_tool_use_through_the_messages_door(
    nursery: trio.Nursery, tmp_path: Path, wire: str, stream: bool
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    stack.sim("local").set_knobs(tool_call=True)
    message = await ask_messages(
        stack,
        stream=stream,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "weather in Oslo?"}],
    )
    (block,) = message.content
    assert block.type == "tool_use" and block.id
    assert block.name == "get_weather" and block.input == {"city": "sample"}
    assert message.stop_reason == "tool_use"
    body = backend_saw(stack, wire, stream=stream)
    assert "get_weather" in body and "Weather for a city" in body and "weather in Oslo?" in body


@STREAMS
@pytest.mark.parametrize("wire", WIRES)
async def test_anthropic_sdk_images_reach_the_backend(
    nursery: trio.Nursery, tmp_path: Path, wire: str, stream: bool
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    content: Any = [{"type": "text", "text": "what is this?"}, ANTHROPIC_IMAGE]
    message = await ask_messages(
        stack, stream=stream, messages=[{"role": "user", "content": content}]
    )
    (block,) = message.content
    assert block.type == "text" and block.text == "echo: what is this?"
    assert message.stop_reason == "end_turn"
    assert_image_sent(backend_saw(stack, wire, stream=stream))


async def test_anthropic_door_errors_are_anthropic_shaped(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    client = anthropic_client(stack)
    with pytest.raises(anthropic.NotFoundError) as err:
        await client.messages.create(
            model="nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.body["type"] == "error"  # type: ignore[index]
    async with stack.http() as http:
        bad = await http.post("/v1/messages", json={"model": "small", "messages": []})
        wrong_method = await http.get("/v1/messages")
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    # Routing's own refusals answer in the door's dialect too.
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "error"
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("wire", ["anthropic", "gemini"])
async def test_provider_errors_fail_over(nursery: trio.Nursery, tmp_path: Path, wire: str) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    stack.sim("local").set_knobs("small", error_status=529 if wire == "anthropic" else 503)
    completion = await stack.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello there"}]
    )
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.model in {"medium", "models/medium"} or completion.model.endswith("medium")


async def test_an_anthropic_error_event_before_any_content_fails_over(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "anthropic")
    stack.sim("local").set_knobs("small", stream_error_after=0)  # right after message_start
    stream = await stack.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello there"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "echo: hello there"
    )
    assert {c.model for c in chunks} == {"medium"}
    (row,) = await stack.rows()
    assert (row.chosen_model, row.status) == ("medium", 200)


async def test_an_anthropic_error_event_after_content_ends_the_stream_unspliced(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "anthropic")
    # Paced, so the first chunk reaches the client before the error does.
    stack.sim("local").set_knobs("small", stream_error_after=2, tokens_per_s=50)
    stream = await stack.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello there"}], stream=True
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        async for chunk in stream:
            seen += [c.delta.content or "" for c in chunk.choices]
    assert "".join(seen) and "echo: hello there".startswith("".join(seen))
    with trio.fail_after(5):  # the row is written as the stream ends, after the error event
        await stack.gw.drained()
    (row,) = await stack.rows()
    assert row.chosen_model == "small" and row.status == 502 and "Overloaded" in (row.error or "")
