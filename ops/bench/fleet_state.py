"""What the fleet's shared state costs a request: one gateway alone against the same
gateway with ``[cluster] redis_url`` (issue 13; goal: at most 15% per request).

Both run the same config, one that makes every request touch what a fleet shares: a
priced model under a daily budget (a hold taken before the call and settled after) on
a backend with rpm and tpm limits (buckets taken before, tokens charged after). Alone,
that state is in the actors' memory; in the fleet, it is in Redis: the hold is one Lua
round trip a request, the buckets are leased ahead (1% of a large bucket a trip), and
settlements and tokens used go in batches. The limits are far above the load, so nothing is refused.
c=1 latency interleaves the targets; c=32 alternates their order each round.

Run: .venv/bin/python ops/bench/fleet_state.py [--quick] [--redis URL] [--no-record].
It writes under a fresh key prefix in that Redis and deletes its keys afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import coredis
import httpx
import trio
from common import (
    MODEL,
    Bench,
    Plan,
    Results,
    Server,
    StartFailed,
    fmt,
    free_port,
    git_state,
    latency_phase,
    machine_line,
    now_utc,
    publish,
    ratio,
    spawn_llmswitch,
    spawn_sim,
    verdict,
    wait_ready,
)

TARGETS = ("direct", "single", "fleet")
FULL = Plan("full", 300, 30, 4000, 5.0, 3, 1.0, budget_s=240.0)
QUICK = Plan("quick", 60, 10, 800, 2.0, 1, 1.0, budget_s=90.0)
#: Shared state may cost this much more per request (CPU of the front process).
GOAL = 1.15


def config(port: int, sim_port: int, workdir: Path, name: str, cluster: str) -> Path:
    path = workdir / f"{name}.toml"
    path.write_text(
        f"""\
[server]
host = "127.0.0.1"
port = {port}
grace_s = 1
[store]
path = "{workdir / name}.db"
[budget]
daily_usd = 1000000.0
[routing]
metered_cloud = ["*"]
{cluster}
[[backends]]
name = "sim"
base_url = "http://127.0.0.1:{sim_port}/v1"
locality = "cloud"
rpm = 10000000
tpm = 1000000000
[[models]]
id = "{MODEL}"
backend = "sim"
cost_input_per_mtok = 0.01
cost_output_per_mtok = 0.02
""",
        encoding="utf-8",
    )
    return path


async def measure(plan: Plan, workdir: Path, wrk: str | None, redis: str, prefix: str) -> Bench:
    servers: list[Server] = []
    sim_port, single_port, fleet_port = free_port(), free_port(), free_port()
    try:
        sim = spawn_sim("sim", sim_port, workdir, [MODEL])
        servers.append(sim)
        cluster = f'[cluster]\nredis_url = "{redis}"\nprefix = "{prefix}"\n'
        single = spawn_llmswitch(single_port, config(single_port, sim_port, workdir, "s", ""),
                                 workdir)  # fmt: skip
        servers.append(single)
        fleet = spawn_llmswitch(fleet_port, config(fleet_port, sim_port, workdir, "f", cluster),
                                workdir)  # fmt: skip
        servers.append(fleet)
        fronts = {"direct": sim, "single": single, "fleet": fleet}
        bench = Bench(plan, {}, fronts, workdir, wrk, Results(TARGETS))
        async with httpx.AsyncClient(trust_env=False) as client:
            await wait_ready(client, sim, "/v1/models")
            for server in (single, fleet):
                await wait_ready(client, server, "/health")
        bench.urls = {t: fronts[t].base + "/v1/chat/completions" for t in TARGETS}
        print(f"[fleet_state] c=1: {plan.c1_requests} x {len(TARGETS)}", flush=True)
        await latency_phase(bench.urls, False, plan, bench.results, plan.budget_s / 4)
        print(f"[fleet_state] c={plan.concurrency}: {plan.c32_rounds} round(s)", flush=True)
        await bench.throughput_phase(False)
        async with httpx.AsyncClient(trust_env=False) as client:
            cluster_state = (await client.get(fleet.base + "/debug")).json()["cluster"]["state"]
        if cluster_state != "up":
            bench.results.error("fleet", f"Redis was not up at the end ({cluster_state})")
        return bench
    finally:
        for server in servers:
            server.stop()


ROWS = (
    ("ns_p50", "latency p50 (ms), c=1", 2, True),
    ("ns_p99", "latency p99 (ms), c=1", 2, True),
    ("ns_rps", "req/s, c=32", 1, False),
    ("ns_cpu_ms", "front process CPU ms per request, c=32", 3, True),
    ("ns_c32_p50", "latency p50 (ms), c=32", 2, True),
    ("ns_other_pct", "other processes' CPU % of one core (noise)", 0, True),
)


def render(results: Results) -> str:
    m = results.metrics
    lines = [
        f"| non-stream | direct | alone | fleet (Redis) | fleet/alone (goal: cost ≤ {GOAL}x) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label, digits, cost in ROWS:
        share = ratio(m["fleet"].get(key), m["single"].get(key))
        if key == "ns_rps":
            cell = verdict(share, 1 / GOAL, at_most=False)
        elif key == "ns_cpu_ms":
            cell = verdict(share, GOAL, at_most=True)
        else:
            cell = fmt(share) if cost and key != "ns_other_pct" else ""
        values = [fmt(m[t].get(key), digits) for t in TARGETS]
        lines.append(f"| {label} | " + " | ".join(values) + f" | {cell} |")
    for target in TARGETS:
        if results.error_counts[target]:
            lines += ["", f"**{target}: {results.error_counts[target]} error(s):**", "```"]
            lines += [*results.errors[target], "```"]
    return "\n".join(lines)


async def forget(redis: str, prefix: str) -> None:
    async with coredis.Redis.from_url(redis, decode_responses=True) as client:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(keys)


async def run(plan: Plan, wrk: str | None, redis: str, keep: bool) -> int:
    prefix = f"llmswitch-bench-{uuid.uuid4().hex[:8]}"
    generator = "wrk -t1" if wrk else "httpx in the bench process"
    git = git_state()
    with tempfile.TemporaryDirectory(prefix="llmswitch-fleet-") as tmp:
        try:
            with trio.fail_after(plan.budget_s):
                bench = await measure(plan, Path(tmp), wrk, redis, prefix)
        except (StartFailed, trio.TooSlowError) as exc:
            print(f"[fleet_state] cannot run: {exc}", file=sys.stderr)
            return 2
        finally:
            await forget(redis, prefix)
    text = (
        f"## Fleet shared state: one gateway alone vs with Redis ({now_utc()}, "
        f"`ops/bench/fleet_state.py`, {plan.name})\n\n{machine_line(git)}\n"
        f"- workload: model {MODEL!r} on llmswitch.sim, priced, under a daily budget, on a "
        f"backend with rpm and tpm limits (never reached): each request holds and settles "
        f"a budget and takes and charges rate-limit buckets; Redis: the local "
        f"redis-server (a hold: 1 Lua round trip a request; buckets leased, settlements "
        f"and usage batched); c=32 by {generator}, "
        f"{plan.c32_rounds} round(s) of {plan.c32_seconds:g} s per target\n\n"
        f"{render(bench.results)}\n"
    )
    publish(text, keep=keep)
    return 1 if bench.results.error_counts["fleet"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--no-wrk", action="store_true", help="use the httpx load generator")
    args = parser.parse_args(argv)
    wrk = None if args.no_wrk else shutil.which("wrk")
    return trio.run(run, QUICK if args.quick else FULL, wrk, args.redis, not args.no_record)


if __name__ == "__main__":
    sys.exit(main())
