"""Fault knobs as a client sees them: statuses, cut connections, hangs, disconnects."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import trio

from llmswitch.sim import RunningSim, SimBackend, serve_sim

USER: Any = [{"role": "user", "content": "ping"}]


async def test_error_status_500_raises_internal_server_error(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs("qwen-small", error_status=500)

    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(model="qwen-small", messages=USER)
    ok = await client.chat.completions.create(model="big-model", messages=USER)

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"
    assert ok.choices[0].message.content == "echo: ping"
    assert sim.stats.faults["error_status"] == 1
    assert sim.stats.by_status == {500: 1, 200: 1}


async def test_rate_limit_with_retry_after(sim: SimBackend, client: openai.AsyncOpenAI) -> None:
    sim.set_knobs(error_status=429, retry_after_s=2.5)

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="big-model", messages=USER, stream=True)

    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "3"
    assert error.response.headers["retry-after-ms"] == "2500"
    body: Any = error.body
    assert set(body) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (503, openai.InternalServerError),
    ],
)
async def test_error_status_maps_to_sdk_exception(
    sim: SimBackend, client: openai.AsyncOpenAI, status: int, exception: type[Exception]
) -> None:
    sim.set_knobs(error_status=status)

    with pytest.raises(exception):
        await client.chat.completions.create(model="qwen-small", messages=USER)


async def _outcomes(client: openai.AsyncOpenAI, count: int) -> list[bool]:
    results = []
    for _ in range(count):
        try:
            await client.chat.completions.create(model="qwen-small", messages=USER)
        except openai.InternalServerError:
            results.append(False)
        else:
            results.append(True)
    return results


async def test_error_rate_is_seeded_and_replayable(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs(error_rate=0.5)
    sim.reseed(1234)
    first = await _outcomes(client, 30)
    sim.reseed(1234)
    second = await _outcomes(client, 30)

    assert first == second
    assert 0 < first.count(False) < 30
    assert sim.stats.faults["error_rate"] == 2 * first.count(False)


@pytest.mark.parametrize("tokens_per_s", [0, 1000])
async def test_cut_after_ends_stream_without_done(
    sim: SimBackend, client: openai.AsyncOpenAI, tokens_per_s: float
) -> None:
    sim.set_knobs(
        "qwen-small", reply="alpha beta gamma delta", cut_after=2, tokens_per_s=tokens_per_s
    )
    received: list[str] = []

    stream = await client.chat.completions.create(model="qwen-small", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "alpha beta"
    assert sim.stats.faults["cut"] == 1


async def test_cut_after_zero_sends_only_headers(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs(cut_after=0)

    stream = await client.chat.completions.create(model="qwen-small", messages=USER, stream=True)
    with pytest.raises(openai.APIConnectionError):
        async for _chunk in stream:
            pytest.fail("no chunk expected")


async def test_cut_after_non_stream_truncates_body(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs(cut_after=1)

    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="qwen-small", messages=USER)
    # "echo: ping" is 2 tokens: shorter than a cut after 3, so it arrives whole.
    sim.set_knobs(cut_after=3)
    whole = await client.chat.completions.create(model="qwen-small", messages=USER)
    assert whole.choices[0].message.content == "echo: ping"


async def test_hang_ends_when_client_gives_up(sim: SimBackend, client: openai.AsyncOpenAI) -> None:
    sim.set_knobs("big-model", hang=True)

    async with trio.open_nursery() as nursery:

        async def call() -> None:
            await client.chat.completions.create(model="big-model", messages=USER)

        nursery.start_soon(call)
        with trio.fail_after(5):
            await sim.wait_until(lambda s: s.hanging == 1)
        nursery.cancel_scope.cancel()  # the client gives up and closes its connection

    with trio.fail_after(5):
        await sim.wait_until(lambda s: s.hanging == 0 and s.in_flight == 0)
    assert sim.stats.disconnects == 1
    assert sim.stats.faults["hang"] == 1
    assert sim.stats.by_status == {}


async def test_client_timeout_against_hang(sim: SimBackend, running: RunningSim) -> None:
    sim.set_knobs(hang=True)
    async with openai.AsyncOpenAI(
        base_url=running.openai_base_url, api_key="x", max_retries=0, timeout=0.2
    ) as impatient:
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="qwen-small", messages=USER)

    with trio.fail_after(5):
        await sim.wait_until(lambda s: s.in_flight == 0)


async def test_disconnect_mid_stream_stops_the_stream(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    # 200 tokens at 50/s would take 4 s if the simulator ignored the disconnect.
    sim.set_knobs(reply=" ".join(["word"] * 200), tokens_per_s=50)
    stream = await client.chat.completions.create(model="qwen-small", messages=USER, stream=True)
    seen = 0
    async for _chunk in stream:
        seen += 1
        if seen == 3:
            break
    await stream.close()

    with trio.fail_after(2):
        await sim.wait_until(lambda s: s.open_streams == 0 and s.in_flight == 0)
    assert sim.stats.disconnects == 1
    assert sim.stats.by_status == {200: 1}


async def _hang_until_server_stops(sim: SimBackend, stop: Any, **serve_kwargs: Any) -> list[str]:
    """Start a server, hang one request on it, call stop(scope), report client errors."""
    sim.set_knobs(hang=True)
    errors: list[str] = []
    server_scope = trio.CancelScope()

    async def serve(task_status: Any) -> None:
        with server_scope:
            await serve_sim(sim, task_status=task_status, **serve_kwargs)

    async def call(base_url: str) -> None:
        async with httpx.AsyncClient(timeout=30) as raw:
            try:
                await raw.get(base_url + "/v1/models")
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            running: RunningSim = await nursery.start(serve)
            nursery.start_soon(call, running.base_url)
            await sim.wait_until(lambda s: s.hanging == 1)
            stop(server_scope)
            # The client is not cancelled: it must be let go by the server.
    assert sim.stats.hanging == 0
    return errors


async def test_hang_ends_when_server_is_cancelled(sim: SimBackend) -> None:
    errors = await _hang_until_server_stops(sim, lambda scope: scope.cancel())
    assert errors == ["RemoteProtocolError"]


async def test_hang_ends_on_graceful_shutdown(sim: SimBackend) -> None:
    trigger = trio.Event()
    errors = await _hang_until_server_stops(
        sim,
        lambda _scope: trigger.set(),
        shutdown_trigger=trigger.wait,
        graceful_timeout=0.1,
    )
    assert errors == ["RemoteProtocolError"]


async def test_held_streams_stop_after_their_first_event_until_released(
    sim: SimBackend, client: openai.AsyncOpenAI
) -> None:
    sim.set_knobs(reply="one two three", tokens_per_s=100)
    sim.hold_streams()
    texts: list[str] = []

    async def read_stream() -> None:
        stream = await client.chat.completions.create(
            model="qwen-small", messages=USER, stream=True
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                texts.append(chunk.choices[0].delta.content)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_stream)
        with trio.fail_after(5):
            while not texts:  # noqa: ASYNC110 (the stream's own progress)
                await trio.sleep(0.01)
        await trio.sleep(0.2)  # twenty tokens' worth of pacing: nothing more comes
        assert texts == ["one"] and sim.stats.open_streams == 1
        sim.release_streams()
    assert "".join(texts).split() == ["one", "two", "three"]
    assert sim.stats.open_streams == 0
