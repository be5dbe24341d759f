"""The hot path, this tree against an earlier checkout, side by side in one invocation.

A change that hardens the request path (issue 9) must not make it more than 5% slower.
Both trees serve the same simulator with the same config, one process each; the load
alternates between them (c=1 request by request, c=32 round by round, the order reversed
each round), so drift on a shared box hits both alike. The figures are the ratios
this/before. Run:
.venv/bin/python ops/bench/before_after.py --before /work/wt/baseline/src [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

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
    llmswitch_config,
    machine_line,
    now_utc,
    ratio,
    record,
    spawn,
    spawn_sim,
    wait_ready,
)

TARGETS = ("direct", "before", "llmswitch")
FULL = Plan("full", 300, 30, 2000, 5.0, 4, 1.0, budget_s=300.0)
QUICK = Plan("quick", 60, 10, 400, 2.0, 2, 1.0, budget_s=90.0)
ROWS = (
    ("ns_p50", "non-stream latency p50 (ms), c=1", False),
    ("ns_p99", "non-stream latency p99 (ms), c=1", False),
    ("st_p50", "stream full answer p50 (ms), c=1", False),
    ("ns_rps", "non-stream req/s, c=32", True),
    ("st_rps", "stream req/s, c=32", True),
    ("ns_cpu_ms", "CPU ms per request, non-stream c=32", False),
    ("st_cpu_ms", "CPU ms per request, stream c=32", False),
)
#: The most this tree may cost over the earlier one (issue 9: "not more than 5%").
SLOWER_AT_MOST = 1.05


def spawn_tree(name: str, src: Path | None, port: int, config: Path, workdir: Path) -> Server:
    """llmswitch from ``src`` (another checkout's src/), or from this tree when None."""
    env = os.environ | ({"PYTHONPATH": str(src)} if src is not None else {})
    args = ["-m", "llmswitch", "serve", "--config", str(config)]
    return spawn(name, args, port, workdir, env=env)


def render(results: Results) -> str:
    m = results.metrics
    lines = [
        "| measure | direct | before | this tree | this/before cost |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label, higher_is_better in ROWS:
        cells = [fmt(m[t].get(key)) for t in TARGETS]
        before, now = m["before"].get(key), m["llmswitch"].get(key)
        cost = ratio(before, now) if higher_is_better else ratio(now, before)
        mark = "" if cost is None else (" ok" if cost <= SLOWER_AT_MOST else " SLOWER")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {fmt(cost, 3)}{mark} |")
    lines.append("")
    lines.append(
        f"cost = how much more this tree takes than the earlier one (goal ≤ {SLOWER_AT_MOST})."
    )
    for target in TARGETS:
        if results.error_counts[target]:
            lines += ["", f"**{target}: {results.error_counts[target]} error(s).**", ""]
            lines += ["```", *results.errors[target], "```"]
    return "\n".join(lines)


async def measure(plan: Plan, before_src: Path, workdir: Path, wrk: str | None) -> Bench:
    servers: list[Server] = []
    try:
        with trio.fail_after(plan.budget_s):
            return await phases(plan, before_src, workdir, wrk, servers)
    finally:
        for server in reversed(servers):
            server.stop()


async def phases(
    plan: Plan, before_src: Path, workdir: Path, wrk: str | None, servers: list[Server]
) -> Bench:
    """Start the simulator and both trees (into ``servers``), then run the four phases."""
    sim_port = free_port()
    servers.append(spawn_sim("sim", sim_port, workdir, [MODEL]))
    for name, src in (("before", before_src), ("llmswitch", None)):
        port = free_port()
        (workdir / f"tree-{name}").mkdir()
        config = llmswitch_config(port, sim_port, workdir / f"tree-{name}")
        servers.append(spawn_tree(name, src, port, config, workdir))
    fronts = dict(zip(TARGETS, servers, strict=True))
    bench = Bench(plan, {}, fronts, workdir, wrk, Results(TARGETS))
    async with httpx.AsyncClient(trust_env=False) as client:
        await wait_ready(client, fronts["direct"], "/v1/models")
        for name in TARGETS[1:]:
            await wait_ready(client, fronts[name], "/health")
    bench.urls = {t: fronts[t].base + "/v1/chat/completions" for t in TARGETS}
    cap = plan.budget_s / 6
    for stream in (False, True):
        print(f"[before-after] c=1 stream={stream}", flush=True)
        await latency_phase(bench.urls, stream, plan, bench.results, cap)
    for stream in (False, True):
        print(f"[before-after] c={plan.concurrency} stream={stream}", flush=True)
        await bench.throughput_phase(stream)
    return bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="an earlier checkout's src/")
    parser.add_argument("--quick", action="store_true", help="a smaller run (< 2 min)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    if not (args.before / "llmswitch" / "__init__.py").exists():
        parser.error(f"--before {args.before}: not a src/ holding llmswitch")
    plan = QUICK if args.quick else FULL
    wrk = shutil.which("wrk")
    git = git_state()
    before_git = git_state(args.before.parent)
    with tempfile.TemporaryDirectory(prefix="llmswitch-before-after-") as tmp:
        try:
            bench = trio.run(measure, plan, args.before, Path(tmp), wrk)
        except (StartFailed, trio.TooSlowError) as exc:
            print(f"[before-after] cannot run: {exc}", file=sys.stderr)
            return 2
    table = render(bench.results)
    print(table)
    if not args.no_record:
        load = os.getloadavg()[0]
        record(
            f"## {now_utc()}: the hot path before and after (`ops/bench/before_after.py`, "
            f"{plan.name} run)\n\n{machine_line(git)}\n- before: {before_git}\n"
            f"- load by {'wrk' if wrk else 'httpx'}; load average at the end {load:.2f}\n\n"
            f"{table}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
