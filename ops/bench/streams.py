"""Can llmswitch hold 1,000 slow streams at once without an error, and at what cost?

A LAN of agents keeps many long answers open at the same time; each one is a client
socket, an upstream socket and a task in the gateway. This opens N streaming requests
through llmswitch to a slow simulator (a few tokens per second, so each answer lasts
tens of seconds), keeps N open for the hold window by re-opening every stream that
ends, then lets them finish. It counts errors and completed streams, and samples
llmswitch's RSS and open fds every second: at rest, at peak, and after the load.

Options: --stream-seconds longer than the ramp plus the hold keeps the same N streams
open with no re-opens; --front proxy runs the bare quart-trio proxy instead (the
stack's floor); --streams N changes the count.

Run: .venv/bin/python ops/bench/streams.py [--quick] [--no-record]. Every process is a
child of this one on 127.0.0.1; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import trio
from common import (
    BENCH_DIR,
    MODEL,
    REPO,
    RESULTS_MD,
    Server,
    StartFailed,
    body,
    free_port,
    git_state,
    keep_logs,
    llmswitch_config,
    machine_cpu,
    machine_line,
    now_utc,
    percentile,
    raise_fd_limit,
    record,
    spawn,
    spawn_llmswitch,
    spawn_sim,
    wait_ready,
)


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: how many streams, how fast they open, how long they are held."""

    name: str
    streams: int
    ramp_s: float  # the streams open evenly over this time
    hold_s: float  # then N are kept open this long
    tps: float  # simulator tokens per second
    reply_words: int  # reply length: a stream lasts about reply_words / tps seconds
    rest_s: float  # quiet time before the load, for the at-rest reading
    after_s: float  # quiet time after it: past the simulator's 30 s keep-alive when long
    upstream_keepalive: int | None = None  # the bare proxy's idle pool; None = its size

    @property
    def stream_s(self) -> float:
        return self.reply_words / self.tps

    @property
    def budget_s(self) -> float:
        """Hard stop for the whole run: every phase at its longest, plus start-up."""
        return self.rest_s + self.ramp_s + 1 + self.hold_s + self.stream_s + 15 + self.after_s + 45


FULL = Plan("full", 1000, 10.0, 60.0, 2.0, 50, 5.0, 40.0)
QUICK = Plan("quick", 300, 4.0, 15.0, 2.0, 16, 3.0, 6.0)
MAX_ERROR_TEXTS = 8


@dataclass
class Tally:
    """What the clients saw; the 1 s sampler reads it while the streams run."""

    open_now: int = 0
    opened: int = 0
    completed: int = 0
    cut_by_bench: int = 0  # still open when the drain cap ran out: not an error
    errors: int = 0
    error_texts: list[str] = field(default_factory=list)
    ttfb_ms: list[float] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_texts) < MAX_ERROR_TEXTS:
            self.error_texts.append(text[:400])


@dataclass
class Reading:
    """One 1 s sample: seconds since start, the front's RSS/fds/CPU, open streams.

    debug_ms is how long the front took to answer GET /debug (llmswitch) or /health (the
    bare proxy): its event loop's lag.
    """

    t: float
    phase: str
    rss_mib: float | None
    fds: int | None
    cpu_s: float | None
    sim_cpu_s: float | None
    client_open: int
    in_flight: int | None
    debug_ms: float | None
    bench_cpu_s: float
    machine: tuple[int, int]  # (busy, total) jiffies over all cores


def bench_cpu_seconds() -> float:
    """CPU time of this process: the load generator competes for the same 2 cores."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_stream(client: httpx.AsyncClient, url: str, payload: bytes, tally: Tally) -> bool:
    """One streaming request read to its end; False when it failed (counted in tally)."""
    started = time.perf_counter()
    first = True
    tail = b""
    tally.open_now += 1
    tally.opened += 1
    try:
        headers = {"content-type": "application/json"}
        async with client.stream("POST", url, content=payload, headers=headers) as response:
            if response.status_code != 200:
                text = (await response.aread())[:300].decode(errors="replace")
                tally.error(f"HTTP {response.status_code}: {text}")
                return False
            async for chunk in response.aiter_raw():
                if first:
                    tally.ttfb_ms.append((time.perf_counter() - started) * 1000)
                    first = False
                if b'"error"' in chunk:
                    tally.error(f"error event in stream: {chunk[:300].decode(errors='replace')}")
                    return False
                tail = (tail + chunk)[-64:]
    except httpx.HTTPError as exc:
        tally.error(f"{type(exc).__name__}: {exc!r}")
        return False
    finally:
        tally.open_now -= 1
    if not tail.rstrip().endswith(b"data: [DONE]"):
        tally.error(f"stream without [DONE]: ...{tail.decode(errors='replace')}")
        return False
    tally.completed += 1
    return True


async def stream_worker(
    client: httpx.AsyncClient,
    url: str,
    payload: bytes,
    tally: Tally,
    start_at: float,
    reopen_until: float,
    max_streams: int,
) -> None:
    """Open a stream at start_at; re-open it while the hold lasts; bounded in count."""
    await trio.sleep_until(start_at)
    for _ in range(max_streams):
        ok = await one_stream(client, url, payload, tally)
        if not ok:
            await trio.sleep(0.5)  # a failing gateway is not hammered in a tight loop
        if trio.current_time() >= reopen_until:
            return


async def probe(
    client: httpx.AsyncClient, front: Server, path: str
) -> tuple[int | None, float | None]:
    """(in_flight if the answer has it, milliseconds the front took to answer `path`)."""
    started = time.perf_counter()
    try:
        response = await client.get(front.base + path, timeout=5.0)
        value = response.json().get("in_flight") if path == "/debug" else None
    except (httpx.HTTPError, json.JSONDecodeError, AttributeError):
        return None, None
    took = (time.perf_counter() - started) * 1000
    return (value if isinstance(value, int) else None), took


async def sampler(
    switch: Server,
    sim: Server,
    tally: Tally,
    readings: list[Reading],
    phase: list[str],
    started: float,
    limit: int,
) -> None:
    """Every second: the front's VmRSS, fd count, CPU and in-flight count; bounded."""
    path = probe_path(switch.name)
    async with httpx.AsyncClient(trust_env=False) as client:
        for _ in range(limit):
            in_flight, debug_ms = await probe(client, switch, path)
            readings.append(
                Reading(
                    round(trio.current_time() - started, 1),
                    phase[0],
                    switch.rss_mib(),
                    switch.fd_count(),
                    switch.cpu_seconds(),
                    sim.cpu_seconds(),
                    tally.open_now,
                    in_flight,
                    debug_ms,
                    bench_cpu_seconds(),
                    machine_cpu(),
                )
            )
            await trio.sleep(1.0)


@dataclass
class Outcome:
    """Everything the report needs."""

    plan: Plan
    front: str
    tally: Tally
    readings: list[Reading]
    hold_min_open: int
    hold_max_open: int
    rss_rest: float | None
    rss_peak_sampled: float | None
    rss_hwm: float | None
    rss_after: float | None
    fds_after_5s: int | None
    fds_rest: int | None
    fds_peak: int | None
    fds_after: int | None
    cpu_pct_hold: float | None
    debug_ms_hold: list[float]
    sim_cpu_pct_hold: float | None
    bench_cpu_pct_hold: float | None
    machine_pct_hold: float | None
    switch_alive: bool
    log_tail: str
    fd_limit: int


def machine_pct(readings: list[Reading]) -> float | None:
    if len(readings) < 2:
        return None
    busy = readings[-1].machine[0] - readings[0].machine[0]
    total = readings[-1].machine[1] - readings[0].machine[1]
    return busy * 100 / total if total else None


def phase_values(readings: list[Reading], phase: str) -> list[Reading]:
    return [r for r in readings if r.phase == phase]


def spawn_front(front: str, plan: Plan, workdir: Path, sim_port: int) -> Server:
    """llmswitch with limits raised for the run, or the bare proxy (the stack's floor)."""
    port = free_port()
    if front == "proxy":
        args = [str(BENCH_DIR / "minimal_proxy.py"), "--port", str(port)]
        args += ["--upstream", f"http://127.0.0.1:{sim_port}/v1"]
        args += ["--max-connections", str(plan.streams + 200)]
        if plan.upstream_keepalive is not None:
            args += ["--max-keepalive", str(plan.upstream_keepalive)]
        return spawn("proxy", args, port, workdir)
    config = llmswitch_config(
        port, sim_port, workdir, max_in_flight=5000, max_connections=plan.streams + 200
    )
    return spawn_llmswitch(port, config, workdir)


async def measure(
    plan: Plan, front: str, workdir: Path, servers: list[Server], fd_limit: int
) -> Outcome:
    sim_port = free_port()
    reply = " ".join(f"word{i}" for i in range(plan.reply_words))
    sim = spawn_sim("sim", sim_port, workdir, [MODEL], "--tps", str(plan.tps), "--reply", reply)
    servers.append(sim)
    switch = spawn_front(front, plan, workdir, sim_port)
    servers.append(switch)
    async with httpx.AsyncClient(trust_env=False) as client:
        await wait_ready(client, sim, "/v1/models")
        await wait_ready(client, switch, "/health")
        # One request end to end, so the first-use costs are in the at-rest reading.
        warm = await client.post(
            switch.base + "/v1/chat/completions",
            content=body(False),
            headers={"content-type": "application/json"},
            timeout=plan.stream_s + 10,
        )
        if warm.status_code != 200:
            raise StartFailed(f"warm-up request failed: HTTP {warm.status_code} {warm.text}")

    tally = Tally()
    readings: list[Reading] = []
    phase = ["rest"]
    url = switch.base + "/v1/chat/completions"
    payload = body(True)
    limits = httpx.Limits(max_connections=plan.streams + 100, max_keepalive_connections=100)
    timeout = httpx.Timeout(connect=10.0, read=30.0, write=10.0, pool=30.0)
    started = trio.current_time()
    drain_cap = plan.stream_s + 15
    total_s = plan.rest_s + plan.ramp_s + plan.hold_s + drain_cap + plan.after_s + 5
    max_streams = int(plan.hold_s / plan.stream_s) + 3
    async with trio.open_nursery() as outer:
        outer.start_soon(sampler, switch, sim, tally, readings, phase, started, int(total_s) + 1)
        await trio.sleep(plan.rest_s)
        load_at = trio.current_time()
        hold_from = load_at + plan.ramp_s + 1.0
        hold_until = hold_from + plan.hold_s
        print(f"[streams] ramping to {plan.streams} streams over {plan.ramp_s:g}s", flush=True)
        phase[0] = "ramp"
        async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
            with trio.move_on_after(plan.ramp_s + 1.0 + plan.hold_s + drain_cap):
                async with trio.open_nursery() as nursery:
                    for i in range(plan.streams):
                        start_at = load_at + plan.ramp_s * i / plan.streams
                        nursery.start_soon(
                            stream_worker,
                            client,
                            url,
                            payload,
                            tally,
                            start_at,
                            hold_until,
                            max_streams,
                        )
                    await trio.sleep_until(hold_from)
                    phase[0] = "hold"
                    print(f"[streams] holding for {plan.hold_s:g}s", flush=True)
                    await trio.sleep_until(hold_until)
                    phase[0] = "drain"
                    print("[streams] no re-opens now; letting streams finish", flush=True)
        # Neither completed nor failed: still open when the drain cap ran out.
        tally.cut_by_bench = tally.opened - tally.completed - tally.errors
        phase[0] = "after"
        print("[streams] load over; at-rest readings", flush=True)
        await trio.sleep(plan.after_s)
        outer.cancel_scope.cancel()

    rest = phase_values(readings, "rest")
    hold = phase_values(readings, "hold")
    after = phase_values(readings, "after")
    loaded = [r for r in readings if r.phase in ("ramp", "hold", "drain")]
    rss = [r.rss_mib for r in loaded if r.rss_mib is not None]
    fds = [r.fds for r in loaded if r.fds is not None]

    def cpu_pct(attr: str) -> float | None:
        points = [(r.t, getattr(r, attr)) for r in hold if getattr(r, attr) is not None]
        if len(points) < 2 or points[-1][0] <= points[0][0]:
            return None
        return float((points[-1][1] - points[0][1]) * 100 / (points[-1][0] - points[0][0]))

    return Outcome(
        plan=plan,
        front=front,
        tally=tally,
        readings=readings,
        hold_min_open=min((r.client_open for r in hold), default=0),
        hold_max_open=max((r.client_open for r in hold), default=0),
        rss_rest=rest[-1].rss_mib if rest else None,
        rss_peak_sampled=max(rss) if rss else None,
        rss_hwm=switch.peak_rss_mib(),
        rss_after=after[-1].rss_mib if after else switch.rss_mib(),
        fds_rest=rest[-1].fds if rest else None,
        fds_peak=max(fds) if fds else None,
        fds_after_5s=min(after, key=lambda r: abs(r.t - after[0].t - 5)).fds if after else None,
        fds_after=after[-1].fds if after else switch.fd_count(),
        cpu_pct_hold=cpu_pct("cpu_s"),
        debug_ms_hold=[r.debug_ms for r in hold if r.debug_ms is not None],
        sim_cpu_pct_hold=cpu_pct("sim_cpu_s"),
        bench_cpu_pct_hold=cpu_pct("bench_cpu_s"),
        machine_pct_hold=machine_pct(hold),
        switch_alive=switch.proc.poll() is None,
        log_tail=switch.log_tail(15),
        fd_limit=fd_limit,
    )


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def render(out: Outcome) -> str:
    plan, tally = out.plan, out.tally
    ok = tally.errors == 0 and out.hold_min_open >= plan.streams and out.switch_alive
    ttfb = tally.ttfb_ms
    lines = [
        "| what | value |",
        "|---|---:|",
        f"| streams held (goal) | {plan.streams} |",
        f"| open streams during the hold, min / max (1 s samples) | "
        f"{out.hold_min_open} / {out.hold_max_open} |",
        f"| streams opened / completed | {tally.opened} / {tally.completed} |",
        f"| errors seen by clients | {tally.errors} |",
        f"| streams cut by the bench's drain cap (not errors) | {tally.cut_by_bench} |",
        "| time to first byte p50 / p99 / max (ms), all streams | "
        + (
            f"{percentile(ttfb, 50):.1f} / {percentile(ttfb, 99):.1f} / {max(ttfb):.1f}"
            if ttfb
            else "—"
        )
        + " |",
        f"| {out.front} RSS at rest (MiB, after one request) | {fmt(out.rss_rest)} |",
        f"| {out.front} RSS peak, 1 s samples / VmHWM (MiB) | "
        f"{fmt(out.rss_peak_sampled)} / {fmt(out.rss_hwm)} |",
        f"| {out.front} RSS after the load (MiB) | {fmt(out.rss_after)} |",
        f"| {out.front} open fds at rest / peak | {out.fds_rest} / {out.fds_peak} |",
        f"| {out.front} open fds 5 s / {plan.after_s:g} s after the load | "
        f"{out.fds_after_5s} / {out.fds_after} |",
        f"| GET {probe_path(out.front)} answer time during the hold, p50 / max (ms): "
        "event-loop lag | "
        + (
            f"{percentile(out.debug_ms_hold, 50):.0f} / {max(out.debug_ms_hold):.0f}"
            if out.debug_ms_hold
            else "—"
        )
        + " |",
        "| in_flight reported by /debug during the hold, min / max | " + in_flight_range(out),
        f"| {out.front} CPU % of one core during the hold | {fmt(out.cpu_pct_hold, 0)} |",
        f"| simulator CPU % of one core during the hold | {fmt(out.sim_cpu_pct_hold, 0)} |",
        f"| load generator (this process) CPU % of one core during the hold | "
        f"{fmt(out.bench_cpu_pct_hold, 0)} |",
        f"| whole machine busy during the hold (% of all {os.cpu_count()} cores) | "
        f"{fmt(out.machine_pct_hold, 0)} |",
        "",
        f"Verdict: {'ok' if ok else 'MISS'}"
        + ("" if out.switch_alive else f" ({out.front} exited during the run)"),
    ]
    if tally.error_texts:
        lines += ["", "First errors:", "", "```", *tally.error_texts, "```"]
    if not out.switch_alive:
        lines += ["", f"{out.front}'s last output:", "", "```", out.log_tail, "```"]
    return "\n".join(lines)


def keepalive_note(plan: Plan) -> str:
    if plan.upstream_keepalive is None:
        return " (all of them kept alive when idle)"
    return f", at most {plan.upstream_keepalive} kept alive when idle"


def probe_path(front: str) -> str:
    return "/debug" if front == "llmswitch" else "/health"


def front_name(front: str) -> str:
    if front == "llmswitch":
        return "llmswitch (server.max_in_flight 5000)"
    return "ops/bench/minimal_proxy.py, the bare quart-trio proxy (the stack's floor)"


def in_flight_range(out: Outcome) -> str:
    values = [r.in_flight for r in out.readings if r.phase == "hold" and r.in_flight is not None]
    return f"{min(values)} / {max(values)} |" if values else "— |"


def section(out: Outcome, table: str, git: str) -> str:
    plan = out.plan
    return (
        f"## {now_utc()}: {plan.streams} concurrent streams through {out.front} "
        f"(`ops/bench/streams.py`, {plan.name} run)\n\n"
        f"{machine_line(git)}\n"
        f"- front: {front_name(out.front)}\n"
        f"- workload: {plan.streams} streaming requests through the front to one "
        f"llmswitch.sim at {plan.tps:g} tokens/s with a {plan.reply_words}-word reply "
        f"(~{plan.stream_s:.0f} s a stream), opened evenly over {plan.ramp_s:g} s, "
        f"re-opened as they end for a {plan.hold_s:g} s hold, then left to finish; "
        f"load from one trio + httpx process; upstream pool {plan.streams + 200} "
        f"connections{keepalive_note(plan)}; RLIMIT_NOFILE {out.fd_limit}\n\n"
        f"{table}\n"
    )


def write_samples(out: Outcome, path: Path) -> None:
    lines = [
        "t_s,phase,rss_mib,fds,cpu_s,sim_cpu_s,bench_cpu_s,client_open,in_flight,probe_ms,"
        "machine_busy_pct"
    ]
    previous: Reading | None = None
    for r in out.readings:
        busy = machine_pct([previous, r]) if previous is not None else None
        lines.append(
            f"{r.t},{r.phase},{fmt(r.rss_mib)},{r.fds},{fmt(r.cpu_s, 2)},"
            f"{fmt(r.sim_cpu_s, 2)},{r.bench_cpu_s:.2f},{r.client_open},{r.in_flight},"
            f"{fmt(r.debug_ms)},{fmt(busy, 0)}"
        )
        previous = r
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def run(plan: Plan, front: str, write: bool, samples: Path | None, logs: Path | None) -> int:
    fd_limit = raise_fd_limit(max(8192, plan.streams * 4 + 1000))
    print(f"[streams] {plan.name} run; RLIMIT_NOFILE {fd_limit}", flush=True)
    servers: list[Server] = []
    git = git_state()  # now: src/ may change while this runs
    with tempfile.TemporaryDirectory(prefix="llmswitch-streams-") as tmp:
        try:
            with trio.fail_after(plan.budget_s):
                out = await measure(plan, front, Path(tmp), servers, fd_limit)
        except StartFailed as exc:
            print(f"[streams] cannot run: {exc}", file=sys.stderr)
            return 2
        except trio.TooSlowError:
            print(f"[streams] gave up: over the {plan.budget_s:g}s budget", file=sys.stderr)
            return 2
        finally:
            for server in reversed(servers):
                server.stop()
            keep_logs(servers, logs)
    table = render(out)
    print()
    print(table)
    if samples is not None:
        write_samples(out, samples)
        print(f"\n[streams] 1 s samples in {samples}")
    if write:
        record(section(out, table, git))
        print(f"\n[streams] appended to {RESULTS_MD.relative_to(REPO)}")
    return 0 if out.tally.errors == 0 and out.switch_alive else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 streams, ~40 s")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--samples", type=Path, default=None, help="write 1 s samples (CSV)")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy server logs here")
    parser.add_argument(
        "--front",
        choices=("llmswitch", "proxy"),
        default="llmswitch",
        help="proxy: the bare quart-trio proxy instead, to see the stack's own floor",
    )
    parser.add_argument("--streams", type=int, default=None, help="how many (ramp 100/s)")
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=None,
        help="length of one stream; longer than ramp + hold means no re-opens",
    )
    parser.add_argument(
        "--upstream-keepalive",
        type=int,
        default=None,
        help="with --front proxy: idle upstream connections kept (default: all)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.streams is not None:
        if not 1 <= args.streams <= 5000:
            parser.error("--streams must be in 1..5000")
        plan = replace(plan, streams=args.streams, ramp_s=max(2.0, args.streams / 100))
    if args.stream_seconds is not None:
        if not 1 <= args.stream_seconds <= 600:
            parser.error("--stream-seconds must be in 1..600")
        plan = replace(plan, reply_words=max(2, round(args.stream_seconds * plan.tps)))
    if args.upstream_keepalive is not None:
        if args.front != "proxy":
            parser.error("--upstream-keepalive needs --front proxy (llmswitch has no such knob)")
        plan = replace(plan, upstream_keepalive=args.upstream_keepalive)
    return trio.run(run, plan, args.front, not args.no_record, args.samples, args.keep_logs)


if __name__ == "__main__":
    sys.exit(main())
