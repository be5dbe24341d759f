"""Gateway processes sharing one Redis behave as one: breakers, keys, settings, presence.

Real processes (``llmswitch serve``) on loopback ports, the system Redis under a key
prefix of the test's own, the simulators in the test's loop. Every wait is for a
condition, bounded by ``fail_after``; nothing asserts how fast a change spread.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coredis
import httpx
import openai
import pytest
import trio

from llmswitch.sim.server import RunningSim
from tests.e2e.harness import closed_port, stack_config, start_sims, write_config
from tests.e2e.test_shutdown import wait_until_serving

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Bound on any one change reaching the other instances (it takes milliseconds).
SPREAD_S = 15


@dataclass
class Instance:
    url: str
    proc: trio.Process
    config: Path

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def debug(self) -> dict[str, Any]:
        async with self.http() as http:
            answer: dict[str, Any] = (await http.get("/debug")).json()
            return answer


async def until(check: Callable[[], Any], what: str) -> None:
    """Wait (bounded) until ``await check()`` is true."""
    try:
        with trio.fail_after(SPREAD_S):
            while True:
                if await check():
                    return
                await trio.sleep(0.05)
    except trio.TooSlowError:
        raise AssertionError(f"not within {SPREAD_S} s: {what}") from None


@asynccontextmanager
async def fleet(
    sims: dict[str, RunningSim],
    tmp_path: Path,
    n: int,
    *,
    redis_url: str = REDIS_URL,
    cluster: Mapping[str, Any] = {},
    **config: Any,
) -> AsyncIterator[list[Instance]]:
    """``n`` gateway processes on one fresh Redis prefix, killed and cleaned up after
    (a private ``redis_url``'s keys go with its server)."""
    prefix = f"llmswitch-test-{uuid.uuid4().hex[:12]}"
    instances: list[Instance] = []
    try:
        for i in range(n):
            port = closed_port()
            cfg = stack_config(
                sims,
                tmp_path / f"ledger-{i}.db",
                cluster={"redis_url": redis_url, "prefix": prefix, **cluster},
                breaker={"consecutive_failures": 2, "cooldown_s": 60},
                **config,
            )
            path = tmp_path / f"llmswitch-{i}.toml"
            server = cfg.server.model_copy(update={"port": port})
            write_config(path, cfg.model_copy(update={"server": server}))
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "llmswitch", "serve", "--config", str(path)],
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
            )
            instances.append(Instance(f"http://127.0.0.1:{port}", proc, path))
        for inst in instances:
            await wait_until_serving(inst.url, inst.proc)
        await until(lambda: _all_see(instances), "every instance sees every other")
        yield instances
    finally:
        await stop_all(instances)
        if redis_url == REDIS_URL:
            async with coredis.Redis.from_url(REDIS_URL, decode_responses=True) as redis:
                keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await redis.delete(keys)


async def stop_all(instances: list[Instance]) -> list[int | None]:
    """SIGTERM each instance still running (SIGKILL past a bound); their exit codes."""
    for inst in instances:
        if inst.proc.returncode is None:
            inst.proc.send_signal(signal.SIGTERM)
    for inst in instances:
        with trio.move_on_after(30):
            await inst.proc.wait()
        if inst.proc.returncode is None:
            inst.proc.kill()
            await inst.proc.wait()
    return [inst.proc.returncode for inst in instances]


async def _all_see(instances: list[Instance]) -> bool:
    for inst in instances:
        peers = (await inst.debug())["fleet"]["peers"]
        if sum(p["state"] == "up" for p in peers) < len(instances):
            return False
    return True


async def breaker(inst: Instance, backend: str) -> str:
    state: str = (await inst.debug())["backends"][backend]["pool"]["breaker"]
    return state


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


CLIENT_KEY = "lsk-configured-" + "x" * 20


async def test_a_key_created_on_one_instance_works_on_another_until_revoked(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    digest = hashlib.sha256(CLIENT_KEY.encode()).hexdigest()
    clients = [{"name": "ops", "key_sha256": digest}]
    async with fleet(await start_sims(nursery), tmp_path, 2, clients=clients) as (a, b):
        async with a.http() as http:
            made = await http.post("/admin/keys", json={"name": "alice"})
            assert made.status_code == 201, made.text
            key = made.json()["key"]

        async def works(inst: Instance, key: str) -> bool:
            client = openai.AsyncOpenAI(base_url=inst.url + "/v1", api_key=key, max_retries=0)
            try:
                await client.chat.completions.create(
                    model="small", messages=[{"role": "user", "content": "hi"}]
                )
            except openai.AuthenticationError:
                return False
            return True

        await until(lambda: works(b, key), "the key works on b")
        async with a.http() as http:
            assert (await http.delete("/admin/keys/alice")).status_code == 200
        await until(lambda: _not(works(b, key)), "the revoked key stops working on b")

        # Revoked with the offline CLI in b's own store: it stops working on a too.
        async with b.http() as http:
            key = (await http.post("/admin/keys", json={"name": "bob"})).json()["key"]
        await until(lambda: works(a, key), "b's key works on a")
        cli = [sys.executable, "-m", "llmswitch", "keys", "revoke", "bob", "--config"]
        assert (await trio.run_process([*cli, str(b.config)])).returncode == 0
        await until(lambda: _not(works(a, key)), "the key revoked by the CLI stops on a")


async def _not(value: Any) -> bool:
    return not await value


async def test_three_instances_share_a_breaker_and_settings_and_see_a_killed_peer_gone(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    sims = await start_sims(nursery)
    async with fleet(sims, tmp_path, 3) as (a, b, c):
        # Only "a" sends work to the LAN backend, which now fails every request.
        sims["lan"].sim.set_knobs("coder", error_status=500)
        async with a.http() as http:
            body = {"model": "coder", "messages": [{"role": "user", "content": "hi"}]}

            async def a_opened() -> bool:
                await http.post("/v1/chat/completions", json=body)
                return await breaker(a, "lan") == "open"

            await until(a_opened, "a's breaker opens")
        for inst in (b, c):
            await until(lambda inst=inst: _is(breaker(inst, "lan"), "open"), "breakers open")
        assert (await breaker(b, "local")) == "closed"

        async with a.http() as http:
            answer = await http.put("/admin/routing/profile", json={"profile": "eco"})
            assert answer.status_code == 200, answer.text
            rule = {"pattern": "fleet-test", "action": "route", "target": "coder"}
            assert (await http.put("/admin/routing/rules/fleet", json=rule)).status_code == 200
            for key, value in (("routing.block", ["big"]), ("budget.daily_usd", 0.25)):
                put = await http.put(f"/admin/routing/settings/{key}", json={"value": value})
                assert put.status_code == 200, put.text

        async def settled(inst: Instance) -> bool:
            async with inst.http() as http:
                s = (await http.get("/admin/routing")).json()
            live = (s["settings"]["routing.block"], s["settings"]["budget.daily_usd"])
            return bool(
                s["profile"] == "eco" and "fleet" in s["stored_rules"] and live == (["big"], 0.25)
            )

        for inst in (b, c):
            await until(lambda inst=inst: settled(inst), "the settings reach every instance")
        # Set with the offline CLI in c's own store: c tells the others after its poll.
        cli = [sys.executable, "-m", "llmswitch", "profile", "set", "premium", "--config"]
        assert (await trio.run_process([*cli, str(c.config)])).returncode == 0

        async def premium(inst: Instance) -> bool:
            async with inst.http() as http:
                return bool((await http.get("/admin/routing")).json()["profile"] == "premium")

        await until(lambda: premium(a), "the CLI's profile reaches a")

        gone_id = next(p["id"] for p in (await c.debug())["fleet"]["peers"] if p["self"])
        c.proc.send_signal(signal.SIGKILL)

        async def seen_gone(inst: Instance) -> bool:
            peers = {p["id"]: p["state"] for p in (await inst.debug())["fleet"]["peers"]}
            return peers.get(gone_id) == "gone" and list(peers.values()).count("up") == 2

        await until(lambda: seen_gone(a), "a sees c gone")
        await until(lambda: seen_gone(b), "b sees c gone")
        # A clean stop leaves the roster and closes the subscription before the link.
        assert await stop_all([a, b]) == [0, 0]


pytestmark = pytest.mark.timeout(120)
