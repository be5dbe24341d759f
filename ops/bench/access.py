"""What client authentication and budget holds add to a request, side by side.

Two llmswitch processes in front of one simulated cloud backend serving a priced model:

- ``before``: no client keys, no budget: no key lookup, no hold;
- ``after``: 50 client keys (the request carries the last one, so every stored digest is
  compared), and daily, weekly, monthly, per-key and per-task budgets large enough never
  to refuse: every request is authenticated and holds its worst case in the ledger
  before it is sent, then settles.

Requests alternate between the two (concurrency 1, then a concurrent phase), so drift
hits both alike; the verdict is the ratio after / before of the median latency and of
throughput. Goal: at most 10% added.

    .venv/bin/python ops/bench/access.py [--quick] [--no-record]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import trio
from common import (
    PROMPT,
    Server,
    StartFailed,
    fmt,
    free_port,
    git_state,
    machine_line,
    now_utc,
    percentile,
    publish,
    spawn,
    spawn_sim,
    timed_request,
    wait_ready,
)

MODEL = "cloud-model"
KEYS = 50
GOAL = 1.10
BODY = b'{"model": "%s", "max_tokens": 64, "messages": [{"role": "user", "content": "%s"}]}' % (
    MODEL.encode(),
    PROMPT.encode(),
)


def config(name: str, port: int, sim_port: int, workdir: Path, guarded: bool) -> Path:
    digests = [hashlib.sha256(f"key-{i}".encode()).hexdigest() for i in range(KEYS)]
    clients = "".join(
        f'[[clients]]\nname = "k{i}"\nkey_sha256 = "{d}"\ndaily_usd = 1000000.0\n\n'
        for i, d in enumerate(digests)
    )
    budget = (
        "[budget]\ndaily_usd = 1000000.0\nweekly_usd = 1000000.0\nmonthly_usd = 1000000.0\n"
        "task_daily_usd = { conversation = 1000000.0, analysis = 1000000.0 }\n\n"
    )
    path = workdir / f"{name}.toml"
    path.write_text(
        f"""\
[server]
host = "127.0.0.1"
port = {port}
grace_s = 1

[store]
path = "{workdir / f"{name}.db"}"

[routing]
metered_cloud = ["*"]

{budget if guarded else ""}[[backends]]
name = "sim"
base_url = "http://127.0.0.1:{sim_port}/v1"
locality = "cloud"

[[models]]
id = "{MODEL}"
backend = "sim"
cost_input_per_mtok = 1.0
cost_output_per_mtok = 2.0

{clients if guarded else ""}""",
        encoding="utf-8",
    )
    return path


async def alternate(
    clients: dict[str, httpx.AsyncClient], urls: dict[str, str], n: int, warmup: int
) -> dict[str, list[float]]:
    """Concurrency 1, taking turns; milliseconds per answer after the warm-up."""
    times: dict[str, list[float]] = {t: [] for t in urls}
    order = list(urls)
    for i in range(warmup + n):
        for target in order if i % 2 else reversed(order):
            total, _, err = await timed_request(clients[target], urls[target], BODY, False)
            if err is not None:
                raise SystemExit(f"{target}: {err}")
            if i >= warmup:
                times[target].append(total * 1000)
    return times


async def throughput(client: httpx.AsyncClient, url: str, seconds: float, conc: int) -> float:
    """Answers per second with ``conc`` clients for ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            _, _, err = await timed_request(client, url, BODY, False)
            if err is not None:
                raise SystemExit(err)
            done += 1

    async with trio.open_nursery() as nursery:
        for _ in range(conc):
            nursery.start_soon(worker)
    return done / seconds


async def main(quick: bool, keep: bool) -> int:
    """Run, print the section, and append it to RESULTS.md when ``keep``."""
    n, warmup, seconds, rounds = (150, 20, 3.0, 2) if quick else (600, 50, 8.0, 3)
    git = git_state()
    workdir = Path(tempfile.mkdtemp(prefix="llmswitch-access-"))
    servers: list[Server] = []
    try:
        sim_port = free_port()
        servers.append(spawn_sim("sim", sim_port, workdir, [MODEL], "--reply", "fine"))
        ports = {"before": free_port(), "after": free_port()}
        for name, port in ports.items():
            path = config(name, port, sim_port, workdir, guarded=name == "after")
            args = ["-m", "llmswitch", "--log-level", "warning", "serve", "--config", str(path)]
            servers.append(spawn(name, args, port, workdir))
        headers = {"after": {"authorization": f"Bearer key-{KEYS - 1}"}, "before": {}}
        urls = {t: f"http://127.0.0.1:{p}/v1/chat/completions" for t, p in ports.items()}
        limits = httpx.Limits(max_connections=64)
        clients = {
            t: httpx.AsyncClient(timeout=10, trust_env=False, headers=headers[t], limits=limits)
            for t in urls
        }
        async with httpx.AsyncClient(trust_env=False) as probe:
            for server in servers[1:]:
                await wait_ready(probe, server, "/health")
        times = await alternate(clients, urls, n, warmup)
        rps: dict[str, list[float]] = {t: [] for t in urls}
        for r in range(rounds):
            for target in list(urls) if r % 2 else list(reversed(urls)):
                rps[target].append(await throughput(clients[target], urls[target], seconds, 16))
        for client in clients.values():
            await client.aclose()
    except StartFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    p50 = {t: percentile(v, 50) for t, v in times.items()}
    mean = {t: statistics.fmean(v) for t, v in times.items()}
    best = {t: max(v) for t, v in rps.items()}
    latency_ratio = p50["after"] / p50["before"]
    rps_ratio = best["before"] / best["after"]
    ok = latency_ratio <= GOAL and rps_ratio <= GOAL
    rows = [
        ("c=1 latency p50 (ms)", p50["before"], p50["after"], latency_ratio),
        ("c=1 latency mean (ms)", mean["before"], mean["after"], mean["after"] / mean["before"]),
        ("c=16 answers/s (best of rounds)", best["before"], best["after"], rps_ratio),
    ]
    text = (
        f"## {now_utc()}: cost of client authentication and budget holds "
        f"(`ops/bench/access.py`{', quick' if quick else ', full run'})\n\n"
        f"{machine_line(git)}\n"
        f"- workload: non-streamed requests (max_tokens 64) to one priced cloud model on one "
        f"llmswitch.sim; `before`: no keys, no budgets; `after`: {KEYS} client keys (the "
        f"request carries the last), day/week/month/key/task budgets, so every request is "
        f"authenticated and holds then settles its worst case; c=1 alternating, {n} "
        f"requests each after {warmup} warm-up; c=16 for {seconds:g} s x {rounds} rounds each\n\n"
        "| what | before | after | after / before (goal <= 1.10) |\n|---|---:|---:|---:|\n"
        + "".join(f"| {what} | {fmt(b)} | {fmt(a)} | {fmt(r, 3)} |\n" for what, b, a, r in rows)
        + "\n(for answers/s the ratio is before / after: above 1 means slower)\n\n"
        f"Verdict: {'ok' if ok else 'over the goal'}\n"
    )
    publish(text, keep=keep)
    return 0 if ok else 2


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, a smoke check")
    parser.add_argument(
        "--no-record", action="store_true", help="print, do not append to RESULTS.md"
    )
    a = parser.parse_args()
    sys.exit(trio.run(main, a.quick, not a.no_record))
