"""The fleet's budgets: holds taken atomically across instances, expiring, spend counted
once per request, and the offline slice reconciled exactly once when Redis returns."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from llmswitch.actors.alerts import Alerts
from llmswitch.cluster.budget import FleetBudget
from llmswitch.cluster.link import Link
from llmswitch.cluster.money import Offline, Standing, budget_keys, offline_refusal
from llmswitch.config import BudgetConfig
from llmswitch.routing.budget import Budget
from llmswitch.runtime.backoff import Backoff
from tests.cluster.redis_server import SYSTEM_REDIS, own_prefix, redis_server
from tests.e2e.harness import closed_port

DAY = Budget("all", "day", 1.0)
QUICK = Backoff(base_s=0.05, cap_s=0.2)


def test_a_budgets_keys_name_its_period_and_scope() -> None:
    ts = 86400 * 3 + 5
    assert budget_keys("key:ide", "day", ts)[0] == f"budget:day:{86400 * 3}:key:ide:spent"


def test_offline_a_call_fits_only_in_the_fraction_of_what_was_left() -> None:
    seen = {DAY.key: Standing(spent=0.4, held=0.0, limit=1.0)}  # 0.6 left
    offline = Offline(spent={DAY.key: 0.2})
    assert offline_refusal([DAY], 0.1, 0.5, seen, offline) is None  # 0.3 allowed
    reason = offline_refusal([DAY], 0.11, 0.5, seen, offline)
    assert reason and "cluster degraded" in reason
    assert offline_refusal([DAY], 0.01, 0.0, seen, Offline()) is not None  # default: none
    assert offline_refusal([DAY], 0.01, 1.0, {}, Offline()) is not None  # never read


@asynccontextmanager
async def fleet(
    url: str, prefix: str, n: int, fraction: float = 0.0
) -> AsyncIterator[list[FleetBudget]]:
    links = [Link(url, prefix, ping_interval_s=0.1, backoff=QUICK) for _ in range(n)]
    async with trio.open_nursery() as nursery:
        for link in links:
            await nursery.start(link.run)
        yield [FleetBudget(link, fraction, link.instance) for link in links]
        nursery.cancel_scope.cancel()


async def test_instances_together_never_hold_more_than_the_budget() -> None:
    async with own_prefix() as prefix, fleet(SYSTEM_REDIS, prefix, 3) as budgets:
        granted: list[int] = []

        async def reserve(fb: FleetBudget, hold: int) -> None:
            if await fb.reserve(hold, (DAY,), 0.15, time.time(), 60) is None:
                granted.append(hold)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for hold in range(30):
                    nursery.start_soon(reserve, budgets[hold % 3], hold)
        # $1 holds six calls of $0.15 (0.90), never a seventh (1.05).
        assert len(granted) == 6


async def test_calls_one_after_another_are_not_refused_for_holds_released_late() -> None:
    # Room for three holds of $0.3; each call costs $0.01 and is settled before the next
    # asks, its release still queued for the next batch to Redis.
    async with own_prefix() as prefix, fleet(SYSTEM_REDIS, prefix, 1) as (fb,):
        with trio.fail_after(20):
            for n in range(20):
                assert await fb.reserve(n, (DAY,), 0.3, time.time(), 60) is None, n
                fb.settle(n, f"r{n}", 0.01, time.time(), ("all",))
            await fb.flush_outbox()
            assert fb.outbox == []


async def test_a_hold_expires_and_settle_counts_a_request_once() -> None:
    async with own_prefix() as prefix, fleet(SYSTEM_REDIS, prefix, 1) as (fb,):
        with trio.fail_after(20):
            now = time.time()
            assert await fb.reserve(1, (DAY,), 0.9, now, ttl_s=0.2) is None
            assert await fb.reserve(2, (DAY,), 0.9, now, ttl_s=60) is not None
            await trio.sleep(0.5)  # hold 1 expired in Redis (its instance "died")
            assert await fb.reserve(2, (DAY,), 0.9, now, ttl_s=60) is None
            fb.settle(2, "r2", 0.25, now, ("all",))
            fb.settle(None, "r2", 0.25, now, ("all",))  # a retry: counted already
            spent = await fb.sync([DAY], now)
            assert spent == {DAY.key: pytest.approx(0.25)}
            assert fb.seen[DAY.key].held == 0.0


async def test_offline_spend_is_added_once_when_redis_returns(tmp_path: Path) -> None:
    async with redis_server(tmp_path) as server:
        await server.start()
        async with fleet(server.url, "t", 1, fraction=0.5) as (fb,):
            with trio.fail_after(30):
                now = time.time()
                fb.settle(None, "before", 0.4, now, ("all",))
                assert await fb.reserve(9, (DAY,), 0.05, now, 600) is None  # a call in flight
                assert await fb.sync([DAY], now) == {DAY.key: pytest.approx(0.4)}
                await server.kill()
                # Degraded: half of the 0.55 left (1 - 0.4 spent - 0.05 held) may be spent.
                assert await fb.reserve(1, (DAY,), 0.2, now, 60) is None
                assert not fb.link.up
                assert await fb.reserve(2, (DAY,), 0.2, now, 60) is not None
                fb.settle(1, "offline", 0.15, now, ("all",))
                fb.settle(9, "in-flight", 0.05, now, ("all",))  # its hold is in Redis
                assert await fb.sync([DAY], now) is None
                assert fb.snapshot()["to_reconcile"] == 2
                await server.start()
                while not fb.link.up:
                    await fb.link.state.wait_newer(fb.link.state.version)
                assert await fb.sync([DAY], now) == {DAY.key: pytest.approx(0.6)}
                assert await fb.sync([DAY], now) == {DAY.key: pytest.approx(0.6)}
                assert fb.reconciled == 2 and not fb.offline.pending
                assert fb.seen[DAY.key].held == 0.0  # released on return, not left to expire


async def test_one_instance_of_the_fleet_posts_a_budget_alert(nursery: trio.Nursery) -> None:
    async with own_prefix() as prefix, fleet(SYSTEM_REDIS, prefix, 2) as (a, b):
        webhook = f"http://127.0.0.1:{closed_port()}/hook"  # refused: a post fails at once
        config = BudgetConfig(daily_usd=1.0, alert_at=(0.5,), webhook_url=webhook)
        first, second = Alerts(config, a.claim_alert), Alerts(config, b.claim_alert)
        nursery.start_soon(first.run)
        nursery.start_soon(second.run)
        with trio.fail_after(20):
            first.note("all", "day", 0.0, 0.6, 1.0)
            while not first.failed:  # noqa: ASYNC110 (counters)
                await trio.sleep(0.02)
            second.note("all", "day", 0.0, 0.7, 1.0)
            while not second.posted_elsewhere:  # noqa: ASYNC110 (counters)
                await trio.sleep(0.02)
        assert second.failed == 0  # it never tried to post
