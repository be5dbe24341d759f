"""How fast /admin/stats answers over a year of traffic at 10 requests per second.

Builds a ledger holding a year of hourly and daily rollups (8,784 hours x 36,000 requests an hour,
spread over 8 models, 4 backends, 12 clients, 7 task types, 3 profiles, 3 tiers and 5
statuses, written through the rollup upsert the ledger uses) plus `--raw-days` of raw
rows (the part `store.retain_days` keeps), then times the whole stats answer (open a
connection, two grouped queries, the report) for every `group_by` over the whole year
(an hourly series over its longest window, 92 days).
The goal is under 200 ms. Everything runs in this process against a file in a temp dir.

    .venv/bin/python ops/bench/stats.py [--raw-days 7] [--repeat 15] [--no-record]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import trio
from common import git_state, machine_line, now_utc, publish

from llmswitch.config import parse_config
from llmswitch.front.stats import GROUP_BY, stats
from llmswitch.store.db import open_db
from llmswitch.store.rollup import BUCKETS, DAY, HOUR, UPSERT, Totals, bucket_of

HOURS = 366 * 24
PER_HOUR = 36_000  # 10 requests per second
GOAL_MS = 200.0
KEYS = {
    "model": [f"model-{i}" for i in range(8)],
    "backend": [f"backend-{i}" for i in range(4)],
    "client": [f"client-{i}" for i in range(12)],
    "task": ["code", "analysis", "creative", "math", "conversation", "vision", "tool-use"],
    "profile": ["balanced", "eco", "premium"],
    "tier": ["rules", "classifier", "fallback"],
    "status": ["200", "499", "502", "503", "429"],
}


def split(total: int, parts: int, rng: random.Random) -> list[int]:
    weights = [rng.random() + 0.05 for _ in range(parts)]
    scale = total / sum(weights)
    return [int(w * scale) for w in weights]


def hour_totals(rng: random.Random) -> dict[tuple[str, str], Totals]:
    """One hour's totals per (dim, key): every dimension's keys share the hour's requests."""
    out: dict[tuple[str, str], Totals] = {}
    for dim, keys in {"all": [""], **KEYS}.items():
        for key, n in zip(keys, split(PER_HOUR, len(keys), rng), strict=True):
            t = Totals(requests=n, errors=n // 50, tokens_in=n * 900, tokens_out=n * 250)
            t.cost_usd = n * 0.0004
            for _ in range(4):  # a few latency shapes per key
                t.lat[bucket_of(rng.lognormvariate(6.5, 1.0))] += n // 4
                t.ttfb[bucket_of(rng.lognormvariate(5.0, 0.8))] += n // 4
            out[(dim, key)] = t
    return out


def add(into: Totals, t: Totals) -> None:
    into.requests += t.requests
    into.errors += t.errors
    into.tokens_in += t.tokens_in
    into.tokens_out += t.tokens_out
    into.cost_usd += t.cost_usd
    for i in range(BUCKETS):
        into.lat[i] += t.lat[i]
        into.ttfb[i] += t.ttfb[i]


def build(path: Path, raw_days: int) -> None:
    trio.run(_migrate, path)
    rng = random.Random(7)
    start = (int(time.time()) // 3600 - HOURS) * 3600
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    days: dict[tuple[str, int, str], Totals] = {}
    for h in range(HOURS):
        hour = start + h * 3600
        totals = hour_totals(rng)
        db.executemany(UPSERT, [(d, HOUR, hour, k, *t.values()) for (d, k), t in totals.items()])
        for (d, k), t in totals.items():
            add(days.setdefault((d, hour - hour % DAY, k), Totals()), t)
    db.executemany(UPSERT, [(d, DAY, day, k, *t.values()) for (d, day, k), t in days.items()])
    raw_start = start + (HOURS - raw_days * 24) * 3600
    raw = (
        (raw_start + i * 0.1, f"r{i}", "client-1", "auto", "model-1", "backend-1", 200, 0, 80.0)
        for i in range(raw_days * 86400 * 10)
    )
    db.executemany(
        "INSERT INTO request_log (ts, request_id, client, requested_model, chosen_model,"
        " backend, status, stream, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        raw,
    )
    db.execute(
        "UPDATE request_rollup_state"
        " SET rolled_up_id = (SELECT COALESCE(MAX(id), 0) FROM request_log)"
    )
    db.execute("COMMIT")
    db.close()


async def _migrate(path: Path) -> None:
    async with open_db(path):
        pass


async def measure(path: Path, repeat: int) -> dict[str, list[float]]:
    config = parse_config(
        {
            "store": {"path": str(path)},
            "backends": [{"name": "b", "base_url": "http://127.0.0.1:9/v1"}],
            "models": [{"id": "m", "backend": "b", "cost_output_per_mtok": 10.0}],
        }
    )
    timings: dict[str, list[float]] = {}
    for group_by in GROUP_BY:
        since = "92d" if group_by == "hour" else "400d"  # an hourly series spans <= 92 days
        runs = timings[f"{group_by} (since {since})"] = []
        for _ in range(repeat):
            started = time.perf_counter()
            answer = await stats(config, {"since": since, "group_by": group_by})
            runs.append((time.perf_counter() - started) * 1000)
        served = answer["total"]["requests"]
        hours = HOURS if since == "400d" else 92 * 24
        assert abs(served - hours * PER_HOUR) < hours * PER_HOUR * 0.01, served
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-days", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-record", action="store_true")
    opts = parser.parse_args()
    git = git_state()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "year.db"
        started = time.perf_counter()
        build(path, opts.raw_days)
        built_s = time.perf_counter() - started
        size_mib = path.stat().st_size / 2**20
        rollups = sqlite3.connect(path).execute("SELECT COUNT(*) FROM request_rollup").fetchone()
        timings = trio.run(measure, path, opts.repeat)
    lines = [
        f"## /admin/stats over a year at 10 req/s ({now_utc()})",
        machine_line(git),
        f"- ledger: {rollups[0]:,} rollup rows (366 days, by hour and by day), {opts.raw_days}"
        f" days of raw"
        f" rows ({opts.raw_days * 864_000:,}), {size_mib:.0f} MiB; built in {built_s:.0f} s",
        f"- whole answer (connect, two grouped queries, report), {opts.repeat} runs each,"
        f" window = the whole year; goal < {GOAL_MS:.0f} ms",
        "",
        "| group_by | median ms | max ms | verdict |",
        "|---|---|---|---|",
    ]
    for group_by, runs in timings.items():
        verdict = "ok" if max(runs) < GOAL_MS else "MISS"
        lines.append(
            f"| {group_by} | {statistics.median(runs):.1f} | {max(runs):.1f} | {verdict} |"
        )
    text = "\n".join(lines)
    publish(text, keep=not opts.no_record)


if __name__ == "__main__":
    main()
