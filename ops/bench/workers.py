"""Requests/s at c=32 with 1, 2 and 4 workers (``server.workers``), beside one process.

The reference is one llmswitch process alone (no Redis), measured in the same
invocation: every other figure is a ratio to it, so a shared or slower machine cancels
out. "1 + Redis" is one process in a fleet (``cluster.redis_url``): what shared state
costs a request. Then 2 and 4 workers on one port, and LiteLLM's proxy with as many
workers (``--num_workers``) when a LiteLLM is installed (``--litellm PATH``; peer.py's
ops/bench/.venv-litellm by default); if not, it says so and measures llmswitch alone.

Every server is a child of this process on 127.0.0.1, all on one llmswitch.sim; the
targets take turns, rounds alternate their order, and the load average is printed.
Run: .venv/bin/python ops/bench/workers.py [--quick] [--no-record] [--litellm PATH]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
import trio
from common import (
    MODEL,
    REPO,
    RESULTS_MD,
    Bench,
    Plan,
    Results,
    Server,
    StartFailed,
    fmt,
    free_port,
    git_state,
    keep_logs,
    llmswitch_config,
    machine_line,
    now_utc,
    ratio,
    record,
    spawn,
    spawn_llmswitch,
    spawn_sim,
    wait_ready,
)
from peer import LITELLM, litellm_config, litellm_env

SYSTEM_REDIS = "redis://127.0.0.1:6379/0"
FULL = Plan("full", 0, 0, 100_000, 5.0, 2, 1.0, budget_s=900.0)
QUICK = Plan("quick", 0, 0, 20_000, 2.0, 1, 0.5, budget_s=300.0)
#: llmswitch targets: (name, workers, in a Redis fleet).
SWITCHES = (("1 process", 1, False), ("1 + Redis", 1, True), ("2 workers", 2, True))
SWITCHES += (("4 workers", 4, True),)
REFERENCE = "1 process"
LITELLM_WORKERS = (1, 2, 4)
#: LiteLLM imports for a minute on an idle box; three of them at once on a busy one, more.
LITELLM_START_S = 400.0


def litellm_version(binary: Path) -> str | None:
    python = binary.parent / "python"
    try:
        done = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


async def measure(
    plan: Plan, workdir: Path, wrk: str | None, litellm: Path | None, servers: list[Server]
) -> Bench:
    sim_port = free_port()
    sim = spawn_sim("sim", sim_port, workdir, [MODEL])
    servers.append(sim)
    fronts: dict[str, Server] = {"direct": sim}
    prefix = f"llmswitch-bench-{uuid.uuid4().hex[:12]}"
    for name, workers, fleet in SWITCHES:
        port, home = free_port(), workdir / name.replace(" ", "-").replace("+", "")
        home.mkdir()
        # Each target a fleet of its own: their shared state must not mix.
        redis = (SYSTEM_REDIS, f"{prefix}-{workers}-{fleet}") if fleet else None
        config = llmswitch_config(port, sim_port, home, workers=workers, redis=redis)
        fronts[name] = spawn_llmswitch(port, config, home)
        servers.append(fronts[name])
    async with httpx.AsyncClient(trust_env=False) as client:
        await wait_ready(client, sim, "/v1/models")
        for front in list(fronts.values())[1:]:
            await wait_ready(client, front, "/health", timeout_s=60)
        if litellm is not None:
            await start_litellms(client, litellm, workdir, sim_port, fronts, servers)
    urls = {t: front.base + "/v1/chat/completions" for t, front in fronts.items()}
    bench = Bench(plan, urls, fronts, workdir, wrk, Results(tuple(urls)))
    print(f"[workers] c={plan.concurrency} non-stream over {len(urls)} targets", flush=True)
    await bench.throughput_phase(False)
    return bench


async def start_litellms(
    client: httpx.AsyncClient,
    litellm: Path,
    workdir: Path,
    sim_port: int,
    fronts: dict[str, Server],
    servers: list[Server],
) -> None:
    """One LiteLLM at a time (several importing at once on two cores took over 400 s);
    one that does not start is left out of the run, and said so."""
    config = litellm_config(workdir, sim_port)
    env = litellm_env() | {"PYTHONUNBUFFERED": "1"}
    for n in LITELLM_WORKERS:
        port, name = free_port(), f"LiteLLM {n}w"
        args = ["--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        front = spawn(
            name, [*args, "--num_workers", str(n)], port, workdir, program=str(litellm), env=env
        )
        servers.append(front)
        try:
            await wait_ready(client, front, "/health/liveliness", timeout_s=LITELLM_START_S)
        except StartFailed as exc:
            print(f"[workers] {name} left out: {str(exc).splitlines()[0]}", flush=True)
            front.stop()
            continue
        fronts[name] = front


def render(results: Results) -> str:
    m = results.metrics
    ref = m[REFERENCE].get("ns_rps")
    lines = [
        f"| target | req/s c=32 | x {REFERENCE} | CPU ms/request | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for target in results.targets:
        row = m[target]
        cells = [
            fmt(row.get("ns_rps"), 1),
            fmt(ratio(row.get("ns_rps"), ref)),
            fmt(row.get("ns_cpu_ms")),
            fmt(row.get("ns_c32_p50"), 1),
            fmt(row.get("ns_c32_p99"), 1),
        ]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    for target in results.targets:
        if results.error_counts[target]:
            lines += ["", f"**{target}: {results.error_counts[target]} error(s).** First ones:"]
            lines += ["", "```", *results.errors[target], "```"]
    return "\n".join(lines)


def section(plan: Plan, generator: str, litellm: str, table: str, git: str) -> str:
    return (
        f"## {now_utc()}: workers (`ops/bench/workers.py`, {plan.name} run)\n\n"
        f"{machine_line(git)}\n"
        f"- workload: model {MODEL!r} on one llmswitch.sim (no pacing), non-stream, "
        f"c={plan.concurrency} by {generator}, {plan.c32_rounds} round(s) of "
        f"{plan.c32_seconds:g} s per target after {plan.warmup_seconds:g} s warm-up, "
        f"targets in turn (order reversed each round); Redis: the system one, a prefix "
        f"per target; {litellm}\n"
        f"- x {REFERENCE}: req/s against llmswitch alone in this same run; CPU ms/request "
        f"counts the parent and all its workers\n\n"
        f"{table}\n"
    )


async def run(plan: Plan, wrk: str | None, litellm: Path | None, write: bool, note: str) -> int:
    generator = "wrk -t1" if wrk else "httpx in the bench process (wrk not found)"
    servers: list[Server] = []
    git = git_state()
    with tempfile.TemporaryDirectory(prefix="llmswitch-workers-") as tmp:
        try:
            with trio.fail_after(plan.budget_s):
                bench = await measure(plan, Path(tmp), wrk, litellm, servers)
        except StartFailed as exc:
            print(f"[workers] cannot run: {exc}", file=sys.stderr)
            return 2
        except trio.TooSlowError:
            print(f"[workers] gave up: over the {plan.budget_s:g}s budget", file=sys.stderr)
            return 2
        finally:
            for server in reversed(servers):
                server.stop()
            keep_logs(servers, None)
    table = render(bench.results)
    print()
    print(table)
    if write:
        record(section(plan, generator, note, table, git))
        print(f"\n[workers] appended to {RESULTS_MD.relative_to(REPO)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--litellm", type=Path, default=LITELLM, help="a litellm executable")
    args = parser.parse_args()
    version = litellm_version(args.litellm) if args.litellm.exists() else None
    if version is None:
        note = f"LiteLLM: not measured (no working litellm at {args.litellm})"
        print(f"[workers] {note}", flush=True)
    else:
        note = f"LiteLLM {version} with --num_workers 1, 2, 4 (no database, telemetry off)"
    litellm = args.litellm if version else None
    plan = QUICK if args.quick else FULL
    return trio.run(run, plan, shutil.which("wrk"), litellm, not args.no_record, note)


if __name__ == "__main__":
    sys.exit(main())
