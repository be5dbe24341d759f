"""How long a change told by one fleet member takes to reach another (issue 13).

Two :class:`~llmswitch.cluster.spread.Fleet` members, each with its own Redis link, in
one process (one clock: the delay is the hearer's wall time minus the teller's stamp):
the Lua store-and-publish, pub/sub, decoding and the newest-stamp check, up to the sink
that would cast it to an actor. Two loads: one change at a time (each waits for the
last to arrive), and bursts of changes told at once. Run against a Redis of your own:
.venv/bin/python ops/bench/fleet_spread.py [--redis redis://127.0.0.1:6379/0] [--n 500]
The keys it writes (under a fresh prefix) are deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import uuid

import coredis
import trio

from llmswitch.cluster.link import Link
from llmswitch.cluster.news import Entry
from llmswitch.cluster.spread import Fleet


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def line(name: str, delays_ms: list[float]) -> str:
    return (
        f"| {name} | {len(delays_ms)} | {statistics.median(delays_ms):.2f} | "
        f"{pct(delays_ms, 99):.2f} | {max(delays_ms):.2f} |"
    )


async def bench(url: str, n: int, burst: int) -> None:
    prefix = f"llmswitch-bench-{uuid.uuid4().hex[:8]}"
    arrived: list[float] = []
    got = trio.Event()

    def sink(entry: Entry) -> bool:
        arrived.append((time.time() - entry.stamp) * 1000)
        got.set()
        return True

    async with trio.open_nursery() as nursery:
        teller, hearer = Fleet(Link(url, prefix)), Fleet(Link(url, prefix))
        hearer.sinks = {"setting": sink}
        for member in (teller, hearer):
            await nursery.start(member.link.run)
            await nursery.start(member.run)
        with trio.fail_after(10):
            while len(hearer.peers) < 2:  # noqa: ASYNC110 (both subscribed and beating)
                await trio.sleep(0.05)
        await trio.sleep(0.5)
        with trio.fail_after(120):
            for i in range(n):
                got = trio.Event()
                teller.tell("setting", f"k{i % 50}", {"value": i})
                await got.wait()
        one = list(arrived)
        arrived.clear()
        with trio.fail_after(120):
            for round_ in range(max(1, n // burst)):
                for i in range(burst):
                    teller.tell("setting", f"b{round_}-{i}", {"value": i})
                while len(arrived) < (round_ + 1) * burst:  # noqa: ASYNC110
                    await trio.sleep(0.001)
        load = os.getloadavg()[0]
        print(f"- machine: {platform.machine()}, {os.cpu_count()} cores; load average {load:.1f}")
        print("| load | changes | median ms | p99 ms | max ms |\n|---|---|---|---|---|")
        print(line("one at a time", one))
        print(line(f"bursts of {burst}", arrived))
        for member in (teller, hearer):
            await member.stop()
        nursery.cancel_scope.cancel()
    async with coredis.Redis.from_url(url, decode_responses=True) as redis:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
        if keys:
            await redis.delete(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--burst", type=int, default=100)
    args = parser.parse_args()
    trio.run(bench, args.redis, args.n, args.burst)


if __name__ == "__main__":
    main()
