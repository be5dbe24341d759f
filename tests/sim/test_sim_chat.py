"""Chat completions through the official OpenAI SDK: the wire format must parse."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
import trio

from llmswitch.sim import SimBackend
from tests.providers.samples import CLOCK_TOOL, USER, weather_schema, weather_tool

WEATHER_TOOL = weather_tool(weather_schema())


async def test_non_stream_echoes_last_user_message(client: openai.AsyncOpenAI) -> None:
    messages: Any = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    out = await client.chat.completions.create(model="qwen-small", messages=messages)

    assert out.object == "chat.completion"
    assert out.id.startswith("chatcmpl-")
    assert out.model == "qwen-small"
    assert len(out.choices) == 1
    choice = out.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: second question"
    assert choice.message.tool_calls is None
    assert out.usage is not None
    # 4 messages x 3 overhead + 2 + 2 + 2 + 2 words; reply "echo:", " second", " question".
    assert out.usage.prompt_tokens == 20
    assert out.usage.completion_tokens == 3
    assert out.usage.total_tokens == 23


async def test_canned_reply_and_max_tokens(sim: SimBackend, client: openai.AsyncOpenAI) -> None:
    sim.set_knobs("big-model", reply="one two three four five")

    full = await client.chat.completions.create(model="big-model", messages=USER)
    short = await client.chat.completions.create(model="big-model", messages=USER, max_tokens=2)
    other = await client.chat.completions.create(model="qwen-small", messages=USER)

    assert full.choices[0].message.content == "one two three four five"
    assert short.choices[0].message.content == "one two"
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 2
    assert other.choices[0].message.content == "echo: hello brave new world"


async def test_stream_one_word_per_delta_with_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="qwen-small",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    deltas = [c.choices[0].delta.content for c in middle]
    assert deltas == ["echo:", " hello", " brave", " new", " world"]
    assert all(c.choices[0].finish_reason is None for c in [first, *middle])
    assert all(c.usage is None for c in [first, *middle, finish])
    assert finish.choices[0].finish_reason == "stop"
    assert usage.choices == []
    assert usage.usage is not None
    assert usage.usage.prompt_tokens == 7
    assert usage.usage.completion_tokens == 5
    assert usage.usage.total_tokens == 12

    # Stream and non-stream give the same text.
    whole = await client.chat.completions.create(model="qwen-small", messages=USER)
    assert "".join(d or "" for d in deltas) == whole.choices[0].message.content


async def test_stream_without_include_usage_has_no_usage_chunk(
    client: openai.AsyncOpenAI,
) -> None:
    stream = await client.chat.completions.create(model="qwen-small", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


async def test_stream_ends_with_done_on_the_wire(running: Any, http: Any) -> None:
    body = {"model": "qwen-small", "messages": USER, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join([piece async for piece in response.aiter_bytes()])

    events = raw.split(b"\n\n")
    assert events[-1] == b""
    assert events[-2] == b"data: [DONE]"
    assert all(event.startswith(b"data: {") for event in events[:-2])


async def test_tool_call_stream_parsed_by_sdk_helper(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs("qwen-small", tool_call=True)

    async with client.chat.completions.stream(
        model="qwen-small", messages=USER, tools=[WEATHER_TOOL, CLOCK_TOOL]
    ) as stream:
        async for _event in stream:
            pass
        final = await stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id.startswith("call_")
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "sample", "unit": "celsius"}


async def test_tool_call_raw_deltas(sim: SimBackend, client: openai.AsyncOpenAI) -> None:
    sim.set_knobs(tool_call=True)
    stream = await client.chat.completions.create(
        model="big-model",
        messages=USER,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        stream=True,
    )
    chunks = [chunk async for chunk in stream]

    deltas = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    header, *fragments = deltas
    assert header.index == 0
    assert header.id is not None and header.type == "function"
    assert header.function is not None and header.function.name == "get_time"
    assert all(f.id is None and f.index == 0 for f in fragments)
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_tool_call_non_stream(sim: SimBackend, client: openai.AsyncOpenAI) -> None:
    sim.set_knobs("qwen-small", tool_call=True)

    out = await client.chat.completions.create(
        model="qwen-small", messages=USER, tools=[WEATHER_TOOL]
    )
    no_tools = await client.chat.completions.create(model="qwen-small", messages=USER)

    calls = out.choices[0].message.tool_calls
    assert out.choices[0].finish_reason == "tool_calls"
    assert calls is not None and calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments)["unit"] == "celsius"
    # Without tools in the request the knob falls back to text.
    assert no_tools.choices[0].message.content == "echo: hello brave new world"


async def test_ttft_and_pacing_are_lower_bounds(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs("qwen-small", ttft_s=0.1, tokens_per_s=50, reply="a b c d e f")
    start = trio.current_time()
    arrivals: list[float] = []
    stream = await client.chat.completions.create(model="qwen-small", messages=USER, stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(trio.current_time())

    assert len(arrivals) == 6
    assert arrivals[0] - start >= 0.1
    # Tokens are paced, not buffered: the last arrives >= 5/50 s after the first
    # (allowing half of that for a slow reader of the first chunk).
    assert arrivals[-1] - arrivals[0] >= 0.05
    assert arrivals[-1] - start >= 0.1 + 5 / 50


@pytest.mark.parametrize("tokens_per_s", [0, 1000])
async def test_paced_and_unpaced_streams_carry_the_same_events(
    sim: SimBackend, client: openai.AsyncOpenAI, tokens_per_s: float
) -> None:
    sim.set_knobs(tokens_per_s=tokens_per_s)
    texts = []
    for reply in ["", "x", "one two three"]:
        sim.set_knobs(reply=reply)
        stream = await client.chat.completions.create(
            model="qwen-small", messages=USER, stream=True
        )
        chunks = [chunk async for chunk in stream]
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert len(chunks) == 2 + len(reply.split())
        texts.append("".join(c.choices[0].delta.content or "" for c in chunks))
    assert texts == ["", "x", "one two three"]
