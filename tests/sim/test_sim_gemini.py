"""The Gemini simulator on a real loopback socket, driven through GeminiWire.

Requests are what GeminiWire.call builds from OpenAI bodies, and answers go back through
GeminiWire.answer / its translator, so these tests also check the wire end to end; the
official OpenAI SDK's models must accept what comes out.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import httpx
import openai.types.chat as oai
import pytest
import trio

from llmswitch.providers.gemini import GeminiWire, retry_delay_s
from llmswitch.sim import RunningSim, SimBackend
from tests.providers.samples import CLOCK_TOOL, USER, weather_schema, weather_tool

MODEL = "gemini-sim"
WEATHER_TOOL = weather_tool(weather_schema(closed=True))


@pytest.fixture
def sim() -> SimBackend:
    return SimBackend([MODEL, "gemini-other"], name="gemini-test", seed=1)


@pytest.fixture
def sim_wire() -> str:
    return "gemini"


@pytest.fixture
async def http(running: RunningSim) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.base_url + "/v1beta", timeout=10) as client:
        yield client


@pytest.fixture
def wire() -> GeminiWire:
    return GeminiWire()


async def send(
    http: httpx.AsyncClient, wire: GeminiWire, body: dict[str, Any], model: str = MODEL
) -> httpx.Response:
    """POST what GeminiWire makes of an OpenAI body (non-stream)."""
    call = wire.call({"model": "auto", **body}, model)
    return await http.post(call.path, json=call.body, params=call.params)


async def stream_raw(
    http: httpx.AsyncClient, wire: GeminiWire, body: dict[str, Any], model: str = MODEL
) -> tuple[int, bytes]:
    call = wire.call({"model": "auto", "stream": True, **body}, model)
    chunks: list[bytes] = []
    async with http.stream("POST", call.path, json=call.body, params=call.params) as response:
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
        except httpx.RemoteProtocolError:
            pass  # a cut stream
        return response.status_code, b"".join(chunks)


def openai_chunks(wire: GeminiWire, raw: bytes, step: int = 5) -> tuple[list[Any], bool]:
    """(validated OpenAI chunks, ended with [DONE]) for raw Gemini SSE, fed in pieces."""
    translator = wire.translator(MODEL)
    out = b"".join(translator.feed(raw[i : i + step]) for i in range(0, len(raw), step))
    out += translator.close()
    chunks: list[Any] = []
    done = False
    for event in out.split(b"\n\n"):
        if not event:
            continue
        data = event.removeprefix(b"data: ")
        if data == b"[DONE]":
            done = True
            continue
        chunks.append(oai.ChatCompletionChunk.model_validate(json.loads(data)))
    return chunks, done


def content_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# -- answers ----------------------------------------------------------------------------


async def test_non_stream_answer_parses(http: httpx.AsyncClient, wire: GeminiWire) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    response = await send(http, wire, {"messages": messages})

    assert response.status_code == 200
    raw = response.json()
    candidate = raw["candidates"][0]
    assert candidate["content"]["role"] == "model"
    assert candidate["finishReason"] == "STOP"
    assert raw["modelVersion"] == MODEL
    assert raw["usageMetadata"]["candidatesTokenCount"] == 3
    out = oai.ChatCompletion.model_validate_json(wire.answer(response.content, MODEL))
    assert out.choices[0].message.content == "echo: second question"
    assert out.choices[0].finish_reason == "stop"
    assert out.usage is not None
    # system + 3 turns, 3 overhead each, plus 2 + 2 + 2 + 2 words.
    assert out.usage.prompt_tokens == 20
    assert out.usage.completion_tokens == 3


async def test_canned_reply_and_max_tokens(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    sim.set_knobs(MODEL, reply="one two three four five")

    full = await send(http, wire, {"messages": USER})
    short = await send(http, wire, {"messages": USER, "max_tokens": 2})

    assert full.json()["candidates"][0]["content"]["parts"] == [{"text": "one two three four five"}]
    assert short.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"
    out = oai.ChatCompletion.model_validate_json(wire.answer(short.content, MODEL))
    assert out.choices[0].message.content == "one two"
    assert out.choices[0].finish_reason == "length"


async def test_streamed_answer_through_the_translator(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    reply = "Vive l'été, the sun is out ☀️ and so are we"
    sim.set_knobs(MODEL, reply=reply)

    status, raw = await stream_raw(http, wire, {"messages": USER})

    assert status == 200
    assert raw.endswith(b"\r\n\r\n") and raw.count(b"data: ") == len(reply.split())
    chunks, done = openai_chunks(wire, raw)
    assert done
    assert content_of(chunks) == reply
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(reply.split())


async def test_paced_stream_gives_the_same_answer(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    sim.set_knobs(MODEL, reply="a b c d e", ttft_s=0.01, tokens_per_s=500.0)

    status, raw = await stream_raw(http, wire, {"messages": USER})

    assert status == 200
    chunks, done = openai_chunks(wire, raw)
    assert done and content_of(chunks) == "a b c d e"
    assert sim.stats.open_streams == 0


async def test_stream_without_alt_sse_is_a_json_array(
    sim: SimBackend, http: httpx.AsyncClient
) -> None:
    sim.set_knobs(MODEL, reply="x y z")
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}

    response = await http.post(f"/models/{MODEL}:streamGenerateContent", json=body)

    assert response.status_code == 200
    items = response.json()
    assert isinstance(items, list) and len(items) == 3
    assert "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items) == "x y z"
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


async def test_tool_call(sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire) -> None:
    sim.set_knobs(MODEL, tool_call=True)
    body = {"messages": USER, "tools": [WEATHER_TOOL, CLOCK_TOOL]}

    response = await send(http, wire, body)

    part = response.json()["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "sample", "unit": "celsius"},
    }
    assert part["thoughtSignature"]
    out = oai.ChatCompletion.model_validate_json(wire.answer(response.content, MODEL))
    assert out.choices[0].finish_reason == "tool_calls"
    calls = out.choices[0].message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert isinstance(call, oai.ChatCompletionMessageFunctionToolCall)
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "sample", "unit": "celsius"}

    # A forced tool is the one called; the tool result goes back and text comes out.
    forced = {**body, "tool_choice": {"type": "function", "function": {"name": "get_time"}}}
    assert (await send(http, wire, forced)).json()["candidates"][0]["content"]["parts"][0][
        "functionCall"
    ] == {"name": "get_time", "args": {}}
    sim.set_knobs(MODEL, tool_call=False)
    history = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    response = await send(http, wire, {"messages": history, "tools": [WEATHER_TOOL]})
    assert response.status_code == 200
    sent = sim.last_request()
    assert sent is not None
    assert sent.body["contents"][1]["parts"][0]["thoughtSignature"] == part["thoughtSignature"]
    assert sent.body["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"
    out = oai.ChatCompletion.model_validate_json(wire.answer(response.content, MODEL))
    assert out.choices[0].message.content == "echo: hello brave new world"


async def test_streamed_tool_call(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    sim.set_knobs(MODEL, tool_call=True)

    status, raw = await stream_raw(http, wire, {"messages": USER, "tools": [WEATHER_TOOL]})

    assert status == 200 and raw.count(b"data: ") == 1  # Gemini sends a call whole
    chunks, done = openai_chunks(wire, raw)
    assert done
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert len(calls) == 1
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert calls[0].function.arguments is not None
    assert json.loads(calls[0].function.arguments) == {"city": "sample", "unit": "celsius"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


# -- faults -----------------------------------------------------------------------------


async def test_error_status_with_a_gemini_error_body(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    sim.set_knobs(MODEL, error_status=429, retry_after_s=7)

    response = await send(http, wire, {"messages": USER})

    assert response.status_code == 429
    err = response.json()["error"]
    assert err["code"] == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    assert retry_delay_s(response.content) == 7.0 and wire.retry_after(response.content) == "7"
    assert response.headers["retry-after"] == "7"
    assert wire.retryable(429, response.content)
    assert wire.error_message(429, response.content).startswith("HTTP 429: RESOURCE_EXHAUSTED: ")

    sim.set_knobs(MODEL, error_status=400, retry_after_s=None)
    response = await send(http, wire, {"messages": USER})
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert not wire.retryable(400, response.content)
    assert sim.stats.faults["error_status"] == 2


async def test_error_rate_answers_500_internal(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    sim.set_knobs(MODEL, error_rate=1.0)

    response = await send(http, wire, {"messages": USER})

    assert response.status_code == 500
    assert response.json()["error"]["status"] == "INTERNAL"
    assert wire.retryable(500, response.content)


async def test_cut_stream_gives_no_done(
    sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    sim.set_knobs(MODEL, reply="one two three four", cut_after=2)

    status, raw = await stream_raw(http, wire, {"messages": USER})

    assert status == 200 and raw.count(b"data: ") == 2
    chunks, done = openai_chunks(wire, raw)
    assert content_of(chunks) == "one two"  # the deltas came through ...
    assert not done  # ... but close() gave no [DONE]: the stream did not end well
    assert all(c.choices and c.choices[0].finish_reason is None for c in chunks)
    assert sim.stats.faults["cut"] == 1


async def test_cut_non_stream_body(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(MODEL, reply="one two three", cut_after=1)
    body = {"contents": [{"parts": [{"text": "hi"}]}]}

    with pytest.raises(httpx.RemoteProtocolError):
        await http.post(f"/models/{MODEL}:generateContent", json=body)


async def test_hang_until_the_client_leaves(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(MODEL, hang=True)
    body = {"contents": [{"parts": [{"text": "hi"}]}]}

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(http.post, f"/models/{MODEL}:generateContent", json=body))
        with trio.fail_after(5):
            await sim.wait_until(lambda s: s.hanging == 1)
        nursery.cancel_scope.cancel()
    with trio.fail_after(5):
        await sim.wait_until(lambda s: s.hanging == 0 and s.disconnects == 1)


# -- auth, models, bad requests, stats --------------------------------------------------


async def test_api_key_like_gemini(running: RunningSim, sim: SimBackend) -> None:
    sim.api_key = "AIza-sim-key"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = f"{running.base_url}/v1beta/models/{MODEL}:generateContent"
    async with httpx.AsyncClient(timeout=10) as client:
        missing = await client.post(url, json=body)
        wrong = await client.post(url, json=body, headers={"x-goog-api-key": "nope"})
        right = await client.post(url, json=body, headers={"x-goog-api-key": "AIza-sim-key"})
        query = await client.post(url, json=body, params={"key": "AIza-sim-key"})

    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert GeminiWire().retryable(400, wrong.content)  # another backend's key may work
    assert right.status_code == 200 and query.status_code == 200


async def test_models_list_and_get(running: RunningSim, http: httpx.AsyncClient) -> None:
    listed = await http.get("/models")
    one = await http.get(f"/models/{MODEL}")
    missing = await http.get("/models/nope")
    stable = await http.get(running.base_url + "/v1/models")

    assert [m["name"] for m in listed.json()["models"]] == [
        f"models/{MODEL}",
        "models/gemini-other",
    ]
    assert "generateContent" in listed.json()["models"][0]["supportedGenerationMethods"]
    assert one.json()["name"] == f"models/{MODEL}"
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"
    assert stable.status_code == 200


async def test_broken_backend_fails_the_model_list(
    sim: SimBackend, http: httpx.AsyncClient
) -> None:
    sim.set_knobs(None, error_status=503)
    response = await http.get("/models")
    assert response.status_code == 503
    assert response.json()["error"]["status"] == "UNAVAILABLE"


async def test_unknown_model_and_bad_requests(http: httpx.AsyncClient, wire: GeminiWire) -> None:
    unknown = await send(http, wire, {"messages": USER}, model="gemini-9-ultra")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["status"] == "NOT_FOUND"
    assert not wire.retryable(400, b"") and wire.retryable(404, unknown.content)

    # An OpenAI body sent as is: Gemini's parser rejects the unknown field.
    leaked = await http.post(
        f"/models/{MODEL}:generateContent", json={"model": MODEL, "messages": USER}
    )
    assert leaked.status_code == 400
    assert 'Unknown name "messages"' in leaked.json()["error"]["message"]

    empty = await http.post(f"/models/{MODEL}:generateContent", json={"contents": []})
    assert empty.status_code == 400 and "contents is not specified" in empty.text
    garbage = await http.post(f"/models/{MODEL}:generateContent", content=b"{nope")
    assert garbage.status_code == 400 and garbage.json()["error"]["status"] == "INVALID_ARGUMENT"
    wrong_method = await http.get(f"/models/{MODEL}:generateContent")
    assert wrong_method.status_code == 405
    nowhere = await http.post("/tunedModels/x:generateContent", json={})
    assert nowhere.status_code == 404


async def test_count_tokens(http: httpx.AsyncClient) -> None:
    body = {"contents": [{"parts": [{"text": "four words right here"}]}]}
    response = await http.post(f"/models/{MODEL}:countTokens", json=body)
    assert response.json() == {"totalTokens": 7}


async def test_stats_and_control_routes(
    running: RunningSim, sim: SimBackend, http: httpx.AsyncClient, wire: GeminiWire
) -> None:
    await send(http, wire, {"messages": USER})
    await stream_raw(http, wire, {"messages": USER})
    await http.get("/models")

    stats = sim.stats
    assert stats.total == 3
    assert stats.by_model[MODEL] == 2
    assert stats.by_status[200] == 3
    assert stats.by_path[f"/v1beta/models/{MODEL}:generateContent"] == 1
    assert stats.by_path[f"/v1beta/models/{MODEL}:streamGenerateContent"] == 1
    assert stats.in_flight == 0 and stats.open_streams == 0
    recorded = sim.last_request()
    assert recorded is not None and recorded.path == "/v1beta/models"

    async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as control:
        served = (await control.get("/_sim/stats")).json()
        assert served["total"] == 3
        knobs = await control.post("/_sim/knobs", json={"model": MODEL, "reply": "set over HTTP"})
        assert knobs.status_code == 200
    response = await send(http, wire, {"messages": USER})
    assert response.json()["candidates"][0]["content"]["parts"][0]["text"] == "set over HTTP"
    assert sim.stats.total == 4  # control requests are not counted
