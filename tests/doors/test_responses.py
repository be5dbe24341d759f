"""The Responses door's translators, checked against the openai SDK's own types.

Requests are translated and the result validated as a chat-completions request; answers
and every streamed event are validated strictly with the SDK's Responses models.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from openai.types.responses import Response, ResponseStreamEvent

from llmswitch.doors.common import DoorError
from llmswitch.doors.responses import (
    ResponseShell,
    ResponseStreamWriter,
    openai_to_response,
    responses_to_openai,
)

CHAT_REQUEST = pydantic.TypeAdapter(CompletionCreateParamsNonStreaming)
EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
PATCH: dict[str, Any] = {"type": "custom", "name": "apply_patch", "description": "edit files"}
CRM: dict[str, Any] = {"type": "namespace", "name": "crm", "description": "", "tools": [WEATHER]}


def translate(**body: Any) -> dict[str, Any]:
    out = responses_to_openai({"model": "auto", **body})
    CHAT_REQUEST.validate_python({k: v for k, v in out.items() if not k.startswith("stream")})
    return out


def test_instructions_and_developer_messages_make_one_leading_system_message() -> None:
    out = translate(
        instructions="base",
        input=[
            {"type": "message", "role": "developer", "content": "dev one"},
            {"role": "user", "content": [{"type": "input_text", "text": "env"}]},
            {"role": "developer", "content": [{"type": "input_text", "text": "dev two"}]},
            {"role": "user", "content": "the ask"},
        ],
    )
    assert out["messages"] == [
        {"role": "system", "content": "base\n\ndev one\n\ndev two"},
        {"role": "user", "content": "env"},
        {"role": "user", "content": "the ask"},
    ]


def test_calls_join_the_assistant_turn_and_outputs_become_tool_messages() -> None:
    out = translate(
        tools=[WEATHER, PATCH, CRM],
        input=[
            {"role": "user", "content": "go"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "let me see"}]},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "get_weather",
             "namespace": "crm", "arguments": "{}"},
            {"type": "custom_tool_call", "call_id": "c3", "name": "apply_patch", "input": "*"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2",
             "output": [{"type": "input_text", "text": "rainy"}]},
            {"type": "custom_tool_call_output", "call_id": "c3", "output": "done"},
        ],
    )  # fmt: skip
    _user, assistant, *tools = out["messages"]
    assert assistant["content"] == "let me see"
    names = [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]]
    assert names == [("c1", "get_weather"), ("c2", "crm__get_weather"), ("c3", "apply_patch")]
    assert json.loads(assistant["tool_calls"][2]["function"]["arguments"]) == {"input": "*"}
    assert [(t["tool_call_id"], t["content"]) for t in tools] == [
        ("c1", "sunny"),
        ("c2", "rainy"),
        ("c3", "done"),
    ]
    offered = [t["function"]["name"] for t in out["tools"]]
    assert offered == ["get_weather", "apply_patch", "crm__get_weather"]


def test_hosted_tools_are_dropped_and_options_translated() -> None:
    out = translate(
        input="hi",
        tools=[{"type": "web_search"}, {"type": "file_search", "vector_store_ids": []}],
        tool_choice="auto",
        reasoning={"effort": "high", "summary": "auto"},
        text={"format": {"type": "json_schema", "name": "t", "schema": {"type": "object"}}},
        max_output_tokens=50,
        store=False,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="k",
        stream=True,
    )
    assert "tools" not in out and "tool_choice" not in out
    assert out["reasoning_effort"] == "high" and out["max_tokens"] == 50
    assert out["response_format"]["json_schema"] == {"name": "t", "schema": {"type": "object"}}
    assert out["prompt_cache_key"] == "k"
    assert out["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": 3}, "input"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"input": [{"role": "developer", "content": "only a system prompt"}]}, "input"),
        ({"input": "hi", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "hi", "tools": [{"type": "teleport"}]}, "tools[0].type"),
        ({"input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
         "input[0].content[0].image_url"),
    ],
)  # fmt: skip
def test_bad_requests_name_their_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(DoorError) as err:
        responses_to_openai({"model": "auto", **body})
    assert err.value.param == param


def shell(**request: Any) -> ResponseShell:
    return ResponseShell({"model": "auto", "input": "x", **request}, "small", id="resp_1")


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def test_a_completion_becomes_a_valid_response() -> None:
    calls = [
        {"id": "c1", "type": "function", "function": {"name": "crm__get_weather",
                                                       "arguments": '{"city":"Oslo"}'}},
        {"id": "c2", "type": "function", "function": {"name": "apply_patch",
                                                       "arguments": '{"input":"*** Begin"}'}},
    ]  # fmt: skip
    message = {"role": "assistant", "content": "checking", "tool_calls": calls}
    out = Response.model_validate(
        openai_to_response(completion(message), shell(tools=[CRM, PATCH]))
    )
    text, weather, patch = out.output
    assert text.type == "message" and out.output_text == "checking"
    assert weather.type == "function_call" and weather.namespace == "crm"
    assert weather.name == "get_weather" and weather.arguments == '{"city":"Oslo"}'
    assert patch.type == "custom_tool_call" and patch.input == "*** Begin"
    assert out.usage is not None and (out.usage.input_tokens, out.usage.total_tokens) == (7, 10)
    assert out.model == "small" and out.status == "completed"
    long = openai_to_response(completion({"content": "cut"}, "length"), shell())
    assert long["status"] == "incomplete"
    assert long["incomplete_details"] == {"reason": "max_output_tokens"}


def sse(*chunks: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "x", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def events(data: bytes) -> list[Any]:
    out = []
    for block in data.decode().split("\n\n"):
        if block:
            kind, payload = block.split("\n")
            event = EVENT.validate_python(json.loads(payload.removeprefix("data: ")))
            assert kind == f"event: {event.type}"
            out.append(event)
    return out


def test_a_stream_of_text_then_a_call_becomes_ordered_valid_events() -> None:
    writer = ResponseStreamWriter(shell(tools=[WEATHER]), input_tokens=5)
    call = {"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": ""}}
    raw = sse(
        chunk({"role": "assistant", "content": "Let "}),
        chunk({"content": "me"}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}, "tool_calls"),
    )
    # Split anywhere: the writer must not care where chunk boundaries fall.
    out = b"".join(writer.feed_sse(raw[i : i + 7]) for i in range(0, len(raw), 7))
    out += writer.feed_sse(b"data: [DONE]\n\n")
    seen = events(out)
    assert [e.sequence_number for e in seen] == list(range(len(seen)))
    assert [e.type for e in seen] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    final = seen[-1].response
    assert final.output_text == "Let me"
    assert final.output[1].arguments == '{"city":"Oslo"}' and final.output[1].call_id == "c1"
    assert final.usage.input_tokens == 5 and final.usage.output_tokens > 0
    assert writer.closed and writer.finish() == b""


def test_an_upstream_error_fails_the_response() -> None:
    writer = ResponseStreamWriter(shell())
    cut = {"error": {"message": "cut", "code": "x"}}
    out = writer.feed_sse(sse(chunk({"content": "par"}), cut))
    last = events(out)[-1]
    assert last.type == "response.failed" and last.response.error.message == "cut"
    assert writer.closed and writer.feed_sse(sse(chunk({"content": "more"}))) == b""


def test_the_length_limit_ends_incomplete() -> None:
    writer = ResponseStreamWriter(shell())
    out = writer.feed_sse(sse(chunk({"content": "abc"}, "length")) + b"data: [DONE]\n\n")
    last = events(out)[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
