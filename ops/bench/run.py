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
import datetime
import json
import math
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trio

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
RESULTS_MD = BENCH_DIR / "RESULTS.md"
PYTHON = sys.executable
MODEL = "small"
# Long enough that the echoed reply is a stream of ~40 events, as a short answer would be.
PROMPT = (
    "Summarise in one paragraph why a gateway that sends each request to the cheapest "
    "model able to do the job saves money, and what it must do when a backend slows "
    "down, fails halfway through an answer, or starts to rate-limit its callers."
)
TARGETS = ("direct", "proxy", "llmswitch")
START_TIMEOUT_S = 30.0
REQUEST_TIMEOUT_S = 10.0
MAX_ERRORS = 5  # a target that fails this often in a phase leaves that phase
WRK_LUA = """\
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Plan:
    """How much load; quick is for a smoke check, full for numbers worth recording."""

    name: str
    c1_requests: int
    c1_warmup: int
    c32_requests: int  # the cap for the httpx generator (wrk runs for a fixed time)
    c32_seconds: float  # per target and round
    c32_rounds: int  # rounds alternate the target order, so drift does not favour one
    warmup_seconds: float
    budget_s: float  # hard stop for the whole run
    concurrency: int = 32


FULL = Plan("full", 300, 30, 2000, 5.0, 2, 1.0, budget_s=240.0)
QUICK = Plan("quick", 60, 10, 400, 2.0, 1, 1.0, budget_s=90.0)


class StartFailed(Exception):
    """A server did not come up; the message is what it said, verbatim."""


# -- server processes ------------------------------------------------------------------


@dataclass
class Server:
    """One server subprocess and where its output goes."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _status_field(self, key: str) -> int | None:
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return None

    def peak_rss_mib(self) -> float | None:
        """VmHWM: the high-water mark of resident memory, read before the process ends."""
        kib = self._status_field("VmHWM")
        return None if kib is None else kib / 1024

    def cpu_seconds(self) -> float | None:
        """User + system CPU time so far (fields 14 and 15 of /proc/PID/stat)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s: this run's own process, by its pid."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(name: str, args: Sequence[str], port: int, workdir: Path) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, *args], cwd=workdir, stdout=out, stderr=subprocess.STDOUT, close_fds=True
        )
    return Server(name, port, proc, log)


async def wait_ready(client: httpx.AsyncClient, server: Server, path: str) -> None:
    """Poll until `path` answers 200; StartFailed with the server's own words if not."""
    last = "no answer yet"
    with trio.move_on_after(START_TIMEOUT_S):
        while True:
            code = server.proc.poll()
            if code is not None:
                raise StartFailed(
                    f"{server.name} exited with code {code} before {path} answered 200; "
                    f"its output:\n{server.log_tail()}"
                )
            try:
                response = await client.get(server.base + path, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:500]}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            await trio.sleep(0.1)
    raise StartFailed(
        f"{server.name}: no 200 from {path} within {START_TIMEOUT_S:g}s (last: {last}); "
        f"its output:\n{server.log_tail()}"
    )


def llmswitch_config(port: int, sim_port: int, workdir: Path) -> Path:
    path = workdir / "llmswitch.toml"
    path.write_text(
        f"""\
[server]
host = "127.0.0.1"
port = {port}
grace_s = 1

[store]
path = "{workdir / "bench.db"}"

[[backends]]
name = "sim"
base_url = "http://127.0.0.1:{sim_port}/v1"
locality = "local"

[[models]]
id = "{MODEL}"
backend = "sim"
""",
        encoding="utf-8",
    )
    return path


# -- measurements ----------------------------------------------------------------------


@dataclass
class Results:
    """Metrics per target (missing = not measured) and the first errors each one hit."""

    metrics: dict[str, dict[str, float]] = field(default_factory=lambda: {t: {} for t in TARGETS})
    errors: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in TARGETS})
    error_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TARGETS, 0))

    def error(self, target: str, text: str) -> None:
        self.error_counts[target] += 1
        if len(self.errors[target]) < MAX_ERRORS and text not in self.errors[target]:
            self.errors[target].append(text)


def body(stream: bool) -> bytes:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    return json.dumps(payload).encode()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: an observed value, no interpolation between samples."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def check_answer(status: int, data: bytes, stream: bool) -> str | None:
    """Why an answer is not a good one, or None: a fast error must not pass for speed."""
    if status != 200:
        return f"HTTP {status}: {data[:500].decode(errors='replace')}"
    if stream and not data.rstrip().endswith(b"data: [DONE]"):
        return f"stream without [DONE]: ...{data[-300:].decode(errors='replace')}"
    if not stream and b'"choices"' not in data:
        return f"answer without choices: {data[:300].decode(errors='replace')}"
    return None


async def timed_request(
    client: httpx.AsyncClient, url: str, payload: bytes, stream: bool
) -> tuple[float, float, str | None]:
    """(seconds to the whole answer, seconds to its first body byte, error or None)."""
    started = time.perf_counter()
    first: float | None = None
    parts: list[bytes] = []
    headers = {"content-type": "application/json"}
    try:
        async with client.stream("POST", url, content=payload, headers=headers) as response:
            async for chunk in response.aiter_raw():
                if first is None:
                    first = time.perf_counter()
                parts.append(chunk)
            status = response.status_code
    except httpx.HTTPError as exc:
        return 0.0, 0.0, f"{type(exc).__name__}: {exc}"
    ended = time.perf_counter()
    return (
        ended - started,
        (first or ended) - started,
        check_answer(status, b"".join(parts), stream),
    )


async def latency_phase(
    urls: dict[str, str], stream: bool, plan: Plan, results: Results, cap_s: float
) -> None:
    """Concurrency 1, the targets interleaved request by request so drift hits all alike."""
    payload = body(stream)
    totals: dict[str, list[float]] = {t: [] for t in urls}
    firsts: dict[str, list[float]] = {t: [] for t in urls}
    failures = dict.fromkeys(urls, 0)
    clients = {t: httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, trust_env=False) for t in urls}
    try:
        with trio.move_on_after(cap_s):
            order = list(urls)
            for i in range(plan.c1_warmup + plan.c1_requests):
                shift = i % len(order)
                for target in order[shift:] + order[:shift]:
                    if failures[target] >= MAX_ERRORS:
                        continue
                    total, first, err = await timed_request(
                        clients[target], urls[target], payload, stream
                    )
                    if err is not None:
                        failures[target] += 1
                        results.error(target, err)
                    elif i >= plan.c1_warmup:
                        totals[target].append(total * 1000)
                        firsts[target].append(first * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    kind = "st" if stream else "ns"
    for target in urls:
        if failures[target] >= MAX_ERRORS or len(totals[target]) < plan.c1_requests // 2:
            continue  # too few good answers to call it a measurement
        m = results.metrics[target]
        m[f"{kind}_p50"], m[f"{kind}_p99"] = (percentile(totals[target], q) for q in (50, 99))
        if stream:
            m["ttfb_p50"], m["ttfb_p99"] = (percentile(firsts[target], q) for q in (50, 99))


@dataclass(frozen=True)
class Load:
    """What one concurrency run achieved."""

    requests: int
    seconds: float
    errors: int
    first_error: str | None = None


async def wrk_load(
    wrk: str, script: Path, url: str, payload: bytes, seconds: float, concurrency: int
) -> Load:
    """wrk keeps the load generator's CPU small next to the servers on a 2-core box."""
    # wrk takes whole seconds and always runs them out (thread:stop() does not end it early).
    cmd = [wrk, "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    env = {**os.environ, "BENCH_BODY": payload.decode()}
    with trio.fail_after(seconds + 30):
        done = await trio.run_process(
            [*cmd, "-s", str(script), url], capture_stdout=True, capture_stderr=True, env=env
        )
    out = done.stdout.decode(errors="replace")
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        why = f"exit {done.returncode}: {out}{done.stderr.decode(errors='replace')}"
        return Load(0, seconds, 1, f"wrk printed no summary ({why.strip()})")
    data = json.loads(line[len("BENCH ") :])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    first = None
    if errors:
        first = ", ".join(
            f"{k} {data[k]}" for k in ("connect", "read", "write", "status", "timeout")
        )
        first = f"wrk errors: {first}"
    return Load(data["requests"], data["duration_us"] / 1e6, errors, first)


async def httpx_load(
    url: str, payload: bytes, stream: bool, limit: int, seconds: float, concurrency: int
) -> Load:
    """Fallback without wrk: bounded by count and time; the client competes for CPU."""
    issued = ok = errors = 0
    first_error: str | None = None
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False
    ) as client:

        async def worker() -> None:
            nonlocal issued, ok, errors, first_error
            while issued < limit:
                issued += 1
                _, _, err = await timed_request(client, url, payload, stream)
                if err is None:
                    ok += 1
                else:
                    errors += 1
                    first_error = first_error or err

        started = time.perf_counter()
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
    return Load(ok, elapsed, errors, first_error)


@dataclass
class Bench:
    """Everything one run needs: sizes, targets, the load generator and its results."""

    plan: Plan
    urls: dict[str, str]
    fronts: dict[str, Server]
    workdir: Path
    wrk: str | None
    results: Results = field(default_factory=Results)

    async def load(self, url: str, stream: bool, seconds: float, limit: int) -> Load:
        concurrency = self.plan.concurrency
        if self.wrk is None:
            return await httpx_load(url, body(stream), stream, limit, seconds, concurrency)
        script = self.workdir / "bench.lua"
        if not script.exists():
            script.write_text(WRK_LUA, encoding="utf-8")
        return await wrk_load(self.wrk, script, url, body(stream), seconds, concurrency)

    async def throughput_phase(self, stream: bool) -> None:
        """Concurrency 32, one target at a time; CPU time of the servers alongside."""
        plan = self.plan
        totals = {target: Totals() for target in self.urls}
        for round_ in range(plan.c32_rounds):
            order = list(self.urls) if round_ % 2 == 0 else list(reversed(self.urls))
            for target in order:
                front = self.fronts[target]
                if front.proc.poll() is not None:
                    self.results.error(target, f"{target} exited with {front.proc.poll()}")
                    continue
                url = self.urls[target]
                await self.load(url, stream, plan.warmup_seconds, plan.c32_requests // 10)
                before = Sample.take(front, self.fronts["direct"])
                load = await self.load(url, stream, plan.c32_seconds, plan.c32_requests)
                totals[target].add(load, before, Sample.take(front, self.fronts["direct"]))
                if load.errors:
                    self.results.error(target, load.first_error or f"{load.errors} errors")
        kind = "st" if stream else "ns"
        for target, total in totals.items():
            if total.requests == 0 or total.errors > total.requests // 100:
                continue  # more than 1% errors: the rate would flatter a failing server
            m = self.results.metrics[target]
            m[f"{kind}_rps"] = total.requests / total.seconds
            m[f"{kind}_cpu_ms"] = total.front_cpu * 1000 / total.requests
            m[f"{kind}_cpu_pct"] = total.front_cpu * 100 / total.seconds
            m[f"{kind}_sim_pct"] = total.sim_cpu * 100 / total.seconds
            if total.ticks:
                # Whatever the machine did beyond our servers and the load generator.
                busy_cores = total.busy_ticks / total.ticks * (os.cpu_count() or 1)
                ours = total.front_cpu + total.bench_cpu
                ours += total.sim_cpu if target != "direct" else 0.0
                m[f"{kind}_other_pct"] = max(0.0, busy_cores * 100 - ours * 100 / total.seconds)


@dataclass(frozen=True)
class Sample:
    """CPU counters at one instant: front process, simulator, this process and wrk, machine."""

    front: float
    sim: float
    bench: float
    busy_ticks: int
    ticks: int

    @classmethod
    def take(cls, front: Server, sim: Server) -> Sample:
        busy, total = machine_cpu()
        bench = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):  # wrk once reaped
            usage = resource.getrusage(who)
            bench += usage.ru_utime + usage.ru_stime
        return cls(front.cpu_seconds() or 0.0, sim.cpu_seconds() or 0.0, bench, busy, total)


@dataclass
class Totals:
    """One target's load runs added up across rounds."""

    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    front_cpu: float = 0.0
    sim_cpu: float = 0.0
    bench_cpu: float = 0.0
    busy_ticks: int = 0
    ticks: int = 0

    def add(self, load: Load, before: Sample, after: Sample) -> None:
        self.requests += load.requests
        self.seconds += load.seconds
        self.errors += load.errors
        self.front_cpu += after.front - before.front
        self.sim_cpu += after.sim - before.sim
        self.bench_cpu += after.bench - before.bench
        self.busy_ticks += after.busy_ticks - before.busy_ticks
        self.ticks += after.ticks - before.ticks


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies over all cores: is the box saturated, or is a server waiting?"""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:8]]
    except (OSError, ValueError, IndexError):
        return 0, 0
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


# -- report ----------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def added(m: dict[str, dict[str, float]], target: str, key: str) -> float | None:
    if key in m[target] and key in m["direct"]:
        return m[target][key] - m["direct"][key]
    return None


def ratio(top: float | None, bottom: float | None) -> float | None:
    """None when the floor is too small to divide by honestly (noise, not overhead)."""
    if top is None or bottom is None or bottom <= 0.005:
        return None
    return top / bottom


def verdict(value: float | None, goal: float, at_most: bool) -> str:
    if value is None:
        return "—"
    good = value <= goal if at_most else value >= goal
    return f"{value:.2f} {'ok' if good else 'MISS'}"


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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "src"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev} (+ uncommitted changes in src/)" if dirty else rev or "unknown"


def section(plan: Plan, generator: str, table: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"## {now} — {plan.name} run\n\n"
        f"- machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}\n"
        f"- llmswitch at git {git_state()}\n"
        f"- workload: model {MODEL!r} on llmswitch.sim (no pacing), {len(PROMPT)}-char "
        f"prompt echoed back; c=1: {plan.c1_requests} requests per target after "
        f"{plan.c1_warmup} warm-up, targets interleaved; c={plan.concurrency}: "
        f"{generator}, {plan.c32_rounds} round(s) of {plan.c32_seconds:g} s per target, "
        f"each after {plan.warmup_seconds:g} s warm-up, target order reversed each round\n\n"
        f"{table}\n"
    )


def record(text: str) -> None:
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(
            "# Benchmark results\n\n"
            "Written by `ops/bench/run.py` (`make bench`). Each section is one run on one\n"
            "machine: the simulator alone, a minimal quart-trio proxy (the stack's floor) and\n"
            "llmswitch, measured in the same invocation. Compare ratios, not absolute\n"
            "numbers, across machines. Goals: llmswitch adds at most 1.5x the proxy's\n"
            "latency and keeps at least 0.70x its throughput. A run whose 'other processes'\n"
            "rows are well above 0 shared the machine: its c=32 rates are understated.\n\n",
            encoding="utf-8",
        )
    with RESULTS_MD.open("a", encoding="utf-8") as out:
        out.write(text + "\n")


# -- the run ---------------------------------------------------------------------------


async def measure(plan: Plan, workdir: Path, wrk: str | None, servers: list[Server]) -> Bench:
    """Start the three servers, run the four phases; servers go into `servers` to stop."""
    sim_port, proxy_port, switch_port = free_port(), free_port(), free_port()
    sim = spawn(
        "sim", ["-m", "llmswitch.sim", "--port", str(sim_port), "--model", MODEL], sim_port, workdir
    )
    servers.append(sim)
    upstream = f"http://127.0.0.1:{sim_port}/v1"
    proxy_args = [str(BENCH_DIR / "minimal_proxy.py"), "--port", str(proxy_port)]
    proxy = spawn("proxy", [*proxy_args, "--upstream", upstream], proxy_port, workdir)
    servers.append(proxy)
    config = llmswitch_config(switch_port, sim_port, workdir)
    switch = spawn(
        "llmswitch", ["-m", "llmswitch", "serve", "--config", str(config)], switch_port, workdir
    )
    servers.append(switch)

    bench = Bench(plan, {}, {"direct": sim, "proxy": proxy, "llmswitch": switch}, workdir, wrk)
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
        record(section(plan, generator, table))
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
