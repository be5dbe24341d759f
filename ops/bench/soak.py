"""Does llmswitch stay flat over a long run of mixed, faulty traffic?

A gateway that leaks a little per request, or per failed stream, or per backend that
dies and comes back, looks fine in a one-minute benchmark and falls over after a week.
This sends a bounded rate of mixed requests (stream and not, named models and `auto`)
through llmswitch to three simulators: a healthy one, one that fails 10% of requests
with a 500, and one that is killed (SIGKILL) every few minutes, kept down, then started
again on the same port. llmswitch's RSS and open fds are read at a quiet point before
and after the soak and every minute in between; the growth and the error rate the
clients saw are the result.

Run: .venv/bin/python ops/bench/soak.py [--minutes N | --quick] [--no-record]. Every
process is a child of this one on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trio
from common import (
    REPO,
    RESULTS_MD,
    Server,
    StartFailed,
    free_port,
    git_state,
    keep_logs,
    machine_line,
    now_utc,
    raise_fd_limit,
    record,
    spawn_llmswitch,
    spawn_sim,
    wait_ready,
)

PROMPTS = (
    "hi",
    "Write a Python function that merges two sorted lists and explain its complexity.",
    "Compare the trade-offs of SQLite and Postgres for a small home server, briefly.",
    "Summarise why a gateway should fail over before the first byte but never splice "
    "two models' output into one answer, in three sentences.",
)
# (model asked for, weight): named models with fallbacks, and auto.
MODELS = (("auto", 3), ("small", 2), ("medium", 1), ("flaky-7b", 2), ("lan-14b", 2))
MAX_ERROR_TEXTS = 3


@dataclass(frozen=True)
class Plan:
    """One soak's sizes; every duration in seconds."""

    name: str
    soak_s: float
    rate: float  # requests started per second
    warmup_s: float
    quiet_s: float  # no traffic before the start and end readings
    kill_every_s: float
    down_s: float
    sample_every_s: float
    max_outstanding: int = 300
    request_timeout_s: float = 30.0

    @property
    def budget_s(self) -> float:
        return self.warmup_s + self.soak_s + 2 * self.quiet_s + self.down_s + 120


def plan_for(minutes: float, quick: bool) -> Plan:
    if quick:
        return Plan("quick", 30.0, 20.0, 5.0, 3.0, 12.0, 8.0, 5.0)
    return Plan(f"{minutes:g}-minute", minutes * 60, 20.0, 30.0, 5.0, 180.0, 20.0, 60.0)


@dataclass
class Tally:
    """Client-side counts; read by the sampler while requests run."""

    started: int = 0
    done: int = 0
    ok: int = 0
    skipped: int = 0  # not sent: max_outstanding requests already waiting
    outstanding: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    texts: dict[str, list[str]] = field(default_factory=dict)
    by_model: Counter[str] = field(default_factory=Counter)

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())

    def error(self, kind: str, text: str) -> None:
        self.errors[kind] += 1
        seen = self.texts.setdefault(kind, [])
        if len(seen) < MAX_ERROR_TEXTS:
            seen.append(text[:300])


@dataclass
class Reading:
    t_s: float
    phase: str
    rss_mib: float | None
    fds: int | None
    cpu_s: float | None
    done: int
    errors: int
    outstanding: int
    lan_up: bool


def describe_failure(status: int, data: bytes, stream: bool) -> tuple[str, str] | None:
    """(category, text) of a bad answer, or None for a good one."""
    text = data[-400:].decode(errors="replace")
    if status != 200:
        code = ""
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            code = str(json.loads(data).get("error", {}).get("code") or "")
        return f"HTTP {status} {code}".strip(), data[:400].decode(errors="replace")
    if stream:
        if b'"error"' in data:
            return "stream cut with an error event", text
        if not data.rstrip().endswith(b"data: [DONE]"):
            return "stream without [DONE]", text
    elif b'"choices"' not in data:
        return "answer without choices", text
    return None


async def one_request(
    client: httpx.AsyncClient, url: str, rng: random.Random, tally: Tally, timeout_s: float
) -> None:
    model = rng.choices([m for m, _ in MODELS], [w for _, w in MODELS])[0]
    stream = rng.random() < 0.5
    payload = {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
    }
    tally.by_model[f"{model} {'stream' if stream else 'json'}"] += 1
    tally.outstanding += 1
    try:
        with trio.fail_after(timeout_s):
            async with client.stream("POST", url, json=payload) as response:
                data = b"".join([chunk async for chunk in response.aiter_raw()])
                status = response.status_code
        failure = describe_failure(status, data, stream)
        if failure is None:
            tally.ok += 1
        else:
            tally.error(*failure)
    except trio.TooSlowError:
        tally.error("client timeout", f"{model} stream={stream}: no answer in {timeout_s:g}s")
    except httpx.HTTPError as exc:
        tally.error(f"transport {type(exc).__name__}", repr(exc))
    finally:
        tally.outstanding -= 1
        tally.done += 1


async def traffic(
    client: httpx.AsyncClient,
    url: str,
    plan: Plan,
    seconds: float,
    tally: Tally,
    rng: random.Random,
) -> None:
    """Start requests at `plan.rate` for `seconds`; wait for them (each has a timeout)."""
    count = int(seconds * plan.rate)
    began = trio.current_time()
    async with trio.open_nursery() as nursery:
        for i in range(count):
            await trio.sleep_until(began + i / plan.rate)
            if tally.outstanding >= plan.max_outstanding:
                tally.skipped += 1
                continue
            tally.started += 1
            nursery.start_soon(one_request, client, url, rng, tally, plan.request_timeout_s)


@dataclass
class Backends:
    """The three simulators; `lan` is the one that gets killed and restarted."""

    workdir: Path
    ports: dict[str, int]
    servers: list[Server]
    lan: Server | None = None
    kills: int = 0

    def start_lan(self) -> Server:
        knobs = ("--ttft", "0.05", "--tps", "20")
        self.lan = spawn_sim("lan", self.ports["lan"], self.workdir, ["lan-14b"], *knobs)
        self.servers.append(self.lan)
        return self.lan

    @property
    def lan_up(self) -> bool:
        return self.lan is not None and self.lan.proc.poll() is None


async def killer(backends: Backends, plan: Plan, until: float) -> None:
    """Every kill_every_s: SIGKILL the lan simulator, wait down_s, start it again."""
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(int(plan.soak_s / plan.kill_every_s) + 1):
            await trio.sleep(plan.kill_every_s - plan.down_s)
            if trio.current_time() + plan.down_s + 5 > until:
                return  # no kill that would still be down at the end reading
            assert backends.lan is not None
            backends.lan.kill()
            backends.kills += 1
            print(f"[soak] lan simulator killed ({backends.kills})", flush=True)
            await trio.sleep(plan.down_s)
            lan = backends.start_lan()
            try:
                await wait_ready(client, lan, "/v1/models", timeout_s=15)
            except StartFailed as exc:
                print(f"[soak] lan did not come back: {exc}", flush=True)
                return
            print("[soak] lan simulator back on its port", flush=True)


async def sampler(
    switch: Server,
    backends: Backends,
    tally: Tally,
    readings: list[Reading],
    phase: list[str],
    started: float,
    every_s: float,
    log: Path | None,
) -> None:
    """Every `every_s`: llmswitch's VmRSS, fds, CPU and the clients' counts; bounded."""
    header = "t_s,phase,rss_mib,fds,cpu_s,done,errors,outstanding,lan_up"
    print(f"[soak] csv {header}", flush=True)
    append_line(log, header, fresh=True)
    for _ in range(100_000):
        r = Reading(
            round(trio.current_time() - started, 1),
            phase[0],
            switch.rss_mib(),
            switch.fd_count(),
            switch.cpu_seconds(),
            tally.done,
            tally.error_total,
            tally.outstanding,
            backends.lan_up,
        )
        readings.append(r)
        line = (
            f"{r.t_s},{r.phase},{r.rss_mib if r.rss_mib is None else round(r.rss_mib, 1)},"
            f"{r.fds},{r.cpu_s},{r.done},{r.errors},{r.outstanding},{int(r.lan_up)}"
        )
        print(f"[soak] csv {line}", flush=True)
        append_line(log, line)
        await trio.sleep(every_s)


def files_size(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern))


def append_line(path: Path | None, line: str, fresh: bool = False) -> None:
    """One line to the CSV log; small and rare, so a blocking write is fine."""
    if path is not None:
        with path.open("w" if fresh else "a", encoding="utf-8") as out:
            out.write(line + "\n")


def write_config(workdir: Path, port: int, ports: dict[str, int]) -> Path:
    path = workdir / "llmswitch.toml"
    path.write_text(
        f"""\
[server]
host = "127.0.0.1"
port = {port}
grace_s = 2

[store]
path = "{workdir / "soak.db"}"

[health]
interval_s = 5

[[backends]]
name = "local"
base_url = "http://127.0.0.1:{ports["local"]}/v1"
locality = "local"

[[backends]]
name = "flaky"
base_url = "http://127.0.0.1:{ports["flaky"]}/v1"
locality = "lan"

[[backends]]
name = "lan"
base_url = "http://127.0.0.1:{ports["lan"]}/v1"
locality = "lan"

[[models]]
id = "small"
backend = "local"
quality = 40

[[models]]
id = "medium"
backend = "local"
quality = 70

[[models]]
id = "flaky-7b"
backend = "flaky"
quality = 60
fallbacks = ["medium"]

[[models]]
id = "lan-14b"
backend = "lan"
quality = 80
fallbacks = ["medium"]
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Outcome:
    plan: Plan
    tally: Tally
    readings: list[Reading]
    start: Reading
    end: Reading
    kills: int
    switch_alive: bool
    debug: dict[str, Any]
    db_mib: float | None
    wall_s: float


async def quiet_reading(
    switch: Server, backends: Backends, tally: Tally, phase: str, seconds: float, began: float
) -> Reading:
    await trio.sleep(seconds)
    return Reading(
        round(trio.current_time() - began, 1),
        phase,
        switch.rss_mib(),
        switch.fd_count(),
        switch.cpu_seconds(),
        tally.done,
        tally.error_total,
        tally.outstanding,
        backends.lan_up,
    )


async def measure(plan: Plan, workdir: Path, servers: list[Server], csv: Path | None) -> Outcome:
    ports = {name: free_port() for name in ("local", "flaky", "lan", "switch")}
    local = spawn_sim(
        "local", ports["local"], workdir, ["small", "medium"], "--ttft", "0.02", "--tps", "50"
    )
    servers.append(local)
    flaky = spawn_sim(
        "flaky", ports["flaky"], workdir, ["flaky-7b"], "--error-rate", "0.1", "--seed", "7"
    )
    servers.append(flaky)
    backends = Backends(workdir, ports, servers)
    lan = backends.start_lan()
    config = write_config(workdir, ports["switch"], ports)
    switch = spawn_llmswitch(ports["switch"], config, workdir)
    servers.append(switch)
    wall = time.monotonic()
    async with httpx.AsyncClient(trust_env=False) as client:
        for sim in (local, lan):
            await wait_ready(client, sim, "/v1/models")
        await wait_ready(client, switch, "/health")

    tally = Tally()
    readings: list[Reading] = []
    phase = ["warmup"]
    rng = random.Random(1234)
    url = switch.base + "/v1/chat/completions"
    began = trio.current_time()
    limits = httpx.Limits(max_connections=plan.max_outstanding, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        limits=limits, timeout=plan.request_timeout_s, trust_env=False
    ) as client:
        print(f"[soak] warm-up {plan.warmup_s:g}s at {plan.rate:g} req/s", flush=True)
        await traffic(client, url, plan, plan.warmup_s, tally, rng)
        start = await quiet_reading(switch, backends, tally, "start", plan.quiet_s, began)
        print(f"[soak] start: {start}", flush=True)
        phase[0] = "soak"
        until = trio.current_time() + plan.soak_s
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                sampler, switch, backends, tally, readings, phase, began, plan.sample_every_s, csv
            )
            nursery.start_soon(killer, backends, plan, until)
            print(f"[soak] soak {plan.soak_s:g}s at {plan.rate:g} req/s", flush=True)
            await traffic(client, url, plan, plan.soak_s, tally, rng)
            nursery.cancel_scope.cancel()
    if not backends.lan_up:  # a kill still in progress when the traffic stopped
        backends.start_lan()
    end = await quiet_reading(switch, backends, tally, "end", plan.quiet_s, began)
    print(f"[soak] end: {end}", flush=True)
    debug: dict[str, Any] = {}
    async with httpx.AsyncClient(trust_env=False) as client:
        with contextlib.suppress(httpx.HTTPError, json.JSONDecodeError):
            debug = (await client.get(switch.base + "/debug", timeout=5)).json()
    db_bytes = files_size(workdir, "soak.db*")
    return Outcome(
        plan,
        tally,
        readings,
        start,
        end,
        backends.kills,
        switch.proc.poll() is None,
        debug,
        db_bytes / 2**20,
        time.monotonic() - wall,
    )


def growth(start: float | None, end: float | None) -> float | None:
    if start is None or end is None or start == 0:
        return None
    return (end - start) * 100 / start


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(out: Outcome) -> str:
    tally = out.tally
    rss_growth = growth(out.start.rss_mib, out.end.rss_mib)
    fd_growth = growth(out.start.fds, out.end.fds)
    sent = tally.done
    rate = tally.error_total * 100 / sent if sent else None
    soak = [r for r in out.readings if r.phase == "soak"]
    rss_values = [r.rss_mib for r in soak if r.rss_mib is not None]
    fd_values = [r.fds for r in soak if r.fds is not None]
    flat = (rss_growth is not None and rss_growth <= 10) and (
        fd_growth is not None and fd_growth <= 10
    )
    restarts = {
        a.get("name"): a.get("restarts")
        for a in out.debug.get("supervisor", {}).get("actors", [])
        if isinstance(a, dict)
    }
    lines = [
        "| what | start | end | growth (goal ≤ 10%) |",
        "|---|---:|---:|---:|",
        f"| llmswitch RSS, quiet (MiB) | {fmt(out.start.rss_mib)} | {fmt(out.end.rss_mib)} | "
        f"{fmt(rss_growth)}% |",
        f"| llmswitch open fds, quiet | {out.start.fds} | {out.end.fds} | {fmt(fd_growth)}% |",
        "",
        "| what | value |",
        "|---|---:|",
        f"| requests sent (warm-up + soak) / answered well | {sent} / {tally.ok} |",
        f"| client-visible errors | {tally.error_total} ({fmt(rate, 2)}%) |",
        f"| requests not sent (client at {out.plan.max_outstanding} outstanding) | "
        f"{tally.skipped} |",
        f"| lan simulator kills (each {out.plan.down_s:g} s down) | {out.kills} |",
        f"| RSS under load, min / max of samples (MiB) | "
        f"{fmt(min(rss_values, default=None))} / {fmt(max(rss_values, default=None))} |",
        f"| open fds under load, min / max of samples | "
        f"{min(fd_values, default=None)} / {max(fd_values, default=None)} |",
        f"| request_log database + WAL at the end (MiB) | {fmt(out.db_mib, 2)} |",
        f"| actor restarts at the end | {restarts or '—'} |",
        f"| llmswitch alive at the end | {'yes' if out.switch_alive else 'NO'} |",
        "",
        f"Verdict: {'flat' if flat else 'GROWTH'} (RSS and fds within 10%).",
    ]
    if tally.errors:
        lines += ["", "| error kind | count |", "|---|---:|"]
        lines += [f"| {kind} | {n} |" for kind, n in tally.errors.most_common()]
        lines += ["", "First of each kind:", "", "```"]
        for kind, texts in tally.texts.items():
            lines += [f"[{kind}] {text}" for text in texts[:2]]
        lines.append("```")
    per_minute = [r for r in soak if r.rss_mib is not None]
    if per_minute:
        lines += ["", "Samples under load (t s: RSS MiB / fds / errors so far):", ""]
        cells = [f"{r.t_s:.0f}: {r.rss_mib:.1f} / {r.fds} / {r.errors}" for r in per_minute]
        lines.append("; ".join(cells))
    return "\n".join(lines)


def section(out: Outcome, table: str, git: str) -> str:
    plan = out.plan
    mix = ", ".join(f"{m} {w}" for m, w in MODELS)
    return (
        f"## {now_utc()}: soak, {plan.name} (`ops/bench/soak.py`)\n\n"
        f"{machine_line(git)}\n"
        f"- workload: {plan.rate:g} req/s for {plan.soak_s / 60:g} min after a "
        f"{plan.warmup_s:g} s warm-up; half streamed; models by weight: {mix}; "
        f"sims: local (small, medium; 50 tok/s), flaky (flaky-7b; 10% HTTP 500; falls back "
        f"to medium), lan (lan-14b; 20 tok/s; SIGKILLed every {plan.kill_every_s:g} s, "
        f"down {plan.down_s:g} s, restarted on its port; falls back to medium); RSS and "
        f"fds read after {plan.quiet_s:g} s without traffic before and after; "
        f"wall time {out.wall_s / 60:.1f} min\n\n"
        f"{table}\n"
    )


async def run(plan: Plan, write: bool, csv: Path | None, logs: Path | None) -> int:
    raise_fd_limit(8192)
    print(f"[soak] {plan.name} run", flush=True)
    servers: list[Server] = []
    git = git_state()  # now: src/ may change while this runs
    with tempfile.TemporaryDirectory(prefix="llmswitch-soak-") as tmp:
        try:
            with trio.fail_after(plan.budget_s):
                out = await measure(plan, Path(tmp), servers, csv)
        except StartFailed as exc:
            print(f"[soak] cannot run: {exc}", file=sys.stderr)
            return 2
        except trio.TooSlowError:
            print(f"[soak] gave up: over the {plan.budget_s:g}s budget", file=sys.stderr)
            return 2
        finally:
            for server in reversed(servers):
                server.stop()
            keep_logs(servers, logs)
    table = render(out)
    print()
    print(table)
    if write:
        record(section(out, table, git))
        print(f"\n[soak] appended to {RESULTS_MD.relative_to(REPO)}")
    flat = all(
        (g or 0) <= 10
        for g in (growth(out.start.rss_mib, out.end.rss_mib), growth(out.start.fds, out.end.fds))
    )
    return 0 if flat and out.switch_alive else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="soak length (default 30)")
    parser.add_argument("--quick", action="store_true", help="a 30 s soak, ~45 s in all")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--csv", type=Path, default=None, help="also write the samples here")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy server logs here")
    args = parser.parse_args()
    if not args.quick and not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be in (0, 1440]")
    plan = plan_for(args.minutes, args.quick)
    return trio.run(run, plan, not args.no_record, args.csv, args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
