"""The fleet's rate limits: limits actors of several instances share one bucket in Redis
and each other's cooldowns; with Redis away each falls back to its own buckets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from llmswitch.actors.limits import Acquire, LimitsActor, LimitsView, Report
from llmswitch.cluster.limits import (
    BucketSpec,
    FleetLimits,
    Lease,
    cooldowns_here,
    covered,
    lease_size,
)
from llmswitch.cluster.link import Link
from llmswitch.config import Config, parse_config
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.watch import Watch
from tests.cluster.redis_server import SYSTEM_REDIS, own_prefix
from tests.e2e.harness import closed_port


def config(**backend: Any) -> Config:
    return parse_config(
        {
            "backends": [{"name": "b", "base_url": "http://127.0.0.1:9/v1", **backend}],
            "models": [{"id": "m", "backend": "b", "tpm": 1000}],
        }
    )


def test_cooldowns_are_moved_to_this_processs_clock() -> None:
    assert cooldowns_here(["10000", "b", "12500"], now=100.0) == {"b": 102.5}


class Instance:
    """A limits actor with its own view and mailbox, linked to one fleet."""

    def __init__(self, url: str, prefix: str, cfg: Config) -> None:
        self.link = Link(url, prefix, ping_interval_s=0.2)
        self.view: Watch[LimitsView] = Watch(LimitsView())
        self.mailbox: Mailbox[Any] = Mailbox("limits")
        self.actor = LimitsActor(cfg, self.view, FleetLimits(self.link))

    async def start(self, nursery: trio.Nursery) -> None:
        await nursery.start(self.link.run)
        await nursery.start(self.actor.run, self.mailbox.inbox)

    async def acquire(self, *scopes: str, tokens: int = 0) -> float:
        return await self.mailbox.call(Acquire(scopes, tokens), timeout=5)


@asynccontextmanager
async def pair(nursery: trio.Nursery) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two started instances on a fresh prefix of the system Redis."""
    async with own_prefix() as prefix:
        a, b = Instance(SYSTEM_REDIS, prefix, config()), Instance(SYSTEM_REDIS, prefix, config())
        await a.start(nursery)
        await b.start(nursery)
        yield a, b


async def test_three_instances_share_one_rpm_limit(nursery: trio.Nursery) -> None:
    async with own_prefix() as prefix:
        fleet = [Instance(SYSTEM_REDIS, prefix, config(rpm=12)) for _ in range(3)]
        for instance in fleet:
            await instance.start(nursery)
        granted = 0

        async def one(instance: Instance) -> None:
            nonlocal granted
            wait = await instance.acquire("b")
            granted += wait == 0.0

        started = trio.current_time()
        with trio.fail_after(20):
            async with trio.open_nursery() as burst:
                for i in range(60):
                    burst.start_soon(one, fleet[i % 3])
        elapsed = trio.current_time() - started
        # 12 per minute, refilling 0.2 a second: the 12 of the full bucket and what
        # refilled while the burst lasted (measured 12 here), never 3 x 12.
        assert 12 <= granted <= 12 + elapsed * 0.2 + 1


async def test_a_cooldown_learnt_by_one_instance_reaches_the_others(
    nursery: trio.Nursery,
) -> None:
    async with pair(nursery) as (a, b):
        with trio.fail_after(20):
            await a.mailbox.cast(Report(("b", "model:m"), 429, retry_after_s=60))
            while "b" not in b.view.value.limited(trio.current_time()):
                await b.view.wait_newer(b.view.version)
            assert b.view.value.cooldown_until["b"] - trio.current_time() > 50


async def test_with_redis_away_an_instance_uses_its_own_buckets(nursery: trio.Nursery) -> None:
    lost = Instance(f"redis://127.0.0.1:{closed_port()}/0", "t", config(rpm=2))
    await lost.start(nursery)
    with trio.fail_after(20):
        assert await lost.acquire("b") == 0.0
        assert await lost.acquire("b") == 0.0
        assert await lost.acquire("b") > 0
        await lost.mailbox.cast(Report(("b", "model:m"), 200, tokens=5))
        assert lost.actor.summary()["degraded_steps"] >= 3


async def test_tokens_used_on_one_instance_are_charged_to_the_shared_bucket(
    nursery: trio.Nursery,
) -> None:
    async with pair(nursery) as (a, b):
        with trio.fail_after(20):
            assert await b.acquire("model:m", tokens=10) == 0.0  # tpm 1000: room
            await a.mailbox.cast(Report(("b", "model:m"), 200, tokens=1000))
            # Charged in a batch: b is refused long before its own takes (10 a try) could
            # have used up the 1000 tokens.
            for _ in range(40):
                if await b.acquire("model:m", tokens=10) > 0:
                    break
                await trio.sleep(0.05)
            else:
                raise AssertionError("b never saw the tokens a used")


def test_small_buckets_are_never_leased_and_large_ones_lease_one_percent() -> None:
    assert lease_size(12) == 0 and lease_size(99) == 0
    assert lease_size(100_000) == 1000
    leases = {"rpm:b": Lease(tokens=2, until=10.0)}
    one = [BucketSpec("rpm:b", 1e5, 1e5 / 60, 1)]
    assert covered(leases, one, now=5.0)
    assert not covered(leases, one, now=10.0)  # lapsed
    assert not covered(leases, [BucketSpec("rpm:b", 1e5, 1e5 / 60, 3)], now=5.0)


async def test_a_leasing_fleet_never_admits_more_than_the_limit(nursery: trio.Nursery) -> None:
    async with own_prefix() as prefix:
        # rpm 1000: each Redis take leases 10 more; 3 instances, 1200 calls at once.
        fleet = [Instance(SYSTEM_REDIS, prefix, config(rpm=1000)) for _ in range(3)]
        for instance in fleet:
            await instance.start(nursery)
        waits: list[float] = []

        async def one(instance: Instance) -> None:
            waits.append(await instance.acquire("b"))

        started = trio.current_time()
        with trio.fail_after(30):
            async with trio.open_nursery() as burst:
                for i in range(1200):
                    burst.start_soon(one, fleet[i % 3])
        elapsed = trio.current_time() - started
        granted = waits.count(0.0)
        # 1000 in the bucket and 1000/60 a second more while the burst lasts: leased
        # tokens came out of the shared bucket, so no more; leases left unused when the
        # burst ends cost at most 3 x 10.
        assert 1000 - 3 * 10 <= granted <= 1000 + elapsed * 1000 / 60 + 1
        assert sum(i.actor.summary()["leased_takes"] for i in fleet) > granted // 2
