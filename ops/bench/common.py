"""Pieces every benchmark here shares, so each script only says what it measures.

Server subprocesses and their /proc readings (RSS, fds, CPU), the request timer and its
answer check, the c=1 latency and c=32 load phases, machine facts and the RESULTS.md
writer. Every server is a child of the bench process, bound to 127.0.0.1, and stopped
by its own pid.
"""

from __future__ import annotations

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
import time
from collections.abc import Mapping, Sequence
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
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class StartFailed(Exception):
    """A server did not come up; the message is what it said, verbatim."""


# -- server processes ------------------------------------------------------------------


@dataclass
class Server:
    """One server subprocess, where its output goes, and what /proc says about it."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status_kib(self, key: str) -> int | None:
        """A kB field of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        return None

    def rss_mib(self) -> float | None:
        """VmRSS now."""
        kib = self.status_kib("VmRSS")
        return None if kib is None else kib / 1024

    def peak_rss_mib(self) -> float | None:
        """VmHWM: the high-water mark of resident memory, read before the process ends."""
        kib = self.status_kib("VmHWM")
        return None if kib is None else kib / 1024

    def tree_rss_mib(self) -> float | None:
        """VmRSS of the process and all its descendants (a server with worker children)."""
        pids = [self.proc.pid, *descendants(self.proc.pid)]
        total = 0
        for pid in pids:
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024 if total else None

    def fd_count(self) -> int | None:
        """Open file descriptors (sockets, the database, logs) right now."""
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time so far (fields 14 and 15 of /proc/PID/stat)."""
        return proc_cpu_seconds(self.proc.pid)

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

    def kill(self) -> None:
        """SIGKILL at once, as a crash would: sockets die without a goodbye."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Child pids, recursively, from /proc/PID/task/*/children."""
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 1000:
        current = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                text = Path(f"/proc/{current}/task/{task}/children").read_text()
            except OSError:
                continue
            for child in text.split():
                found.append(int(child))
                todo.append(int(child))
    return found


def keep_logs(servers: Sequence[Server], dest: Path | None) -> None:
    """Copy each server's log to dest before its temporary directory goes."""
    if dest is None:
        return
    dest.mkdir(parents=True, exist_ok=True)
    for server in servers:
        if server.log.exists():
            shutil.copyfile(server.log, dest / server.log.name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    name: str,
    args: Sequence[str],
    port: int,
    workdir: Path,
    *,
    program: str = PYTHON,
    env: Mapping[str, str] | None = None,
) -> Server:
    """Start `program args...` (the bench's Python by default), its output to NAME.log."""
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [program, *args],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            env=dict(env) if env is not None else None,
        )
    return Server(name, port, proc, log)


def spawn_sim(name: str, port: int, workdir: Path, models: Sequence[str], *knobs: str) -> Server:
    """`python -m llmswitch.sim` on `port` serving `models`, with extra knob flags."""
    args = ["-m", "llmswitch.sim", "--port", str(port), "--name", name]
    for model in models:
        args += ["--model", model]
    return spawn(name, [*args, *knobs], port, workdir)


def spawn_llmswitch(port: int, config: Path, workdir: Path) -> Server:
    return spawn("llmswitch", ["-m", "llmswitch", "serve", "--config", str(config)], port, workdir)


async def wait_ready(
    client: httpx.AsyncClient, server: Server, path: str, timeout_s: float = START_TIMEOUT_S
) -> None:
    """Poll until `path` answers 200; StartFailed with the server's own words if not."""
    last = "no answer yet"
    with trio.move_on_after(timeout_s):
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
        f"{server.name}: no 200 from {path} within {timeout_s:g}s (last: {last}); "
        f"its output:\n{server.log_tail()}"
    )


def llmswitch_config(
    port: int,
    sim_port: int,
    workdir: Path,
    *,
    max_in_flight: int | None = None,
    max_connections: int | None = None,
    workers: int = 1,
    redis: tuple[str, str] | None = None,
) -> Path:
    """One simulated backend serving MODEL; limits raised only when asked. ``redis``:
    (URL, prefix) of a fleet's shared state; ``workers`` processes (needs ``redis``)."""
    server_extra = f"max_in_flight = {max_in_flight}\n" if max_in_flight else ""
    server_extra += f"workers = {workers}\n" if workers > 1 else ""
    backend_extra = f"max_connections = {max_connections}\n" if max_connections else ""
    cluster = f'[cluster]\nredis_url = "{redis[0]}"\nprefix = "{redis[1]}"\n' if redis else ""
    path = workdir / "llmswitch.toml"
    path.write_text(
        f"""\
[server]
host = "127.0.0.1"
port = {port}
grace_s = 1
{server_extra}
[store]
path = "{workdir / "bench.db"}"

[[backends]]
name = "sim"
base_url = "http://127.0.0.1:{sim_port}/v1"
locality = "local"
{backend_extra}
[[models]]
id = "{MODEL}"
backend = "sim"
{cluster}""",
        encoding="utf-8",
    )
    return path


def raise_fd_limit(wanted: int) -> int:
    """Lift this process's soft RLIMIT_NOFILE towards `wanted` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- requests and their checks ---------------------------------------------------------


def body(stream: bool, model: str = MODEL, prompt: str = PROMPT) -> bytes:
    payload = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}
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
    # identity: a server that compresses (LiteLLM does) is timed on the same bytes.
    headers = {"content-type": "application/json", "accept-encoding": "identity"}
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


# -- the side-by-side phases -----------------------------------------------------------


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


@dataclass
class Results:
    """Metrics per target (missing = not measured) and the first errors each one hit."""

    targets: tuple[str, ...]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    error_counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for target in self.targets:
            self.metrics.setdefault(target, {})
            self.errors.setdefault(target, [])
            self.error_counts.setdefault(target, 0)

    def error(self, target: str, text: str) -> None:
        self.error_counts[target] += 1
        if len(self.errors[target]) < MAX_ERRORS and text not in self.errors[target]:
            self.errors[target].append(text)


async def latency_phase(
    urls: dict[str, str],
    stream: bool,
    plan: Plan,
    results: Results,
    cap_s: float,
    block: int = 1,
    prefix: str = "",
) -> None:
    """Concurrency 1, the targets taking turns so drift hits all alike.

    ``block=1`` alternates request by request: every request reaches a server that sat
    idle while the others ran, its caches cold from their work (a server sharing its
    host). A larger ``block`` sends that many in a row to each target and leaves out the
    first of each run, which pays that wake-up: the server's own cost, warm. Metrics are
    stored under ``prefix`` + their usual keys.
    """
    payload = body(stream)
    totals: dict[str, list[float]] = {t: [] for t in urls}
    firsts: dict[str, list[float]] = {t: [] for t in urls}
    failures = dict.fromkeys(urls, 0)
    clients = {t: httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, trust_env=False) for t in urls}
    rounds = math.ceil((plan.c1_warmup + plan.c1_requests) / block)
    try:
        with trio.move_on_after(cap_s):
            order = list(urls)
            for r in range(rounds):
                shift = r % len(order)
                for target in order[shift:] + order[:shift]:
                    for k in range(block + (block > 1)):
                        if failures[target] >= MAX_ERRORS:
                            break
                        total, first, err = await timed_request(
                            clients[target], urls[target], payload, stream
                        )
                        if err is not None:
                            failures[target] += 1
                            results.error(target, err)
                        elif r * block >= plan.c1_warmup and (block == 1 or k > 0):
                            totals[target].append(total * 1000)
                            firsts[target].append(first * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    kind = prefix + ("st" if stream else "ns")
    for target in urls:
        if failures[target] >= MAX_ERRORS or len(totals[target]) < plan.c1_requests // 2:
            continue  # too few good answers to call it a measurement
        m = results.metrics[target]
        m[f"{kind}_p50"], m[f"{kind}_p99"] = (percentile(totals[target], q) for q in (50, 99))
        if stream:
            ttfb = f"{prefix}ttfb"
            m[f"{ttfb}_p50"], m[f"{ttfb}_p99"] = (percentile(firsts[target], q) for q in (50, 99))


@dataclass(frozen=True)
class Load:
    """What one concurrency run achieved."""

    requests: int
    seconds: float
    errors: int
    first_error: str | None = None
    p50_ms: float | None = None  # per-request latency under this load
    p99_ms: float | None = None


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
    p50, p99 = data.get("p50_us"), data.get("p99_us")
    return Load(
        data["requests"],
        data["duration_us"] / 1e6,
        errors,
        first,
        None if p50 is None else p50 / 1000,
        None if p99 is None else p99 / 1000,
    )


async def httpx_load(
    url: str, payload: bytes, stream: bool, limit: int, seconds: float, concurrency: int
) -> Load:
    """Fallback without wrk: bounded by count and time; the client competes for CPU."""
    issued = ok = errors = 0
    first_error: str | None = None
    took: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        timeout=REQUEST_TIMEOUT_S, limits=limits, trust_env=False
    ) as client:

        async def worker() -> None:
            nonlocal issued, ok, errors, first_error
            while issued < limit:
                issued += 1
                total, _, err = await timed_request(client, url, payload, stream)
                if err is None:
                    ok += 1
                    took.append(total * 1000)
                else:
                    errors += 1
                    first_error = first_error or err

        started = time.perf_counter()
        with trio.move_on_after(seconds):
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
    if not took:
        return Load(ok, elapsed, errors, first_error)
    p50, p99 = percentile(took, 50), percentile(took, 99)
    return Load(ok, elapsed, errors, first_error, p50, p99)


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
        front_cpu = sum(proc_cpu_seconds(p) or 0.0 for p in (front.pid, *descendants(front.pid)))
        return cls(front_cpu, sim.cpu_seconds() or 0.0, bench, busy, total)


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
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)

    def add(self, load: Load, before: Sample, after: Sample) -> None:
        if load.p50_ms is not None and load.p99_ms is not None:
            self.p50s.append(load.p50_ms)
            self.p99s.append(load.p99_ms)
        self.requests += load.requests
        self.seconds += load.seconds
        self.errors += load.errors
        self.front_cpu += after.front - before.front
        self.sim_cpu += after.sim - before.sim
        self.bench_cpu += after.bench - before.bench
        self.busy_ticks += after.busy_ticks - before.busy_ticks
        self.ticks += after.ticks - before.ticks


@dataclass
class Bench:
    """Everything one run needs: sizes, targets, the load generator and its results.

    `fronts` must hold a "direct" entry: the simulator, whose CPU is read alongside.
    """

    plan: Plan
    urls: dict[str, str]
    fronts: dict[str, Server]
    workdir: Path
    wrk: str | None
    results: Results

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
            if total.p50s:  # the mean over rounds of each round's percentile
                m[f"{kind}_c32_p50"] = sum(total.p50s) / len(total.p50s)
                m[f"{kind}_c32_p99"] = sum(total.p99s) / len(total.p99s)
            if total.ticks:
                # Whatever the machine did beyond our servers and the load generator.
                busy_cores = total.busy_ticks / total.ticks * (os.cpu_count() or 1)
                ours = total.front_cpu + total.bench_cpu
                ours += total.sim_cpu if target != "direct" else 0.0
                m[f"{kind}_other_pct"] = max(0.0, busy_cores * 100 - ours * 100 / total.seconds)


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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state(repo: Path = REPO) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "src"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{rev} (+ uncommitted changes in src/)" if dirty else rev or "unknown"


def now_utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def machine_line(git: str | None = None) -> str:
    """The facts a figure needs beside it: machine, cores, memory, Python, load, git.

    Pass `git` as read when the servers started: src/ may change during a long run.
    The load average says how shared the machine was: absolute times scale with it.
    """
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {mem_kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        mem = ""
    return (
        f"- machine: {platform.machine()}, {cpu_model()}, {os.cpu_count()} cores{mem}; "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}\n"
        f"- llmswitch at git {git or git_state()}"
    )


def record(text: str, header: str = "# Benchmark results\n\n") -> None:
    """Append a section to RESULTS.md; earlier sections are never touched."""
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text(header, encoding="utf-8")
    with RESULTS_MD.open("a", encoding="utf-8") as out:
        out.write(text.rstrip("\n") + "\n\n")


def publish(text: str, *, keep: bool) -> None:
    """Print a section; append it to RESULTS.md too unless told not to (``--no-record``)."""
    print(text)
    if keep:
        record(text)
