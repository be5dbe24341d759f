"""Every backend wire format behind the OpenAI door, and the Anthropic door in front.

Clients are the official SDKs; backends are the simulators speaking each provider's wire
format over real sockets. The gateway translates both ways.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
import trio

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


@pytest.mark.parametrize("wire", WIRES)
async def test_images_reach_the_backend(nursery: trio.Nursery, tmp_path: Path, wire: str) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": PIXEL}},
    ]
    completion = await stack.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": content}]
    )
    assert completion.choices[0].message.content
    seen = stack.sim("local").last_request()
    assert seen is not None and "iVBORw0KGgo" in json.dumps(seen.body)


async def test_anthropic_sdk_through_the_messages_door(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    client = anthropic.AsyncAnthropic(base_url=stack.url, api_key="test", max_retries=0)
    message = await client.messages.create(
        model="small",
        max_tokens=100,
        system="be brief",
        messages=[{"role": "user", "content": "hello there"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "echo: hello there"
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    async with client.messages.stream(
        model="auto", max_tokens=100, messages=[{"role": "user", "content": "hello there"}]
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "echo: hello there" and final.stop_reason == "end_turn"
    rows = await stack.rows()
    assert [r.status for r in rows] == [200, 200]


async def test_anthropic_sdk_tool_use_through_the_messages_door(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    stack.sim("local").set_knobs(tool_call=True)
    client = anthropic.AsyncAnthropic(base_url=stack.url, api_key="test", max_retries=0)
    tools: Any = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    async with client.messages.stream(
        model="small",
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "weather in Oslo?"}],
    ) as stream:
        final = await stream.get_final_message()
    (block,) = [b for b in final.content if b.type == "tool_use"]
    assert block.name == "get_weather" and "city" in block.input  # type: ignore[operator]
    assert final.stop_reason == "tool_use"


async def test_anthropic_door_errors_are_anthropic_shaped(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    client = anthropic.AsyncAnthropic(base_url=stack.url, api_key="test", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as err:
        await client.messages.create(
            model="nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.body["type"] == "error"  # type: ignore[index]
    async with stack.http() as http:
        bad = await http.post("/v1/messages", json={"model": "small", "messages": []})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("wire", ["anthropic", "gemini"])
async def test_provider_errors_fail_over(nursery: trio.Nursery, tmp_path: Path, wire: str) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    stack.sim("local").set_knobs("small", error_status=529 if wire == "anthropic" else 503)
    completion = await stack.client().chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello there"}]
    )
    assert completion.choices[0].message.content == "echo: hello there"
    assert completion.model in {"medium", "models/medium"} or completion.model.endswith("medium")
