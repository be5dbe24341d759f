"""One OpenAI chat request, and the Anthropic and Gemini requests it should become.

tests/data/providers/openai/chat_request_tools_image.json has a system message, a user
turn with text and a base64 image, tools with tool_choice, an assistant tool call and its
result, and max_tokens, temperature and stop. The expected requests beside the other
fixtures were written from the Messages API and generateContent references.
"""

from __future__ import annotations

import copy
from typing import Any

from llmswitch.providers.anthropic import API_VERSION, AnthropicWire
from llmswitch.providers.gemini import PLACEHOLDER_SIGNATURE, GeminiWire
from tests.providers.samples import data_json

CLAUDE = "claude-sonnet-4-20250514"
GEMINI = "gemini-2.5-flash"


def openai_request() -> dict[str, Any]:
    return data_json("openai", "chat_request_tools_image.json")


def test_anthropic_messages_request() -> None:
    body = openai_request()
    call = AnthropicWire(clock=lambda: 0.0).call(copy.deepcopy(body), CLAUDE)
    assert call.path == "/messages"
    assert call.headers == {"anthropic-version": API_VERSION}
    assert call.body == data_json("anthropic", "request_from_openai.json")
    assert body == openai_request()  # the client's body is left as it was


def upper_types(schema: Any) -> Any:
    """Gemini's Schema.type is an enum the API matches without regard to case."""
    if isinstance(schema, dict):
        return {
            k: v.upper() if k == "type" and isinstance(v, str) else upper_types(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [upper_types(v) for v in schema]
    return schema


def function_output(response: dict[str, Any]) -> Any:
    """FunctionResponse.response is any JSON object: the output is the whole object, or
    under one wrapping key ("output" is the documented one; others are equally accepted)."""
    if len(response) == 1:
        return next(iter(response.values()))
    return response


def comparable(request: dict[str, Any]) -> dict[str, Any]:
    """A generateContent request with its equally valid choices evened out: type case,
    the optional thought signature on a replayed call, the functionResponse wrapper key."""
    out = copy.deepcopy(request)
    for tools in out.get("tools", ()):
        for decl in tools.get("functionDeclarations", ()):
            if "parameters" in decl:
                decl["parameters"] = upper_types(decl["parameters"])
    for turn in out["contents"]:
        for part in turn["parts"]:
            part.pop("thoughtSignature", None)
            fr = part.get("functionResponse")
            if fr is not None:
                fr["response"] = function_output(fr["response"])
    return out


def test_gemini_generate_content_request() -> None:
    body = openai_request()
    call = GeminiWire(clock=lambda: 0.0).call(copy.deepcopy(body), GEMINI)
    assert call.path == f"/models/{GEMINI}:generateContent"
    assert call.params == {}
    expected = data_json("gemini", "request_from_openai.json")
    assert comparable(call.body) == comparable(expected)
    assert body == openai_request()


def test_gemini_replayed_call_without_a_known_signature_gets_the_placeholder() -> None:
    call = GeminiWire(clock=lambda: 0.0).call(openai_request(), GEMINI)
    (part,) = call.body["contents"][1]["parts"]
    assert part.get("thoughtSignature") == PLACEHOLDER_SIGNATURE


def test_gemini_streamed_request_is_the_same_body_on_the_sse_path() -> None:
    w = GeminiWire(clock=lambda: 0.0)
    plain = w.call(openai_request(), GEMINI)
    streamed = w.call({**openai_request(), "stream": True}, GEMINI)
    assert streamed.path == f"/models/{GEMINI}:streamGenerateContent"
    assert streamed.params == {"alt": "sse"}
    assert streamed.body == plain.body


def test_anthropic_streamed_request_only_adds_stream() -> None:
    w = AnthropicWire(clock=lambda: 0.0)
    plain = w.call(openai_request(), CLAUDE).body
    streamed = w.call({**openai_request(), "stream": True}, CLAUDE).body
    assert streamed == {**plain, "stream": True}
