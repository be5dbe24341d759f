"""GeminiWire: OpenAI requests to generateContent bodies, Gemini's answers back to OpenAI.

Pure tests: the answers come from fixtures written from the Gemini API's documented
format (GenerateContentResponse, alt=sse streams with CRLF framing, google.rpc errors).
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import openai.types.chat as oai
import pytest

from llmswitch.providers.gemini import (
    PLACEHOLDER_SIGNATURE,
    GeminiTranslator,
    GeminiWire,
    SignatureCache,
    UnsupportedRequest,
    UpstreamFormatError,
    gemini_schema,
    retry_delay_s,
)
from llmswitch.providers.wire import Translator, Wire
from tests.providers.samples import (
    CLOCK_TOOL,
    STRING,
    UNIT,
    data_bytes,
    object_schema,
    openai_events,
    weather_tool,
)

MODEL = "gemini-2.5-flash"
NOW = 1_700_000_000.0

WEATHER_TOOL = weather_tool(object_schema("city", closed=True, city=STRING, unit=UNIT))
fixture_bytes = partial(data_bytes, "gemini")
events = openai_events


def wire() -> GeminiWire:
    return GeminiWire(clock=lambda: NOW)


def request(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return wire().call({"model": "auto", "messages": messages, **extra}, MODEL).body


def translate(raw: bytes, step: int | None = None, w: GeminiWire | None = None) -> bytes:
    translator = (w or wire()).translator(MODEL)
    if step is None:
        return translator.feed(raw) + translator.close()
    out = b"".join(translator.feed(raw[i : i + step]) for i in range(0, len(raw), step))
    return out + translator.close()


def test_gemini_wire_satisfies_the_protocols() -> None:
    w: Wire = wire()
    t: Translator = w.translator(MODEL)
    assert isinstance(t, GeminiTranslator)


# -- requests ---------------------------------------------------------------------------


def test_paths_for_stream_and_non_stream() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    plain = wire().call(body, MODEL)
    streamed = wire().call({**body, "stream": True}, MODEL)

    assert plain.path == "/models/gemini-2.5-flash:generateContent"
    assert plain.params == {}
    assert streamed.path == "/models/gemini-2.5-flash:streamGenerateContent"
    assert streamed.params == {"alt": "sse"}
    assert streamed.body == plain.body
    assert plain.headers == {}  # the key is the auth preset's business
    assert wire().call(body, "models/gemini-2.0-flash").path == (
        "/models/gemini-2.0-flash:generateContent"
    )
    assert wire().call(body, "tunedModels/my-tune").path == "/tunedModels/my-tune:generateContent"


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    body = request(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "bonjour"},
            {"role": "user", "content": [{"type": "text", "text": "how are you?"}]},
        ]
    )

    assert body["systemInstruction"] == {
        "parts": [{"text": "Be brief."}, {"text": "Answer in French."}]
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hello"}]},
        {"role": "model", "parts": [{"text": "bonjour"}]},
        {"role": "user", "parts": [{"text": "how are you?"}]},
    ]


def test_openai_only_fields_are_dropped() -> None:
    body = request(
        [{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        n=3,
        user="u1",
        logprobs=True,
        presence_penalty=0.5,
        metadata={"source": "cron"},
        parallel_tool_calls=False,
    )

    assert set(body) == {"contents"}


def test_images_as_inline_data_and_file_data() -> None:
    body = request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.webp?s=1"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/photo"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.PNG"}},
                ],
            }
        ]
    )

    assert body["contents"][0]["parts"] == [
        {"text": "compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/cat.webp?s=1"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/photo"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.PNG"}},
    ]


def test_audio_and_pdf_parts_go_inline_and_unknown_parts_are_refused() -> None:
    body = request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                    {
                        "type": "file",
                        "file": {
                            "filename": "a.pdf",
                            "file_data": "data:application/pdf;base64,JVBE",
                        },
                    },
                ],
            }
        ]
    )
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGR"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}},
    ]

    with pytest.raises(UnsupportedRequest):
        request([{"role": "user", "content": [{"type": "video_url", "video_url": "x"}]}])
    with pytest.raises(UnsupportedRequest):
        request([{"role": "user", "content": [{"type": "image_url", "image_url": "ftp://x"}]}])
    with pytest.raises(UnsupportedRequest):
        request([{"role": "wizard", "content": "hi"}])


def test_tools_become_function_declarations_with_a_gemini_schema() -> None:
    body = request([{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL, CLOCK_TOOL])

    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        },
                        "required": ["city"],
                    },
                },
                # Gemini rejects an object schema without properties: no parameters at all.
                {"name": "get_time"},
            ]
        }
    ]
    assert "toolConfig" not in body


def test_schema_is_cut_down_to_what_gemini_accepts() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "site": {"type": "string", "format": "uri"},
            "note": {"type": ["string", "null"]},
            "mode": {"const": "fast"},
            "level": {"type": "integer", "enum": [1, 2, None]},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
            "either": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "tree": {"$ref": "#/$defs/node"},
        },
        "required": ["when", "missing"],
        "additionalProperties": False,
        "$defs": {
            "tag": {"type": "string", "minLength": 1},
            "node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}},
        },
    }

    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "date-time"},
            "site": {"type": "string"},
            "note": {"nullable": True, "type": "string"},
            "mode": {"enum": ["fast"]},
            "level": {"type": "integer", "enum": ["1", "2"], "nullable": True},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "either": {"nullable": True, "type": "integer"},
            "tree": {"type": "object", "properties": {"child": {"type": "object"}}},
        },
        "required": ["when"],
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            },
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_variants(choice: Any, config: dict[str, Any]) -> None:
    body = request(
        [{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL, CLOCK_TOOL], tool_choice=choice
    )
    assert body["toolConfig"] == {"functionCallingConfig": config}
    assert len(body["tools"][0]["functionDeclarations"]) == 2


def test_allowed_tools_auto_offers_only_the_allowed_functions() -> None:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "name": "get_time"}]},
    }
    body = request(
        [{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL, CLOCK_TOOL], tool_choice=choice
    )
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert body["tools"] == [{"functionDeclarations": [{"name": "get_time"}]}]


def test_tool_choice_without_tools_sends_no_tool_config() -> None:
    body = request([{"role": "user", "content": "hi"}], tool_choice="none")
    assert "toolConfig" not in body and "tools" not in body


def test_non_function_tools_are_refused() -> None:
    with pytest.raises(UnsupportedRequest):
        request([{"role": "user", "content": "hi"}], tools=[{"type": "web_search"}])


def test_tool_calls_and_results_with_name_lookup_and_merged_turns() -> None:
    cache = SignatureCache()
    cache.put("call_a", "REAL-SIGNATURE")
    w = GeminiWire(clock=lambda: NOW, signatures=cache)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "weather in Paris and London?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
        {"role": "user", "content": "thanks"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_c",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "not json"},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_unknown",
            "content": [{"type": "text", "text": "x"}],
        },
    ]
    body = w.call({"model": "auto", "messages": messages}, MODEL).body

    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "weather in Paris and London?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "REAL-SIGNATURE",
                },
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": {"temp": 21}},
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_time",
                        "response": {"content": {"result": "noon"}},
                    }
                },
                {"text": "thanks"},
            ],
        },
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"arguments": "not json"}},
                    # No signature on record: Google's documented placeholder.
                    "thoughtSignature": PLACEHOLDER_SIGNATURE,
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "unknown", "response": {"content": {"result": "x"}}}}
            ],
        },
    ]


def test_generation_config() -> None:
    body = request(
        [{"role": "user", "content": "hi"}],
        temperature=0.2,
        top_p=0.9,
        max_tokens=100,
        stop="END",
        seed=7,
        n=2,
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
        "seed": 7,
    }

    body = request(
        [{"role": "user", "content": "hi"}],
        max_completion_tokens=50,
        max_tokens=100,
        stop=["a", "b"],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "x",
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "integer"}},
                    "additionalProperties": False,
                },
            },
        },
    )
    assert body["generationConfig"] == {
        "maxOutputTokens": 50,
        "stopSequences": ["a", "b"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }
    body = request([{"role": "user", "content": "hi"}], response_format={"type": "json_object"})
    assert body["generationConfig"] == {"responseMimeType": "application/json"}


# -- whole answers ----------------------------------------------------------------------


def answer(name: str, w: GeminiWire | None = None) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((w or wire()).answer(fixture_bytes(name), MODEL))
    oai.ChatCompletion.model_validate(out)
    return out


def test_text_answer() -> None:
    out = answer("text_response.json")

    assert out["id"] == "chatcmpl-n7QkaJ6aLcCt1dkP7uOW2A0"
    assert out["object"] == "chat.completion"
    assert out["created"] == int(NOW)
    assert out["model"] == MODEL
    assert out["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The capital of France is **Paris**.",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    # Thinking tokens are billed as output: they count as completion tokens.
    assert out["usage"] == {
        "prompt_tokens": 8,
        "completion_tokens": 33,
        "total_tokens": 41,
        "completion_tokens_details": {"reasoning_tokens": 24},
    }


def test_function_call_answer_and_its_signature_is_remembered() -> None:
    w = wire()
    out = answer("function_call_response.json", w)

    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_weather"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris", "unit": "celsius"},
        {"city": "London", "unit": "celsius"},
    ]
    assert all(c["type"] == "function" for c in calls)
    assert calls[0]["id"].startswith("call_0_") and calls[1]["id"].startswith("call_1_")
    assert calls[0]["id"] != calls[1]["id"]
    assert out["usage"]["completion_tokens"] == 36
    # Same answer, same ids (derived from responseId): stable across retries of a parse.
    assert answer("function_call_response.json")["choices"][0]["message"]["tool_calls"] == calls

    # The next turn carries the signature back on the call it came with.
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "rain"},
    ]
    body = w.call({"model": "auto", "messages": history}, MODEL).body
    parts = body["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"].startswith("CiwBVKhc")
    assert "thoughtSignature" not in parts[1]
    names = [p["functionResponse"]["name"] for p in body["contents"][2]["parts"]]
    assert names == ["get_weather", "get_weather"]


def test_safety_finish_and_blocked_prompt_are_content_filter() -> None:
    finished = answer("safety_finish.json")
    assert finished["choices"][0]["finish_reason"] == "content_filter"
    assert finished["choices"][0]["message"]["content"] == ""
    assert finished["usage"] == {"prompt_tokens": 12, "completion_tokens": 0, "total_tokens": 12}

    blocked = answer("prompt_blocked.json")
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["message"]["content"] == ""


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons(reason: str, expected: str) -> None:
    payload = {
        "candidates": [
            {
                "content": {"parts": [{"text": "a"}, {"text": "b"}], "role": "model"},
                "finishReason": reason,
            }
        ]
    }
    out = json.loads(wire().answer(json.dumps(payload).encode(), MODEL))
    assert out["choices"][0]["finish_reason"] == expected
    assert out["choices"][0]["message"]["content"] == "ab"
    assert "usage" not in out  # none reported: the gateway estimates


def test_thought_parts_are_not_content() -> None:
    payload = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "thinking...", "thought": True}, {"text": "42"}],
                    "role": "model",
                },
                "finishReason": "STOP",
            }
        ]
    }
    out = json.loads(wire().answer(json.dumps(payload).encode(), MODEL))
    assert out["choices"][0]["message"]["content"] == "42"


def test_answer_that_is_not_a_response_raises() -> None:
    with pytest.raises(UpstreamFormatError):
        wire().answer(b"<html>", MODEL)
    with pytest.raises(UpstreamFormatError):
        wire().answer(fixture_bytes("error_503.json"), MODEL)


# -- streams ----------------------------------------------------------------------------


def test_streamed_text() -> None:
    out = events(translate(fixture_bytes("stream_text.txt")))

    assert out[-1] == "[DONE]"
    chunks = out[:-1]
    for chunk in chunks:
        oai.ChatCompletionChunk.model_validate(chunk)
        assert chunk["id"] == "chatcmpl-u3YkaNaYGJ2r1dkPlMm4yAk"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == int(NOW)
        assert chunk["model"] == MODEL
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "The capital of France is **Paris**. Vive l'été ☀️"
    assert chunks[-2]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 8, "completion_tokens": 13, "total_tokens": 21}


@pytest.mark.parametrize(
    "name", ["stream_text.txt", "stream_function_call.txt", "stream_error.txt"]
)
def test_five_byte_chunks_give_identical_output(name: str) -> None:
    raw = fixture_bytes(name)
    whole = translate(raw)
    assert whole
    for step in (1, 5, 7, 64):
        assert translate(raw, step) == whole
    # LF framing instead of CRLF makes no difference either.
    assert translate(raw.replace(b"\r\n", b"\n"), 5) == whole


def test_streamed_function_call() -> None:
    w = wire()
    out = events(translate(fixture_bytes("stream_function_call.txt"), w=w))

    assert out[-1] == "[DONE]"
    for chunk in out[:-1]:
        oai.ChatCompletionChunk.model_validate(chunk)
    deltas = [c["choices"][0] for c in out[:-1] if c["choices"]]
    call = deltas[1]["delta"]["tool_calls"][0]
    assert call["index"] == 0
    assert call["id"].startswith("call_0_")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert deltas[-1]["finish_reason"] == "tool_calls"
    assert all("content" not in d["delta"] for d in deltas[1:])  # the empty text part is skipped
    assert out[-2]["usage"] == {
        "prompt_tokens": 95,
        "completion_tokens": 64,
        "total_tokens": 159,
        "completion_tokens_details": {"reasoning_tokens": 46},
    }
    assert w.signatures.get(call["id"]) is not None


def test_error_in_the_stream_becomes_an_openai_error_event() -> None:
    translator = wire().translator(MODEL)
    out = events(translator.feed(fixture_bytes("stream_error.txt")))

    assert out[1]["choices"][0]["delta"] == {"content": "Once upon"}
    assert out[-1] == {
        "error": {
            "message": "UNAVAILABLE: The model is overloaded. Please try again later.",
            "type": "upstream_error",
            "param": None,
            "code": "UNAVAILABLE",
        }
    }
    assert translator.close() == b""  # no [DONE]: the stream did not end well


def test_cut_stream_closes_without_done() -> None:
    raw = fixture_bytes("stream_text.txt")
    cut = raw[: raw.rindex(b"data: ")]  # the finishReason event never came
    translator = wire().translator(MODEL)
    out = translator.feed(cut)

    assert b"Paris" not in out and b"capital" in out
    assert translator.close() == b""

    half = raw[: len(raw) - 40]  # cut inside the last event
    translator = wire().translator(MODEL)
    translator.feed(half)
    assert translator.close() == b""


def test_last_event_without_its_blank_line_still_ends_the_stream() -> None:
    raw = fixture_bytes("stream_text.txt").rstrip(b"\r\n")
    out = events(translate(raw))
    assert out[-1] == "[DONE]"
    assert out[-3]["choices"][0]["finish_reason"] == "stop"


def test_blocked_prompt_in_a_stream() -> None:
    payload = json.loads(fixture_bytes("prompt_blocked.json"))
    out = events(translate(b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"))
    assert out[1]["choices"][0]["finish_reason"] == "content_filter"
    assert out[-1] == "[DONE]"


def test_comments_and_other_fields_are_ignored() -> None:
    raw = fixture_bytes("stream_text.txt")
    noisy = b": keep-alive\r\n\r\nevent: message\r\n" + raw
    assert translate(noisy) == translate(raw)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "retryable"),
    [
        (429, "error_429.json", True),
        (503, "error_503.json", True),
        (400, "error_400_invalid.json", False),
        (400, "error_400_api_key.json", True),  # the backend's key, not the request
    ],
)
def test_error_messages_and_retryable(status: int, name: str, retryable: bool) -> None:
    payload = fixture_bytes(name)
    err = json.loads(payload)["error"]
    message = wire().error_message(status, payload)
    assert message.startswith(f"HTTP {status}: {err['status']}: ")
    assert err["message"].strip()[:30] in message
    assert wire().retryable(status, payload) is retryable


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (504, True), (401, True), (403, True), (404, True), (413, False)],
)
def test_retryable_by_status(status: int, retryable: bool) -> None:
    assert wire().retryable(status, b"") is retryable


def test_failed_precondition_is_the_request_s() -> None:
    payload = json.dumps(
        {
            "error": {
                "code": 400,
                "message": "User location is not supported for the API use.",
                "status": "FAILED_PRECONDITION",
            }
        }
    ).encode()
    assert wire().retryable(400, payload) is False


def test_error_message_without_a_json_body_and_secrets_scrubbed() -> None:
    assert wire().error_message(502, b"<html>Bad Gateway</html>") == (
        "HTTP 502: <html>Bad Gateway</html>"
    )
    assert wire().error_message(500, b"") == "HTTP 500"
    leaky = json.dumps(
        {"error": {"code": 400, "message": "bad key AIzaSyA1234567890abcdefghijKLMNOPQRSTU"}}
    ).encode()
    assert "AIzaSyA123" not in wire().error_message(400, leaky)
    listed = b'[{"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}]'
    assert wire().error_message(429, listed) == "HTTP 429: RESOURCE_EXHAUSTED: slow down"


def test_retry_delay_from_retry_info() -> None:
    assert retry_delay_s(fixture_bytes("error_429.json")) == 27.0
    assert retry_delay_s(fixture_bytes("error_503.json")) is None
    assert retry_delay_s(b"nope") is None
