"""Bad input gets the right OpenAI-style error, and still a ledger row."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import trio

from llmswitch.sim.knobs import ModelKnobs
from tests.e2e.harness import Stack, model, start_stack
from tests.e2e.test_health import ready_body


async def test_malformed_json_is_400(stack: Stack) -> None:
    async with stack.http() as http:
        resp = await http.post("/v1/chat/completions", content=b"{not json")
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "invalid_json" and err["type"] == "invalid_request_error"
    assert set(err) >= {"message", "type", "param", "code"}


async def test_schema_error_names_the_field(stack: Stack) -> None:
    body = {"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]}
    async with stack.http() as http:
        resp = await http.post("/v1/chat/completions", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages[0].role"


async def test_missing_messages_is_400(stack: Stack) -> None:
    async with stack.http() as http:
        resp = await http.post("/v1/chat/completions", json={"model": "auto"})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages"


async def test_oversized_body_is_413(stack: Stack) -> None:
    limit = stack.gw.config.server.max_body_bytes
    body = b'{"model":"auto","messages":[{"role":"user","content":"' + b"x" * limit + b'"}]}'
    async with stack.http() as http:
        resp = await http.post("/v1/chat/completions", content=body)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "request_too_large"


async def test_every_rejected_request_has_its_ledger_row(stack: Stack) -> None:
    async with stack.http() as http:
        for content in (b"{", b"[]", b'{"model":"auto","messages":[]}'):
            assert (await http.post("/v1/chat/completions", content=content)).status_code == 400
    rows = await stack.rows()
    assert [r.status for r in rows] == [400, 400, 400]
    assert len({r.request_id for r in rows}) == 3


async def test_health_and_debug(stack: Stack) -> None:
    async with stack.http() as http:
        await ready_body(http)
        health = await http.get("/health")
        debug = (await http.get("/debug")).json()
        metrics = await http.get("/metrics")
    assert health.status_code == 200
    assert sorted(health.json()["backends_up"]) == ["cloud", "lan", "local"]
    actors = [a["name"] for a in debug["supervisor"]["actors"]]
    assert actors == ["ledger", "keys", "health", "limits", "pool", "classifier", "router"]
    assert all(a["state"] == "running" for a in debug["supervisor"]["actors"])
    assert debug["backends"]["local"]["pool"]["breaker"] == "closed"
    assert "llmswitch_backend_up" in metrics.text


async def test_over_max_in_flight_is_shed_at_once_with_retry_after(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(
        nursery, tmp_path, knobs=ModelKnobs(ttft_s=30), server={"port": 0, "max_in_flight": 2}
    )
    async with stack.http() as http:
        body = {"model": "small", "messages": [{"role": "user", "content": "wait"}]}
        async with trio.open_nursery() as slow:
            for _ in range(2):
                slow.start_soon(partial(http.post, "/v1/chat/completions", json=body))
            with trio.fail_after(10):
                while stack.gw.in_flight < 2:  # noqa: ASYNC110 (a counter, not an event)
                    await trio.sleep(0.01)
            shed = await http.post("/v1/chat/completions", json=body)
            slow.cancel_scope.cancel()
    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert shed.json()["error"]["code"] == "overloaded"


async def test_a_backend_key_quoted_back_by_the_provider_reaches_no_one(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-llmswitch-test-0123456789abcdef"
    monkeypatch.setenv("LOCAL_KEY", secret)
    stack = await start_stack(
        nursery, tmp_path, models=[model("small", "local", 20)], key_envs={"local": "LOCAL_KEY"}
    )
    stack.sim("local").api_key = "sk-the-right-one"  # it answers 401, quoting what it got
    async with stack.http() as http:
        resp = await http.post(
            "/v1/chat/completions",
            json={"model": "small", "messages": [{"role": "user", "content": "hi"}]},
        )
        debug = (await http.get("/debug")).text
    assert resp.status_code == 503
    assert "Incorrect API key provided: ***" in resp.text
    rows = await stack.rows()
    assert rows[-1].status == 503 and "Incorrect API key" in (rows[-1].error or "")
    assert all(secret not in text for text in (resp.text, debug, rows[-1].error or ""))
