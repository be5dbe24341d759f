"""The Responses door: the openai SDK's ``responses`` against every backend wire format.

``responses.create`` and ``responses.stream`` go through the real gateway to simulators
speaking OpenAI, Ollama, Anthropic and Gemini over loopback sockets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import trio
from openai.types.responses import Response

from tests.e2e.harness import Stack, model, start_stack
from tests.e2e.test_providers import STREAMS, WIRES, anthropic_client, backend_saw, stack_with

WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


async def respond(stack: Stack, *, stream: bool, **request: Any) -> Response:
    """One /v1/responses call with model "small"; a streamed one must be well ordered."""
    client = stack.client()
    if not stream:
        return await client.responses.create(model="small", **request)
    async with client.responses.stream(model="small", **request) as events:
        seen = [event async for event in events]
        final = await events.get_final_response()
    kinds = [event.type for event in seen]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    numbers = [event.sequence_number for event in seen]
    assert numbers == list(range(len(seen)))
    return final


@STREAMS
@pytest.mark.parametrize("wire", WIRES)
async def test_text_through_the_responses_door(
    nursery: trio.Nursery, tmp_path: Path, wire: str, stream: bool
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    response = await respond(
        stack,
        stream=stream,
        instructions="be brief",
        input=[
            {"role": "developer", "content": "you run on a LAN"},
            {"role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
        ],
        store=False,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="conversation-1",
    )
    assert response.output_text == "echo: hello there"
    assert response.status == "completed" and response.model == "small"
    assert response.usage is not None and response.usage.output_tokens > 0
    body = backend_saw(stack, wire, stream=stream)
    assert "be brief" in body and "you run on a LAN" in body and "hello there" in body
    rows = await stack.rows()
    assert [(r.backend, r.chosen_model, r.status, r.stream) for r in rows] == [
        ("local", "small", 200, stream)
    ]


@STREAMS
@pytest.mark.parametrize("wire", WIRES)
async def test_function_calls_and_their_outputs(
    nursery: trio.Nursery, tmp_path: Path, wire: str, stream: bool
) -> None:
    stack = await stack_with(nursery, tmp_path, wire)
    stack.sim("local").set_knobs(tool_call=True)
    hosted: Any = {"type": "web_search"}
    response = await respond(
        stack, stream=stream, tools=[WEATHER, hosted], input="weather in Oslo?"
    )
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id and call.arguments and "city" in call.arguments
    body = backend_saw(stack, wire, stream=stream)
    assert "get_weather" in body and "web_search" not in body
    # The next turn sends the call and its output back, the whole conversation (store off).
    stack.sim("local").set_knobs(tool_call=False)
    follow_up: Any = [
        {"role": "user", "content": "weather in Oslo?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": "{}"},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"},
    ]
    answer = await respond(stack, stream=stream, tools=[WEATHER], input=follow_up)
    assert answer.output_text.startswith("echo:")
    assert "sunny, 21 C" in backend_saw(stack, wire, stream=stream)


async def test_namespace_tools_come_back_split(nursery: trio.Nursery, tmp_path: Path) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    stack.sim("local").set_knobs(tool_call=True)
    namespace: Any = {
        "type": "namespace",
        "name": "crm",
        "description": "customer records",
        "tools": [WEATHER],
    }
    response = await respond(stack, stream=True, tools=[namespace], input="weather?")
    (call,) = response.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.namespace == "crm"
    assert "crm__get_weather" in backend_saw(stack, "openai", stream=True)


async def test_responses_door_refusals_are_openai_errors(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    client = stack.client()
    with pytest.raises(openai.BadRequestError) as err:
        await client.responses.create(model="small", input="hi", previous_response_id="resp_1")
    assert err.value.code == "invalid_request"
    assert err.value.param == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        await client.responses.create(model="nope", input="hi")
    async with stack.http() as http:
        bad_item = await http.post(
            "/v1/responses", json={"model": "small", "input": [{"type": "item_reference"}]}
        )
        not_json = await http.post("/v1/responses", content=b"{")
    assert bad_item.status_code == 400
    assert bad_item.json()["error"]["param"] == "input[0].type"
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "invalid_json"
    assert len(await stack.rows()) == 4


async def test_every_door_names_the_gateways_model(nursery: trio.Nursery, tmp_path: Path) -> None:
    """Model "tiny" is "small" upstream: clients see "tiny", the header says "small"."""
    models = [model("tiny", "local", 20, upstream="small")]
    stack = await start_stack(nursery, tmp_path, models=models)
    client = stack.client()
    chat = await client.chat.completions.with_raw_response.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.parse().model == "tiny"
    assert chat.headers["x-router-upstream-model"] == "small"
    chunks = await client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert {chunk.model async for chunk in chunks} == {"tiny"}
    response = await client.responses.create(model="tiny", input="hi")
    assert response.model == "tiny"
    claude = anthropic_client(stack)
    message = await claude.messages.with_raw_response.create(
        model="tiny", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert (await message.parse()).model == "tiny"
    assert message.headers["x-router-upstream-model"] == "small"
    async with claude.messages.stream(
        model="tiny", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as events:
        assert (await events.get_final_message()).model == "tiny"


async def test_count_tokens_estimates_a_messages_request(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await stack_with(nursery, tmp_path, "openai")
    request: Any = {
        "model": "small",
        "system": "be brief",
        "messages": [{"role": "user", "content": "hello there " * 100}],
    }
    async with stack.http() as http:
        counted = await http.post("/v1/messages/count_tokens", json=request)
        bad = await http.post("/v1/messages/count_tokens", json={"model": "small"})
    assert counted.status_code == 200
    assert 250 < counted.json()["input_tokens"] < 400
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert await stack.rows() == []
