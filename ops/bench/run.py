"""llmswitch's overhead, measured side by side on loopback in one invocation.

The same workload runs three ways: straight to a simulated backend (the reference), through
a bare pass-through proxy on the same stack (the floor, ops/bench/minimal_proxy.py), and
through llmswitch. Absolute numbers depend on the machine, so the verdicts are ratios
between runs made in the same invocation: llmswitch's added latency against the proxy's,
llmswitch's throughput against the proxy's.

Run: .venv/bin/python ops/bench/run.py [--quick] (or `make bench`). Every server is its
own process; every request goes to 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
import trio
from common import (
    BENCH_DIR,
    MODEL,
    PROMPT,
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
    latency_phase,
    llmswitch_config,
    machine_line,
    now_utc,
    ratio,
    spawn,
    spawn_llmswitch,
    spawn_sim,
    verdict,
    wait_ready,
)
from common import record as append_section

TARGETS = ("direct", "proxy", "llmswitch")


FULL = Plan("full", 300, 30, 2000, 5.0, 2, 1.0, budget_s=240.0)
QUICK = Plan("quick", 60, 10, 400, 2.0, 1, 1.0, budget_s=90.0)


def added(m: dict[str, dict[str, float]], target: str, key: str) -> float | None:
    if key in m[target] and key in m["direct"]:
        return m[target][key] - m["direct"][key]
    return None


LATENCY_ROWS = (
    ("ns_p50", "non-stream latency p50 (ms), c=1"),
    ("ns_p99", "non-stream latency p99 (ms), c=1"),
    ("ttfb_p50", "stream time to first byte p50 (ms), c=1"),
    ("ttfb_p99", "stream time to first byte p99 (ms), c=1"),
    ("st_p50", "stream full answer p50 (ms), c=1"),
    ("st_p99", "stream full answer p99 (ms), c=1"),
)
THROUGHPUT_ROWS = (
    ("ns_rps", "non-stream req/s, c=32", 1),
    ("st_rps", "stream req/s, c=32", 1),
    ("ns_cpu_ms", "front process CPU ms per request, non-stream c=32", 3),
    ("st_cpu_ms", "front process CPU ms per request, stream c=32", 3),
    ("ns_cpu_pct", "front process CPU % of one core, non-stream c=32", 0),
    ("st_cpu_pct", "front process CPU % of one core, stream c=32", 0),
    ("ns_sim_pct", "simulator CPU % of one core, non-stream c=32", 0),
    ("st_sim_pct", "simulator CPU % of one core, stream c=32", 0),
    ("ns_other_pct", "other processes' CPU % of one core (noise), non-stream c=32", 0),
    ("st_other_pct", "other processes' CPU % of one core (noise), stream c=32", 0),
    ("rss_mib", "peak RSS of the front process (MiB)", 1),
)
RATIO_GOALS = {"ns_rps": 0.70, "st_rps": 0.70}
NOISE_PCT = 15


def render(results: Results) -> str:
    m = results.metrics
    lines = [
        "| c=1 latency | direct | proxy | llmswitch | proxy added | llmswitch added "
        "| llmswitch/proxy added (goal ≤ 1.5) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LATENCY_ROWS:
        p_add, l_add = added(m, "proxy", key), added(m, "llmswitch", key)
        goal = verdict(ratio(l_add, p_add), 1.5, at_most=True)
        cells = [fmt(m[t].get(key)) for t in TARGETS] + [fmt(p_add), fmt(l_add), goal]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| c=32 and memory | direct | proxy | llmswitch | llmswitch/proxy (goal ≥ 0.70) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label, digits in THROUGHPUT_ROWS:
        cells = [fmt(m[t].get(key), digits) for t in TARGETS]
        floor = RATIO_GOALS.get(key)
        share = ratio(m["llmswitch"].get(key), m["proxy"].get(key))
        if key.endswith("_pct"):
            share = None  # a share of a core is context, not a cost to compare
        cells.append(fmt(share) if floor is None else verdict(share, floor, at_most=False))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "direct = the simulator itself (the front process is the simulator); "
        "added = target minus direct."
    )
    noisy = [
        f"{t} {kind} {m[t][f'{kind}_other_pct']:.0f}%"
        for t in TARGETS
        for kind in ("ns", "st")
        if m[t].get(f"{kind}_other_pct", 0.0) > NOISE_PCT
    ]
    if noisy:
        lines.append(
            f"Other processes used over {NOISE_PCT}% of a core during some c=32 runs "
            f"({', '.join(noisy)}): those rates are understated; rerun on a quiet machine."
        )
    for target in TARGETS:
        if results.error_counts[target]:
            lines.append("")
            lines.append(f"**{target}: {results.error_counts[target]} error(s).** First ones:")
            lines.append("")
            lines += ["```", *results.errors[target], "```"]
    return "\n".join(lines)


def section(plan: Plan, generator: str, table: str, git: str) -> str:
    return (
        f"## {now_utc()} — {plan.name} run\n\n"
        f"{machine_line(git)}\n"
        f"- workload: model {MODEL!r} on llmswitch.sim (no pacing), {len(PROMPT)}-char "
        f"prompt echoed back; c=1: {plan.c1_requests} requests per target after "
        f"{plan.c1_warmup} warm-up, targets interleaved; c={plan.concurrency}: "
        f"{generator}, {plan.c32_rounds} round(s) of {plan.c32_seconds:g} s per target, "
        f"each after {plan.warmup_seconds:g} s warm-up, target order reversed each round\n\n"
        f"{table}\n"
    )


def record(text: str) -> None:
    append_section(
        text,
        header=(
            "# Benchmark results\n\n"
            "Written by `ops/bench/run.py` (`make bench`). Each section is one run on one\n"
            "machine: the simulator alone, a minimal quart-trio proxy (the stack's floor) and\n"
            "llmswitch, measured in the same invocation. Compare ratios, not absolute\n"
            "numbers, across machines. Goals: llmswitch adds at most 1.5x the proxy's\n"
            "latency and keeps at least 0.70x its throughput. A run whose 'other processes'\n"
            "rows are well above 0 shared the machine: its c=32 rates are understated.\n\n"
        ),
    )


# -- the run ---------------------------------------------------------------------------


async def measure(plan: Plan, workdir: Path, wrk: str | None, servers: list[Server]) -> Bench:
    """Start the three servers, run the four phases; servers go into `servers` to stop."""
    sim_port, proxy_port, switch_port = free_port(), free_port(), free_port()
    sim = spawn_sim("sim", sim_port, workdir, [MODEL])
    servers.append(sim)
    upstream = f"http://127.0.0.1:{sim_port}/v1"
    proxy_args = [str(BENCH_DIR / "minimal_proxy.py"), "--port", str(proxy_port)]
    proxy = spawn("proxy", [*proxy_args, "--upstream", upstream], proxy_port, workdir)
    servers.append(proxy)
    config = llmswitch_config(switch_port, sim_port, workdir)
    switch = spawn_llmswitch(switch_port, config, workdir)
    servers.append(switch)

    fronts = {"direct": sim, "proxy": proxy, "llmswitch": switch}
    bench = Bench(plan, {}, fronts, workdir, wrk, Results(TARGETS))
    async with httpx.AsyncClient(trust_env=False) as client:
        await wait_ready(client, sim, "/v1/models")  # without the backend nothing is measured
        await wait_ready(client, proxy, "/health")
        try:
            await wait_ready(client, switch, "/health")
        except StartFailed as exc:
            bench.results.error("llmswitch", f"did not start: {exc}")
    for target in TARGETS:
        if target != "llmswitch" or not bench.results.error_counts["llmswitch"]:
            bench.urls[target] = bench.fronts[target].base + "/v1/chat/completions"

    cap = plan.budget_s / 6
    print(f"[bench] c=1 non-stream: {plan.c1_requests} x {len(bench.urls)} targets", flush=True)
    await latency_phase(bench.urls, False, plan, bench.results, cap)
    print("[bench] c=1 stream", flush=True)
    await latency_phase(bench.urls, True, plan, bench.results, cap)
    print(f"[bench] c={plan.concurrency} non-stream", flush=True)
    await bench.throughput_phase(False)
    print(f"[bench] c={plan.concurrency} stream", flush=True)
    await bench.throughput_phase(True)
    for target, server in bench.fronts.items():
        rss = server.peak_rss_mib()
        if rss is not None:
            bench.results.metrics[target]["rss_mib"] = rss
        code = server.proc.poll()
        if code is not None and target in bench.urls:
            bench.results.error(target, f"exited with {code} during the run:\n{server.log_tail()}")
    return bench


async def run(plan: Plan, wrk: str | None, write: bool) -> int:
    generator = "wrk -t1" if wrk else "httpx in the bench process (wrk not found)"
    print(f"[bench] {plan.name} run; c={plan.concurrency} load by {generator}", flush=True)
    servers: list[Server] = []
    git = git_state()  # now: src/ may change while this runs
    with tempfile.TemporaryDirectory(prefix="llmswitch-bench-") as tmp:
        try:
            with trio.fail_after(plan.budget_s):
                bench = await measure(plan, Path(tmp), wrk, servers)
        except StartFailed as exc:
            print(f"[bench] cannot run: {exc}", file=sys.stderr)
            return 2
        except trio.TooSlowError:
            print(f"[bench] gave up: over the {plan.budget_s:g}s budget", file=sys.stderr)
            return 2
        finally:
            for server in servers:
                server.stop()
    table = render(bench.results)
    print()
    print(table)
    if write:
        record(section(plan, generator, table, git))
        print(f"\n[bench] appended to {RESULTS_MD.relative_to(REPO)}")
    return 1 if bench.results.error_counts["llmswitch"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (~30 s)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--no-wrk", action="store_true", help="use the httpx load generator")
    args = parser.parse_args(argv)
    wrk = None if args.no_wrk else shutil.which("wrk")
    return trio.run(run, QUICK if args.quick else FULL, wrk, not args.no_record)


if __name__ == "__main__":
    sys.exit(main())
