"""llmswitch next to LiteLLM's proxy: same simulator, same load, one invocation.

LiteLLM is what most people would run instead, so its numbers are the peer to beat:
added latency at c=1 and c=32, requests/s at c=32, time to first byte of a stream, and
the memory each server holds. The goals are ratios measured in one run, so the machine
cancels out: llmswitch's added latency ≤ 0.2x LiteLLM's, its throughput ≥ 3x, its
RSS ≤ 1/3.

LiteLLM goes into its own venv (ops/bench/.venv-litellm, gitignored); when that install
fails or takes over 8 minutes this prints why and exits 0. Run:
.venv/bin/python ops/bench/peer.py [--quick] [--no-record]. Every server is a child of
this process on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
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
    keep_logs,
    latency_phase,
    llmswitch_config,
    machine_line,
    now_utc,
    ratio,
    record,
    spawn,
    spawn_llmswitch,
    spawn_sim,
    verdict,
    wait_ready,
)

TARGETS = ("direct", "litellm", "llmswitch")
VENV = BENCH_DIR / ".venv-litellm"
LITELLM = VENV / "bin" / "litellm"
INSTALL_TIMEOUT_S = 480.0
LITELLM_START_S = 120.0  # it imports a lot before it listens
FULL = Plan("full", 300, 30, 2000, 5.0, 2, 1.0, budget_s=420.0)
QUICK = Plan("quick", 40, 5, 300, 2.0, 1, 1.0, budget_s=55.0)
VERSION_SCRIPT = "import importlib.metadata as m; print(m.version('litellm'))"
GOAL_LATENCY = 0.2  # llmswitch added / LiteLLM added, at most
GOAL_RPS = 3.0  # llmswitch / LiteLLM, at least
GOAL_RSS = 1 / 3  # llmswitch / LiteLLM, at most
WARM_BLOCK = 20  # c=1 requests in a row per target (the first of each not counted)


def ensure_litellm() -> str | None:
    """The LiteLLM version, installing it first if needed; None (and why) if it can't be."""
    if not LITELLM.exists():
        print(f"[peer] installing litellm[proxy] into {VENV.relative_to(REPO)}", flush=True)
        started = time.monotonic()
        steps = [
            [sys.executable, "-m", "venv", "--clear", str(VENV)],
            [str(VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"],
        ]
        for step in steps:
            left = INSTALL_TIMEOUT_S - (time.monotonic() - started)
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=max(left, 1))
            except subprocess.TimeoutExpired:
                print(f"[peer] SKIP: installing LiteLLM took over {INSTALL_TIMEOUT_S:g}s")
                return None
            if done.returncode != 0:
                tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
                print("[peer] SKIP: could not install LiteLLM:\n  " + "\n  ".join(tail))
                return None
    try:
        done = subprocess.run(
            [str(VENV / "bin" / "python"), "-c", VERSION_SCRIPT],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        print("[peer] SKIP: reading litellm's version took over 120 s")
        return None
    if done.returncode != 0:
        print(f"[peer] SKIP: litellm is not installed: {done.stderr.strip()[-500:]}")
        return None
    return done.stdout.strip()


def litellm_env() -> dict[str, str]:
    """No telemetry, no network fetch of the price map, no database, no master key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LITELLM_", "DATABASE_URL", "OPENAI_", "REDIS_"))
    }
    env.update(
        {
            "LITELLM_TELEMETRY": "False",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            # Loopback-only benchmark: no key, as llmswitch has none here either.
            "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
        }
    )
    return env


def litellm_config(workdir: Path, sim_port: int) -> Path:
    path = workdir / "litellm.yaml"
    path.write_text(
        f"""\
model_list:
  - model_name: {MODEL}
    litellm_params:
      model: openai/{MODEL}
      api_base: http://127.0.0.1:{sim_port}/v1
      api_key: dummy
litellm_settings:
  telemetry: false
  set_verbose: false
general_settings:
  disable_spend_logs: true
""",
        encoding="utf-8",
    )
    return path


# -- report ----------------------------------------------------------------------------


def added(m: dict[str, dict[str, float]], target: str, key: str) -> float | None:
    if key in m[target] and key in m["direct"]:
        return m[target][key] - m["direct"][key]
    return None


LATENCY_ROWS = (
    ("ns_p50", "non-stream latency p50 (ms), c=1"),
    ("ns_p99", "non-stream latency p99 (ms), c=1"),
    ("cold_ns_p50", "non-stream latency p50 (ms), c=1, cold"),
    ("cold_ns_p99", "non-stream latency p99 (ms), c=1, cold"),
    ("ns_c32_p50", "non-stream latency p50 (ms), c=32"),
    ("ns_c32_p99", "non-stream latency p99 (ms), c=32"),
    ("ttfb_p50", "stream time to first byte p50 (ms), c=1"),
    ("ttfb_p99", "stream time to first byte p99 (ms), c=1"),
    ("cold_ttfb_p50", "stream time to first byte p50 (ms), c=1, cold"),
    ("cold_ttfb_p99", "stream time to first byte p99 (ms), c=1, cold"),
    ("st_p50", "stream full answer p50 (ms), c=1"),
)
OTHER_ROWS: tuple[tuple[str, str, int, float | None, bool], ...] = (
    ("ns_rps", "non-stream req/s, c=32", 1, GOAL_RPS, False),
    ("st_rps", "stream req/s, c=32", 1, None, False),
    ("ns_cpu_ms", "server CPU ms per request, non-stream c=32", 2, None, True),
    ("rss_rest_mib", "RSS at rest, after warm-up (MiB)", 1, None, True),
    ("rss_mib", "peak RSS, VmHWM (MiB)", 1, GOAL_RSS, True),
)


def render(results: Results) -> str:
    m = results.metrics
    lines = [
        "| latency | direct | LiteLLM | llmswitch | LiteLLM added | llmswitch added "
        f"| llmswitch/LiteLLM added (goal ≤ {GOAL_LATENCY}) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in LATENCY_ROWS:
        l_add, s_add = added(m, "litellm", key), added(m, "llmswitch", key)
        judged = verdict(ratio(s_add, l_add), GOAL_LATENCY, at_most=True)
        cells = [fmt(m[t].get(key)) for t in TARGETS] + [fmt(l_add), fmt(s_add), judged]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| throughput and memory | direct | LiteLLM | llmswitch | llmswitch/LiteLLM |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label, digits, goal, at_most in OTHER_ROWS:
        cells = [fmt(m[t].get(key), digits) for t in TARGETS]
        share = ratio(m["llmswitch"].get(key), m["litellm"].get(key))
        if goal is None:
            cells.append(fmt(share))
        else:
            sign = "≤" if at_most else "≥"
            cells.append(f"{verdict(share, goal, at_most)} (goal {sign} {goal:.2g})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "direct = the simulator itself; added = target minus direct (c=32 rows: the "
        "same load, so the difference is what the front adds under load). c=1 rows: "
        f"each target takes {WARM_BLOCK} requests in a row, the first of each run not "
        "counted; 'cold' rows alternate the targets request by request, so each request "
        "finds its server idle and its caches cold from the others' work."
    )
    for target in TARGETS:
        if results.error_counts[target]:
            lines += ["", f"**{target}: {results.error_counts[target]} error(s).** First ones:"]
            lines += ["", "```", *results.errors[target], "```"]
    return "\n".join(lines)


def section(plan: Plan, version: str, generator: str, table: str, busy: str, git: str) -> str:
    return (
        f"## {now_utc()}: llmswitch vs LiteLLM proxy (`ops/bench/peer.py`, {plan.name} run)\n\n"
        f"{machine_line(git)}\n"
        f"- LiteLLM {version} (`litellm --config ... --num_workers 1`, no master key, no "
        f"database, telemetry off, local price map), in ops/bench/.venv-litellm\n"
        f"- workload: model {MODEL!r} on one llmswitch.sim (no pacing) behind both, "
        f"{len(PROMPT)}-char prompt echoed back; c=1: {plan.c1_requests} requests per "
        f"target after {plan.c1_warmup} warm-up, in runs of {WARM_BLOCK} and alternating "
        f"(cold); c={plan.concurrency}: "
        f"{generator}, {plan.c32_rounds} round(s) of {plan.c32_seconds:g} s per target, "
        f"each after {plan.warmup_seconds:g} s warm-up{busy}\n\n"
        f"{table}\n"
    )


# -- the run ---------------------------------------------------------------------------


async def measure(plan: Plan, workdir: Path, wrk: str | None, servers: list[Server]) -> Bench:
    sim_port, lite_port, switch_port = free_port(), free_port(), free_port()
    sim = spawn_sim("sim", sim_port, workdir, [MODEL])
    servers.append(sim)
    lite_args = ["--config", str(litellm_config(workdir, sim_port)), "--host", "127.0.0.1"]
    lite_args += ["--port", str(lite_port), "--num_workers", "1"]
    lite = spawn("litellm", lite_args, lite_port, workdir, program=str(LITELLM), env=litellm_env())
    servers.append(lite)
    switch = spawn_llmswitch(switch_port, llmswitch_config(switch_port, sim_port, workdir), workdir)
    servers.append(switch)

    fronts = {"direct": sim, "litellm": lite, "llmswitch": switch}
    bench = Bench(plan, {}, fronts, workdir, wrk, Results(TARGETS))
    async with httpx.AsyncClient(trust_env=False) as client:
        await wait_ready(client, sim, "/v1/models")
        await wait_ready(client, switch, "/health")
        await wait_ready(client, lite, "/health/liveliness", timeout_s=LITELLM_START_S)
    bench.urls = {t: fronts[t].base + "/v1/chat/completions" for t in TARGETS}

    cap = plan.budget_s / 6
    print(f"[peer] c=1 non-stream: {plan.c1_requests} x {len(bench.urls)} targets", flush=True)
    await latency_phase(bench.urls, False, plan, bench.results, cap, WARM_BLOCK)
    await latency_phase(bench.urls, False, plan, bench.results, cap, prefix="cold_")
    for target, server in fronts.items():
        rss = server.tree_rss_mib()  # LiteLLM could fork workers: count them all
        if rss is not None:
            bench.results.metrics[target]["rss_rest_mib"] = rss
    print("[peer] c=1 stream", flush=True)
    await latency_phase(bench.urls, True, plan, bench.results, cap, WARM_BLOCK)
    await latency_phase(bench.urls, True, plan, bench.results, cap, prefix="cold_")
    print(f"[peer] c={plan.concurrency} non-stream", flush=True)
    await bench.throughput_phase(False)
    print(f"[peer] c={plan.concurrency} stream", flush=True)
    await bench.throughput_phase(True)
    for target, server in fronts.items():
        rss = server.peak_rss_mib()
        if rss is not None:
            bench.results.metrics[target]["rss_mib"] = rss
        code = server.proc.poll()
        if code is not None:
            bench.results.error(target, f"exited with {code} during the run:\n{server.log_tail()}")
    return bench


def load_note() -> str:
    """The 1-minute load average: was the machine shared while this ran?"""
    try:
        load1 = os.getloadavg()[0]
    except OSError:
        return ""
    return f"; load average at the end {load1:.2f} on {os.cpu_count()} cores"


async def run(plan: Plan, version: str, wrk: str | None, write: bool, logs: Path | None) -> int:
    generator = "wrk -t1" if wrk else "httpx in the bench process (wrk not found)"
    print(f"[peer] {plan.name} run against LiteLLM {version}; load by {generator}", flush=True)
    servers: list[Server] = []
    git = git_state()  # now: src/ may change while this runs
    with tempfile.TemporaryDirectory(prefix="llmswitch-peer-") as tmp:
        try:
            with trio.fail_after(plan.budget_s):
                bench = await measure(plan, Path(tmp), wrk, servers)
        except StartFailed as exc:
            print(f"[peer] cannot run: {exc}", file=sys.stderr)
            return 2
        except trio.TooSlowError:
            print(f"[peer] gave up: over the {plan.budget_s:g}s budget", file=sys.stderr)
            return 2
        finally:
            for server in reversed(servers):
                server.stop()
            keep_logs(servers, logs)
    table = render(bench.results)
    print()
    print(table)
    if write:
        record(section(plan, version, generator, table, load_note(), git))
        print(f"\n[peer] appended to {RESULTS_MD.relative_to(REPO)}")
    return 1 if bench.results.error_counts["llmswitch"] else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run (< 1 min)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--no-wrk", action="store_true", help="use the httpx load generator")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy server logs here")
    args = parser.parse_args()
    version = ensure_litellm()
    if version is None:
        print("[peer] skipped: LiteLLM is not available; nothing measured.")
        return 0
    wrk = None if args.no_wrk else shutil.which("wrk")
    plan = QUICK if args.quick else FULL
    return trio.run(run, plan, version, wrk, not args.no_record, args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
