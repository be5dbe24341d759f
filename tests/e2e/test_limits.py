"""Rate limits through the gateway: client keys, upstream 429 storms, quota headers."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai
import pytest
import trio

from tests.e2e.harness import Stack, model, start_stack

HELLO = [{"role": "user", "content": "hello there"}]
IDE_KEY = "ide-secret-key"


async def stack_with_ide_client(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rpm: int
) -> Stack:
    """A gateway with one ``[[clients]]`` entry, "ide", allowed ``rpm`` requests a minute."""
    monkeypatch.setenv("IDE_KEY", IDE_KEY)
    clients = [{"name": "ide", "key_env": "IDE_KEY", "rpm": rpm}]
    return await start_stack(nursery, tmp_path, clients=clients)


async def test_a_client_over_its_rpm_gets_429_with_retry_after(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await stack_with_ide_client(nursery, tmp_path, monkeypatch, rpm=2)
    ide = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=IDE_KEY, max_retries=0)
    for _ in range(2):
        await ide.chat.completions.create(model="small", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as err:
        await ide.chat.completions.create(model="small", messages=HELLO)
    assert int(err.value.response.headers["retry-after"]) >= 1
    assert err.value.code == "client_rate_limited"
    # Dropping the key does not escape the limit: with keys configured, no key is a 401.
    with pytest.raises(openai.AuthenticationError):
        await stack.client().chat.completions.create(model="small", messages=HELLO)
    rows = await stack.rows()
    assert [r.client for r in rows[:3]] == ["ide", "ide", "ide"]
    assert [r.status for r in rows] == [200, 200, 429, 401]
    assert all(IDE_KEY not in (r.error or "") for r in rows)


async def test_an_anthropic_sdk_client_is_known_by_its_x_api_key(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await stack_with_ide_client(nursery, tmp_path, monkeypatch, rpm=1)
    ide = anthropic.AsyncAnthropic(base_url=stack.url, api_key=IDE_KEY, max_retries=0)
    await ide.messages.create(model="small", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError):
        await ide.messages.create(model="small", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    rows = await stack.rows()
    assert [(r.client, r.status) for r in rows] == [("ide", 200), ("ide", 429)]


async def test_a_429_storm_cools_the_backend_and_requests_go_elsewhere(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    models = [model("small", "local", 20, fallbacks=["coder"]), model("coder", "lan", 60)]
    stack = await start_stack(nursery, tmp_path, models=models)
    stack.sim("local").set_knobs(error_status=429, retry_after_s=30)
    client = stack.client()
    for _ in range(5):
        completion = await client.chat.completions.create(model="small", messages=HELLO)
        assert completion.model == "coder"
    # The first 429 put "local" in a 30 s cooldown: it was asked once, not five times.
    assert stack.sim("local").stats.by_path["/v1/chat/completions"] == 1
    async with stack.http() as http:
        limits = next(
            a
            for a in (await http.get("/debug")).json()["supervisor"]["actors"]
            if a["name"] == "limits"
        )
    assert limits["summary"]["cooldown_s"]["local"] > 25
