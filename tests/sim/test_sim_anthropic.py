"""The Anthropic-format simulator, through the official anthropic SDK and AnthropicWire."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import pytest
import trio

from llmswitch.providers.anthropic import AnthropicWire
from llmswitch.sim import RunningSim, SimBackend
from llmswitch.sim.reply import sample_arguments
from tests.providers.samples import USER, object_schema, weather_schema

KEY = "sk-ant-sim-key"
MODEL = "claude-sim"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": weather_schema(),
}
CLOCK_TOOL: Any = {"name": "get_time", "input_schema": object_schema()}


@pytest.fixture
def sim() -> SimBackend:
    return SimBackend([MODEL, "claude-big"], name="claude", api_key=KEY, seed=1)


@pytest.fixture
def sim_wire() -> str:
    return "anthropic"


@pytest.fixture
async def aclient(running: RunningSim) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=running.base_url, api_key=KEY, max_retries=0, timeout=10
    ) as sdk:
        yield sdk


async def raw_stream(http: httpx.AsyncClient, body: dict[str, Any]) -> bytes:
    """The SSE bytes of a streamed /v1/messages answer, as sent."""
    chunks: list[bytes] = []
    async with http.stream(
        "POST", "/v1/messages", json=dict(body, stream=True), headers=HEADERS
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        async for chunk in r.aiter_raw():
            chunks.append(chunk)
    return b"".join(chunks)


def translate(data: bytes, size: int = 7) -> tuple[list[Any], bool]:
    """OpenAI chunks from Anthropic SSE bytes fed in `size`-byte pieces; and whether done."""
    translator = AnthropicWire().translator(MODEL)
    out = b"".join(translator.feed(data[i : i + size]) for i in range(0, len(data), size))
    out += translator.close()
    chunks = []
    for event in out.split(b"\n\n"):
        if event:
            payload = event.removeprefix(b"data: ")
            chunks.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return chunks, translator.done


# -- non-stream -------------------------------------------------------------------------


async def test_non_stream_echo(sim: SimBackend, aclient: anthropic.AsyncAnthropic) -> None:
    out = await aclient.messages.create(
        model=MODEL,
        max_tokens=100,
        system="be brief",
        messages=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
    )
    assert out.type == "message"
    assert out.id.startswith("msg_")
    assert out.role == "assistant"
    assert out.model == MODEL
    assert out.stop_reason == "end_turn"
    assert len(out.content) == 1
    block = out.content[0]
    assert block.type == "text" and block.text == "echo: second question"
    # 4 messages (system included) x 3 overhead + 2 + 2 + 2 + 2 words.
    assert out.usage.input_tokens == 20
    assert out.usage.output_tokens == 3
    assert sim.stats.by_path["/v1/messages"] == 1
    assert sim.stats.by_model[MODEL] == 1
    assert sim.stats.by_status[200] == 1
    assert sim.stats.in_flight == 0


async def test_canned_reply_and_max_tokens(
    sim: SimBackend, aclient: anthropic.AsyncAnthropic
) -> None:
    sim.set_knobs("claude-big", reply="one two three four five")
    full = await aclient.messages.create(model="claude-big", max_tokens=100, messages=USER)
    short = await aclient.messages.create(model="claude-big", max_tokens=2, messages=USER)
    assert [b.type for b in full.content] == ["text"]
    assert full.content[0].text == "one two three four five"  # type: ignore[union-attr]
    assert short.content[0].text == "one two"  # type: ignore[union-attr]
    assert short.stop_reason == "max_tokens"
    assert short.usage.output_tokens == 2


async def test_non_stream_tool_use(sim: SimBackend, aclient: anthropic.AsyncAnthropic) -> None:
    sim.set_knobs(tool_call=True)
    out = await aclient.messages.create(
        model=MODEL, max_tokens=100, messages=USER, tools=[WEATHER_TOOL, CLOCK_TOOL]
    )
    assert out.stop_reason == "tool_use"
    [block] = out.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert block.name == "get_weather"
    assert block.input == sample_arguments(WEATHER_TOOL["input_schema"])
    assert block.input == {"city": "sample", "unit": "celsius"}

    forced = await aclient.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=USER,
        tools=[WEATHER_TOOL, CLOCK_TOOL],
        tool_choice={"type": "tool", "name": "get_time"},
    )
    assert forced.content[0].type == "tool_use" and forced.content[0].name == "get_time"
    assert forced.content[0].input == {}

    none = await aclient.messages.create(
        model=MODEL,
        max_tokens=100,
        messages=USER,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "none"},
    )
    assert none.stop_reason == "end_turn" and none.content[0].type == "text"


async def test_models_list_and_retrieve(aclient: anthropic.AsyncAnthropic) -> None:
    page = await aclient.models.list()
    assert [m.id for m in page.data] == [MODEL, "claude-big"]
    assert all(m.type == "model" and m.display_name for m in page.data)
    assert page.has_more is False
    assert page.first_id == MODEL and page.last_id == "claude-big"
    one = await aclient.models.retrieve(MODEL)
    assert one.id == MODEL and one.created_at.year >= 2024
    with pytest.raises(anthropic.NotFoundError):
        await aclient.models.retrieve("claude-nope")


async def test_count_tokens(aclient: anthropic.AsyncAnthropic) -> None:
    out = await aclient.messages.count_tokens(model=MODEL, messages=USER, system="be brief")
    assert out.input_tokens == 3 + 2 + 3 + 4


# -- streams --------------------------------------------------------------------------


async def test_stream_helper_text(sim: SimBackend, aclient: anthropic.AsyncAnthropic) -> None:
    async with aclient.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert pieces == ["echo:", " hello", " brave", " new", " world"]
    assert final.content[0].type == "text"
    assert final.content[0].text == "echo: hello brave new world"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 7
    assert final.usage.output_tokens == 5
    assert sim.stats.open_streams == 0


async def test_stream_raw_events(aclient: anthropic.AsyncAnthropic) -> None:
    stream = await aclient.messages.create(model=MODEL, max_tokens=100, messages=USER, stream=True)
    kinds = [event.type async for event in stream]
    assert kinds == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


async def test_stream_wire_format_has_ping_and_usage(http: httpx.AsyncClient) -> None:
    data = await raw_stream(http, {"model": MODEL, "max_tokens": 50, "messages": USER})
    events = [e for e in data.decode().split("\n\n") if e]
    names = [e.split("\n")[0] for e in events]
    assert names[:3] == ["event: message_start", "event: content_block_start", "event: ping"]
    assert names[-2:] == ["event: message_delta", "event: message_stop"]
    delta = json.loads(events[-2].split("\n")[1].removeprefix("data: "))
    assert delta == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 5},
    }
    start = json.loads(events[0].split("\n")[1].removeprefix("data: "))
    assert start["message"]["usage"]["input_tokens"] == 7


async def test_stream_tool_use(sim: SimBackend, aclient: anthropic.AsyncAnthropic) -> None:
    sim.set_knobs(tool_call=True)
    async with aclient.messages.stream(
        model=MODEL, max_tokens=100, messages=USER, tools=[WEATHER_TOOL]
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert "input_json" in kinds
    assert final.stop_reason == "tool_use"
    [block] = final.content
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "sample", "unit": "celsius"}


# -- faults -----------------------------------------------------------------------------


async def test_overloaded_529(sim: SimBackend, aclient: anthropic.AsyncAnthropic) -> None:
    sim.set_knobs(MODEL, error_status=529, retry_after_s=2.5)
    with pytest.raises(anthropic.InternalServerError) as caught:
        await aclient.messages.create(model=MODEL, max_tokens=10, messages=USER)
    err = caught.value
    assert isinstance(err, anthropic.APIStatusError)
    assert err.status_code == 529
    assert isinstance(err.body, dict)
    assert err.body["error"]["type"] == "overloaded_error"
    assert err.response.headers["retry-after"] == "3"
    assert err.response.headers["retry-after-ms"] == "2500"
    assert sim.stats.faults["error_status"] == 1
    assert sim.stats.by_status[529] == 1
    wire = AnthropicWire()
    payload = err.response.content
    assert wire.retryable(529, payload)
    assert wire.error_message(529, payload) == "HTTP 529: Overloaded (overloaded_error)"


async def test_rate_limited_429(sim: SimBackend, aclient: anthropic.AsyncAnthropic) -> None:
    sim.set_knobs(error_status=429)
    with pytest.raises(anthropic.RateLimitError) as caught:
        await aclient.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.status_code == 429
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.RateLimitError):  # a broken backend fails its probes too
        await aclient.models.list()


async def test_error_rate_answers_api_error(
    sim: SimBackend, aclient: anthropic.AsyncAnthropic
) -> None:
    sim.set_knobs(MODEL, error_rate=1.0)
    with pytest.raises(anthropic.InternalServerError) as caught:
        await aclient.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert caught.value.status_code == 500
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "api_error"


async def test_auth_and_version_headers(
    sim: SimBackend, running: RunningSim, http: httpx.AsyncClient
) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=running.base_url, api_key="wrong", max_retries=0
    ) as bad:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await bad.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "authentication_error"

    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    missing = await http.post(
        "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
    )
    assert missing.status_code == 401
    assert missing.json()["error"]["message"] == "x-api-key header is required"
    no_version = await http.post("/v1/messages", json=body, headers={"x-api-key": KEY})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["type"] == "invalid_request_error"
    ok = await http.post("/v1/messages", json=body, headers=HEADERS)
    assert ok.status_code == 200
    assert ok.headers["request-id"].startswith("req_")
    recorded = sim.last_request()
    assert recorded is not None and recorded.model == MODEL
    assert recorded.headers["x-api-key"] == KEY


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": MODEL, "messages": USER}, 400, "invalid_request_error"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, 400, "invalid_request_error"),
        (
            {"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
            400,
            "invalid_request_error",
        ),
        ({"model": "claude-nope", "max_tokens": 5, "messages": USER}, 404, "not_found_error"),
    ],
)
async def test_bad_requests(
    http: httpx.AsyncClient, body: dict[str, Any], status: int, kind: str
) -> None:
    response = await http.post("/v1/messages", json=body, headers=HEADERS)
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == kind


async def test_unparseable_json_and_unknown_route(http: httpx.AsyncClient) -> None:
    bad = await http.post("/v1/messages", content=b"{nope", headers=HEADERS)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    missing = await http.get("/v1/nothing", headers=HEADERS)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong_method = await http.get("/v1/messages", headers=HEADERS)
    assert wrong_method.status_code == 405


async def test_control_routes_are_shared(sim: SimBackend, http: httpx.AsyncClient) -> None:
    set_knobs = await http.post("/_sim/knobs", json={"model": MODEL, "reply": "from control"})
    assert set_knobs.status_code == 200
    response = await http.post(
        "/v1/messages", json={"model": MODEL, "max_tokens": 9, "messages": USER}, headers=HEADERS
    )
    assert response.json()["content"] == [{"type": "text", "text": "from control"}]
    stats = (await http.get("/_sim/stats")).json()
    assert stats["by_path"] == {"/v1/messages": 1}
    root = await http.get("/", headers={"x-api-key": KEY})
    assert root.status_code == 200 and b"anthropic" in root.content


async def test_cut_stream_never_ends_well(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(reply="one two three four", cut_after=2)
    chunks: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream(
            "POST",
            "/v1/messages",
            json={"model": MODEL, "max_tokens": 50, "messages": USER, "stream": True},
            headers=HEADERS,
        ) as response:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
    data = b"".join(chunks)
    assert b"message_stop" not in data and b"message_delta" not in data
    openai_chunks, done = translate(data)
    assert not done
    assert "[DONE]" not in openai_chunks
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in openai_chunks)
    assert text == "one two"
    assert sim.stats.faults["cut"] == 1


async def test_hang_until_client_gives_up(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(MODEL, hang=True)
    body = {"model": MODEL, "max_tokens": 5, "messages": USER}
    async with trio.open_nursery() as nursery:

        async def call() -> None:
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/v1/messages", json=body, headers=HEADERS, timeout=0.3)

        nursery.start_soon(call)
        with trio.fail_after(5):
            await sim.wait_until(lambda s: s.hanging == 1)
    with trio.fail_after(5):
        await sim.wait_until(lambda s: s.hanging == 0 and s.in_flight == 0)
    assert sim.stats.disconnects == 1


# -- translator round trip ------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 4096])
async def test_translator_round_trip_text(http: httpx.AsyncClient, size: int) -> None:
    body = {"model": MODEL, "max_tokens": 50, "messages": USER}
    data = await raw_stream(http, body)
    chunks, done = translate(data, size)
    assert done and chunks[-1] == "[DONE]"
    content = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1] if c["choices"]
    )
    assert content == "echo: hello brave new world"
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["usage"] == {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    assert len({c["id"] for c in chunks[:-1]}) == 1


async def test_translator_round_trip_paced_and_unicode(
    sim: SimBackend, http: httpx.AsyncClient
) -> None:
    sim.set_knobs(reply="héllo wörld ☕ done", tokens_per_s=500.0, ttft_s=0.01)
    data = await raw_stream(http, {"model": MODEL, "max_tokens": 50, "messages": USER})
    chunks, done = translate(data, 3)
    assert done
    content = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1] if c["choices"]
    )
    assert content == "héllo wörld ☕ done"


async def test_translator_round_trip_tool_call(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(tool_call=True)
    data = await raw_stream(
        http, {"model": MODEL, "max_tokens": 50, "messages": USER, "tools": [WEATHER_TOOL]}
    )
    chunks, done = translate(data)
    assert done
    calls = [
        call
        for c in chunks[:-1]
        if c["choices"]
        for call in c["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert calls[0]["function"]["name"] == "get_weather" and calls[0]["id"].startswith("toolu_")
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert json.loads(arguments) == {"city": "sample", "unit": "celsius"}
    assert chunks[-3]["choices"][0]["finish_reason"] == "tool_calls"


async def test_wire_request_is_accepted_by_the_sim(http: httpx.AsyncClient) -> None:
    """AnthropicWire.call's body and headers, sent to the sim, answer like the real API."""
    wire = AnthropicWire()
    call = wire.call(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "what time is it"},
            ],
            "tools": [{"type": "function", "function": {"name": "get_time"}}],
            "tool_choice": "auto",
            "stream_options": {"include_usage": True},
        },
        MODEL,
    )
    response = await http.post(
        "/v1" + call.path, json=call.body, headers={**call.headers, "x-api-key": KEY}
    )
    assert response.status_code == 200
    out = json.loads(wire.answer(response.content, MODEL))
    assert out["choices"][0]["message"]["content"] == "echo: what time is it"
    assert out["usage"]["prompt_tokens"] == 3 + 2 + 3 + 4


async def test_stream_error_event_after_n_chunks(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(reply="one two three four", stream_error_after=1)
    data = await raw_stream(http, {"model": MODEL, "max_tokens": 50, "messages": USER})
    assert b"event: error" in data and b"overloaded_error" in data
    assert b"message_stop" not in data
    translator = AnthropicWire().translator(MODEL)
    translator.feed(data)
    assert translator.error == "Overloaded"


async def test_stream_stall_keeps_the_stream_open(sim: SimBackend, http: httpx.AsyncClient) -> None:
    sim.set_knobs(reply="one two three four", stall_after=1)
    chunks: list[bytes] = []
    body = {"model": MODEL, "max_tokens": 50, "messages": USER, "stream": True}
    with trio.move_on_after(0.5) as waited:  # a stalled stream never ends by itself
        async with http.stream("POST", "/v1/messages", json=body, headers=HEADERS) as r:
            async for chunk in r.aiter_raw():
                chunks.append(chunk)
    assert waited.cancelled_caught
    data = b"".join(chunks)
    assert b'"text": "one"' in data or b'"text":"one"' in data
    assert b"two" not in data and b"message_stop" not in data
    assert sim.stats.faults["stall"] == 1
