"""Budgets that hold under concurrency, per key, and alerts that reach a webhook."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio

from llmswitch.routing.budget import prompt_bound
from llmswitch.sim.knobs import ModelKnobs
from tests.e2e.harness import Stack, model, start_stack

HELLO = [{"role": "user", "content": "hello there"}]
#: $10 per million prompt tokens, $100 per million answer tokens.
PRICES = {"cost_input_per_mtok": 10.0, "cost_output_per_mtok": 100.0}
MAX_TOKENS = 20
#: What each call holds: its prompt's byte bound and MAX_TOKENS of output.
WORST = (prompt_bound({"messages": HELLO}) * 10.0 + MAX_TOKENS * 100.0) / 1e6


def priced_models() -> list[dict[str, Any]]:
    return [model("small", "local", 20), model("big", "cloud", 90, **PRICES)]


async def metered_stack(
    nursery: trio.Nursery, tmp_path: Path, budget: dict[str, Any], **config: Any
) -> Stack:
    """Every answer is longer than MAX_TOKENS, so each call costs about its worst case."""
    return await start_stack(
        nursery,
        tmp_path,
        knobs=ModelKnobs(reply="word " * 40, ttft_s=0.05),
        models=priced_models(),
        routing={"metered_cloud": ["*"]},
        budget=budget,
        **config,
    )


async def ask_big(client: openai.AsyncOpenAI, statuses: list[int]) -> None:
    try:
        await client.chat.completions.create(model="big", messages=HELLO, max_tokens=MAX_TOKENS)
        statuses.append(200)
    except openai.APIStatusError as err:
        assert err.status_code == 403 and err.code == "budget_exceeded", err.message
        statuses.append(403)


def ledger_summary(stack: Stack) -> dict[str, Any]:
    summary: dict[str, Any] = stack.gw.supervisor.child("ledger").actor.summary()  # type: ignore[union-attr]
    return summary


async def test_40_concurrent_requests_never_spend_past_a_small_daily_budget(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    daily = 0.01  # about 3.8 worst cases
    stack = await metered_stack(nursery, tmp_path, {"daily_usd": daily})
    client = stack.client()
    statuses: list[int] = []
    async with trio.open_nursery() as clients:
        for _ in range(40):
            clients.start_soon(ask_big, client, statuses)
    rows = [r for r in await stack.rows() if r.requested_model == "big"]
    spent = sum(r.cost_usd for r in rows)
    # The bound: spend <= daily_usd, because every call held its worst case before it was
    # sent (all holds in one ledger step each) and none cost more than it held.
    assert spent <= daily
    assert all(r.cost_usd <= WORST for r in rows)
    served = statuses.count(200)
    assert served >= int(daily // WORST) and statuses.count(403) == 40 - served
    assert sorted(r.status for r in rows) == sorted(statuses)
    # Every hold was settled or released: nothing stays held.
    assert ledger_summary(stack)["holds"] == 0
    assert stack.gw.views.budget.value.spent_day_usd == pytest.approx(spent)


async def test_a_key_budget_stops_that_key_only(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIGHT_KEY", "tight-key")
    monkeypatch.setenv("LOOSE_KEY", "loose-key")
    clients = [
        {"name": "tight", "key_env": "TIGHT_KEY", "daily_usd": WORST * 1.5},
        {"name": "loose", "key_env": "LOOSE_KEY"},
    ]
    stack = await metered_stack(nursery, tmp_path, {}, clients=clients)
    tight = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key="tight-key", max_retries=0)
    loose = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key="loose-key", max_retries=0)
    statuses: list[int] = []
    for client in (tight, tight, loose, loose):
        await ask_big(client, statuses)
    assert statuses == [200, 403, 200, 200]
    rows = await stack.rows()
    assert [(r.client, r.status) for r in rows] == [
        ("tight", 200),
        ("tight", 403),
        ("loose", 200),
        ("loose", 200),
    ]


async def test_a_client_leaving_mid_stream_gives_its_hold_back(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await metered_stack(nursery, tmp_path, {"daily_usd": 1.0})
    stack.sim("cloud").set_knobs(tokens_per_s=20)
    body = {"model": "big", "messages": HELLO, "max_tokens": MAX_TOKENS, "stream": True}
    async with stack.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        async for _ in r.aiter_raw():
            break
    with trio.fail_after(10):
        while ledger_summary(stack)["holds"]:  # noqa: ASYNC110 (the actor's own state)
            await trio.sleep(0.01)
    (row,) = await stack.rows()
    assert row.status == 499


class Receiver:
    """A loopback HTTP endpoint that keeps the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/hook"
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await stream.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        if head.startswith(b"GET"):  # a health probe: an empty model list
            models = b'{"object": "list", "data": []}'
            await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n" + models)
            await stream.aclose()
            return
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += await stream.receive_some(65536)
        self.bodies.append(json.loads(body))
        await self.answer(stream)

    async def answer(self, stream: trio.SocketStream) -> None:
        await stream.send_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await stream.aclose()


class GatedUpstream(Receiver):
    """An upstream that parks each chat request until ``release`` is set, then answers
    MAX_TOKENS tokens: a parked call has had its budget hold granted and used to send."""

    def __init__(self) -> None:
        super().__init__()
        self.parked = 0
        self.arrived = trio.Event()
        self.closed = trio.Event()
        self.release = trio.Event()

    def backend(self) -> dict[str, Any]:
        url = self.url.replace("/hook", "/v1")
        return {"name": "gated", "kind": "openai", "base_url": url, "locality": "cloud"} | {
            "first_token_s": 60,
            "total_s": 60,
        }

    async def answer(self, stream: trio.SocketStream) -> None:
        self.parked += 1
        self.arrived.set()
        async with trio.open_nursery() as nursery:

            async def until_closed() -> None:
                while await stream.receive_some(65536):
                    pass
                self.closed.set()
                nursery.cancel_scope.cancel()

            nursery.start_soon(until_closed)
            await self.release.wait()
            usage = {"prompt_tokens": 5, "completion_tokens": MAX_TOKENS, "total_tokens": 25}
            message = {"role": "assistant", "content": "word " * MAX_TOKENS}
            choice = {"index": 0, "message": message, "finish_reason": "length"}
            answer = json.dumps(
                {"id": "c", "object": "chat.completion", "created": 0}
                | {"model": "big", "choices": [choice], "usage": usage}
            ).encode()
            head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            head += f"content-length: {len(answer)}\r\n\r\n"
            await stream.send_all(head.encode() + answer)
            nursery.cancel_scope.cancel()
        await stream.aclose()


async def gated_stack(
    nursery: trio.Nursery, tmp_path: Path, budget: dict[str, Any]
) -> tuple[Stack, GatedUpstream]:
    """ "big" served by a GatedUpstream."""
    upstream = GatedUpstream()
    await nursery.start(upstream.serve)
    stack = await start_stack(
        nursery,
        tmp_path,
        models=[model("small", "local", 20), model("big", "gated", 90, **PRICES)],
        extra_backends=[upstream.backend()],
        routing={"metered_cloud": ["*"]},
        budget=budget,
    )
    return stack, upstream


async def test_alerts_log_set_the_gauge_and_post_to_the_webhook_once_per_threshold(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver()
    await nursery.start(receiver.serve)
    daily = WORST * 4.2
    budget = {"daily_usd": daily, "alert_at": [0.5, 0.8, 1.0], "webhook_url": receiver.url}
    stack = await metered_stack(nursery, tmp_path, budget)
    statuses: list[int] = []
    with caplog.at_level(logging.WARNING, logger="llmswitch.actors.alerts"):
        for _ in range(6):
            await ask_big(stack.client(), statuses)
        with trio.fail_after(10):
            while len(receiver.bodies) < 2:  # noqa: ASYNC110 (a list filled by the receiver)
                await trio.sleep(0.01)
    assert statuses[:4] == [200] * 4 and statuses[-1] == 403
    hooks = [(b["scope"], b["period"], b["threshold"]) for b in receiver.bodies]
    assert hooks == [("all", "day", 0.5), ("all", "day", 0.8)]
    assert receiver.bodies[0]["limit_usd"] == pytest.approx(daily)
    warnings = [r.getMessage() for r in caplog.records if "budget: all day" in r.getMessage()]
    assert len(warnings) == 2
    await stack.rows()  # the gauge's ratios are refreshed as the ledger flushes
    async with httpx.AsyncClient(base_url=stack.url) as http:
        metrics = (await http.get("/metrics")).text
    gauge = next(
        line
        for line in metrics.splitlines()
        if line.startswith('llmswitch_budget_used_ratio{period="day",scope="all"}')
    )
    assert 0.8 <= float(gauge.split()[-1]) <= 1.0


async def test_a_task_type_budget_stops_that_task_type(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    budget = {"task_daily_usd": {"conversation": WORST * 1.5}}
    stack = await metered_stack(nursery, tmp_path, budget)
    statuses: list[int] = []
    for _ in range(2):
        await ask_big(stack.client(), statuses)
    assert statuses == [200, 403]
    code = [{"role": "user", "content": "Write a python function that reverses a linked list"}]
    await stack.client().chat.completions.create(model="big", messages=code, max_tokens=MAX_TOKENS)
    rows = await stack.rows()
    assert [(r.task, r.status) for r in rows] == [
        ("conversation", 200),
        ("conversation", 403),
        ("code", 200),
    ]


async def test_holds_of_calls_in_flight_survive_a_ledger_restart(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    daily = 0.01  # about 3.8 worst cases: 3 calls fit
    stack, upstream = await gated_stack(nursery, tmp_path, {"daily_usd": daily})
    fit = int(daily // WORST)
    client = stack.client(timeout=120)
    statuses: list[int] = []
    async with trio.open_nursery() as clients:
        for _ in range(40):
            clients.start_soon(ask_big, client, statuses)
        with trio.fail_after(60):
            while len(statuses) < 40 - fit or upstream.parked < fit:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert statuses == [403] * (40 - fit) and ledger_summary(stack)["holds"] == fit
        stack.gw.ledger.try_cast(object())  # type: ignore[arg-type]  # crashes the actor
        ledger = stack.gw.supervisor.child("ledger")
        with trio.fail_after(60):
            while ledger.restarts < 1 or ledger.state != "running":  # noqa: ASYNC110
                await trio.sleep(0.01)
        # The restarted ledger still holds the money promised to the calls in flight.
        assert ledger_summary(stack)["holds"] == fit
        second: list[int] = []
        async with trio.open_nursery() as wave:
            for _ in range(40):
                wave.start_soon(ask_big, client, second)
        assert second == [403] * 40
        upstream.release.set()
    rows = [r for r in await stack.rows() if r.requested_model == "big"]
    # The bound: spend <= daily_usd, as without the restart (each call held its worst case,
    # and no hold was forgotten by the restarted ledger).
    assert sum(r.cost_usd for r in rows) <= daily
    assert statuses.count(200) == fit and upstream.parked == fit
    assert ledger_summary(stack)["holds"] == 0


async def test_a_client_leaving_before_any_answer_gives_its_hold_back(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, upstream = await gated_stack(nursery, tmp_path, {"daily_usd": 1.0})
    body = {"model": "big", "messages": HELLO, "max_tokens": MAX_TOKENS, "stream": True}
    async with stack.http() as http:
        with trio.CancelScope() as leave:

            async def leave_once_the_upstream_has_it() -> None:
                await upstream.arrived.wait()
                assert ledger_summary(stack)["holds"] == 1
                leave.cancel()

            async with trio.open_nursery() as client:
                client.start_soon(leave_once_the_upstream_has_it)
                await http.post("/v1/chat/completions", json=body)
    with trio.fail_after(10):
        await upstream.closed.wait()  # the gateway closed its upstream call
        while ledger_summary(stack)["holds"]:  # noqa: ASYNC110 (the actor's own state)
            await trio.sleep(0.01)
    (row,) = await stack.rows()
    assert (row.status, row.cost_usd) == (499, 0.0)
