"""Gateway processes sharing one Redis hold a combined rate limit and a combined budget
under concurrent load, and ride out a Redis kill and restart.

Real processes (``llmswitch serve``), the simulators in the test's loop, Redis either the
system's under a prefix of the test's own or a private redis-server this test kills.
The bounds are exact; the waits are for conditions, each bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import trio

from llmswitch.sim.knobs import ModelKnobs
from llmswitch.store.db import open_db
from llmswitch.store.request_log import RequestRow, recent_rows
from tests.cluster.redis_server import redis_server
from tests.e2e.harness import model, start_sims
from tests.e2e.test_budget import HELLO, MAX_TOKENS, PRICES
from tests.e2e.test_fleet_sync import Instance, fleet, until

METERED = {
    "models": [model("small", "local", 20), model("big", "cloud", 90, **PRICES)],
    "routing": {"metered_cloud": ["*"]},
}


def client(inst: Instance, key: str = "test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=inst.url + "/v1", api_key=key, max_retries=0)


async def ask(inst: Instance, model_id: str, statuses: list[int], key: str = "test") -> float:
    """One call; its status (200, or the error's) goes into ``statuses``; its cost."""
    try:
        raw = await client(inst, key).chat.completions.with_raw_response.create(
            model=model_id, messages=HELLO, max_tokens=MAX_TOKENS
        )
    except openai.APIStatusError as err:
        statuses.append(err.status_code)
        return 0.0
    statuses.append(200)
    return float(raw.headers.get("x-router-cost-usd", 0.0))


async def rows(tmp_path: Path, n: int) -> list[RequestRow]:
    """Every instance's request log (read once they have stopped and flushed)."""
    found: list[RequestRow] = []
    for i in range(n):
        async with open_db(tmp_path / f"ledger-{i}.db") as db:
            found += await recent_rows(db, 100_000)
    return found


async def test_three_instances_hold_one_rpm_limit_and_one_budget_together(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDE_KEY", "ide-key")
    monkeypatch.setenv("APP_KEY", "app-key")
    clients = [
        {"name": "ide", "key_env": "IDE_KEY", "rpm": 10},
        {"name": "app", "key_env": "APP_KEY"},
    ]
    daily = 0.01  # about 3.8 worst cases
    sims = await start_sims(nursery)
    async with fleet(
        sims, tmp_path, 3, clients=clients, budget={"daily_usd": daily}, **METERED
    ) as insts:
        limited: list[int] = []
        started = trio.current_time()
        with trio.fail_after(60):
            async with trio.open_nursery() as load:
                for i in range(45):
                    load.start_soon(ask, insts[i % 3], "small", limited, "ide-key")
        elapsed = trio.current_time() - started
        metered: list[int] = []
        with trio.fail_after(60):
            async with trio.open_nursery() as load:
                for i in range(30):
                    load.start_soon(ask, insts[i % 3], "big", metered, "app-key")
    # rpm 10 is 10 at once and one more every 6 s: the 45 calls (15 on each instance)
    # get no more than that together, not 3 x 10.
    assert set(limited) <= {200, 429}
    assert 10 <= limited.count(200) <= 10 + int(elapsed / 6) + 1
    # Each metered call held its worst case in Redis before it went out: together they
    # never spend past the budget, and the calls refused say so (403).
    big = [r for r in await rows(tmp_path, 3) if r.requested_model == "big" and r.cost_usd]
    assert sum(r.cost_usd for r in big) <= daily
    assert 1 <= metered.count(200) <= int(daily // min(r.cost_usd for r in big))
    assert set(metered) <= {200, 403} and metered.count(403) > 0


async def debug_cluster(inst: Instance) -> dict[str, Any]:
    cluster: dict[str, Any] = (await inst.debug())["cluster"]
    return cluster


async def fleet_spent(inst: Instance) -> float:
    return float((await inst.debug())["budget"]["spent_day_usd"])


async def test_a_redis_kill_and_restart_under_load_degrades_then_reconciles_once(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # Every answer is longer than MAX_TOKENS, so each metered call costs about its worst
    # case (WORST, ~$0.0026): the two first leave ~$0.025, half of it ~4 calls offline.
    daily, fraction = 0.03, 0.5
    sims = await start_sims(nursery, ModelKnobs(reply="word " * 40))
    (tmp_path / "redis").mkdir()
    local: list[int] = []
    async with redis_server(tmp_path / "redis") as redis:
        await redis.start()
        cluster = {"offline_budget_fraction": fraction}
        async with fleet(
            sims, tmp_path, 2, redis_url=redis.url, cluster=cluster, budget={"daily_usd": daily},
            **METERED,
        ) as (a, b):  # fmt: skip
            before: list[int] = []
            spent = sum([await ask(inst, "big", before) for inst in (a, b)])
            assert before == [200, 200] and spent > 0
            # Both know the fleet's spend: what their offline slice is cut from.
            for inst in (a, b):
                await until(lambda i=inst: _close(fleet_spent(i), spent), "spend is shared")
            left = daily - spent

            async def local_load() -> None:
                while True:
                    for inst in (a, b):
                        await ask(inst, "small", local)

            async with trio.open_nursery() as load:
                load.start_soon(local_load)
                await redis.kill()
                for inst in (a, b):
                    await until(lambda i=inst: _degraded(i), "cluster degraded")
                for inst in (a, b):
                    offline: list[int] = []
                    for _ in range(8):
                        spent += await ask(inst, "big", offline)
                    # The slice is fraction x what was left: some calls fit, then 403.
                    assert 200 in offline and 403 in offline
                    budget = (await debug_cluster(inst))["budget"]
                    assert budget["offline_spent_usd"]["all/day"] <= fraction * left + 1e-9
                await redis.start()
                for inst in (a, b):
                    await until(lambda i=inst: _reconciled(i), "offline spend reconciled")
                load.cancel_scope.cancel()
            # Added exactly once: the fleet's total is every call's cost, no more, no less.
            for inst in (a, b):
                await until(lambda i=inst: _close(fleet_spent(i), spent), "the fleet's total")
            assert spent <= daily
    # Local models served throughout: Redis going away never failed a local call.
    assert len(local) > 10 and set(local) == {200}
    logged = sum(r.cost_usd for r in await rows(tmp_path, 2))
    assert logged == pytest.approx(spent, abs=1e-6)


async def _close(value: Any, expected: float) -> bool:
    """Equal to the 8 decimals X-Router-Cost-USD gives a call's cost in."""
    return bool(abs(await value - expected) < 1e-6)


async def _degraded(inst: Instance) -> bool:
    async with inst.http() as http:
        return "degraded" in (await http.get("/health/ready")).json()


async def _reconciled(inst: Instance) -> bool:
    c = await debug_cluster(inst)
    return bool(c["state"] == "up" and c["budget"]["to_reconcile"] == 0)


pytestmark = pytest.mark.timeout(180)
