"""Disconnects under load, actor crashes, and the end of a stream are all survivable."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from llmswitch.routing.performance import ewma
from llmswitch.sim.knobs import ModelKnobs
from tests.e2e.harness import Stack, start_stack

HELLO = [{"role": "user", "content": "hello there"}]
STREAM_BODY = {"model": "small", "stream": True, "messages": HELLO}


async def test_200_clients_disconnecting_mid_stream_leak_nothing(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # Slow streams, so every client leaves while its upstream is still sending.
    stack = await start_stack(
        nursery, tmp_path, knobs=ModelKnobs(tokens_per_s=20, reply="word " * 200)
    )
    limits = httpx.Limits(max_connections=250)
    async with httpx.AsyncClient(base_url=stack.url, timeout=30, limits=limits) as http:

        async def leave_after_first_event() -> None:
            async with http.stream("POST", "/v1/chat/completions", json=STREAM_BODY) as r:
                assert r.status_code == 200
                async for _ in r.aiter_raw():
                    break

        async with trio.open_nursery() as clients:
            for _ in range(200):
                clients.start_soon(leave_after_first_event)

    sim = stack.sim("local")
    with trio.fail_after(15):
        await sim.wait_until(lambda s: s.open_streams == 0)
        while stack.gw.in_flight:  # noqa: ASYNC110 (a counter, not an event)
            await trio.sleep(0.01)
    assert sim.stats.disconnects == 200
    # The gateway's upstream pool (100 connections) would be exhausted if slots leaked.
    sim.set_knobs(tokens_per_s=0, reply="fine")
    client = stack.client()
    for _ in range(20):
        completion = await client.chat.completions.create(model="small", messages=HELLO)
        assert completion.choices[0].message.content == "fine"
    rows = await stack.rows()
    assert len(rows) == 220
    assert sorted({r.status for r in rows}) == [200, 499]
    assert stack.gw.views.pool.value.backends["local"].in_flight == 0


async def test_a_crashed_actor_is_restarted_and_requests_keep_succeeding(stack: Stack) -> None:
    client = stack.client()
    await client.chat.completions.create(model="auto", messages=HELLO)
    # Not a message the router understands: its handler raises, the actor crashes.
    stack.gw.router.try_cast(object())  # type: ignore[arg-type]
    stack.gw.classifier.try_cast(object())  # type: ignore[arg-type]
    for _ in range(5):
        completion = await client.chat.completions.create(model="auto", messages=HELLO)
        assert completion.choices[0].message.content == "echo: hello there"
    # A restart waits out its backoff (0.5 to 1 s the first time); requests did not.
    children = [stack.gw.supervisor.child(n) for n in ("router", "classifier")]
    with trio.fail_after(5):
        while any(c.state != "running" for c in children):  # noqa: ASYNC110 (no event)
            await trio.sleep(0.05)
    async with stack.http() as http:
        debug = (await http.get("/debug")).json()
    actors = {a["name"]: a for a in debug["supervisor"]["actors"]}
    for name in ("router", "classifier"):
        assert actors[name]["restarts"] == 1
        assert actors[name]["state"] == "running"
        assert "AttributeError" in actors[name]["last_error"]
    assert len(await stack.rows()) == 6


async def test_a_restarted_pool_remembers_model_performance_from_the_ledger(
    stack: Stack,
) -> None:
    client = stack.client()
    for _ in range(3):
        await client.chat.completions.create(model="small", messages=HELLO)
    rows = await stack.rows()
    expected = None
    for r in rows:
        expected = ewma(expected, r.latency_ms or 0.0)
    pool = stack.gw.views.pool
    assert pool.value.models["small"].latency_ms is not None
    stack.gw.pool.try_cast(object())  # type: ignore[arg-type]  # crashes the pool actor
    with trio.fail_after(5):
        child = stack.gw.supervisor.child("pool")
        # Running again: the new actor published its empty view before it said started.
        while child.restarts == 0 or child.state != "running":  # noqa: ASYNC110 (no event)
            await trio.sleep(0.05)
        while pool.value.models["small"].latency_ms is None:  # noqa: ASYNC110
            await trio.sleep(0.05)
    seeded = pool.value.models["small"]
    assert seeded.latency_ms == pytest.approx(expected)
    assert seeded.success == 1.0
    assert pool.value.models["medium"].latency_ms is None  # never used
