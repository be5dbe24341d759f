"""Ledger flush throughput: SQLite (store.path) against PostgreSQL (store.url).

Times what the ledger does with one journal segment, :func:`insert_new_rows` (look up
which ids are stored, insert the rest and roll them up, in one transaction), for
segments of 1, 100 and 1,000 rows: a flush at a trickle, at ~400 req/s with the default
0.25 s flush interval, and a backlog after an outage. SQLite is a file in a temp dir;
PostgreSQL is a database made for the run on the server at ``--pg`` and dropped after.

    .venv/bin/python ops/bench/ledger_flush.py [--pg postgresql://postgres@127.0.0.1:5432]
        [--rows 5000] [--no-record]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import psycopg
import trio
from common import git_state, machine_line, now_utc, publish

from llmswitch.config import StoreConfig
from llmswitch.store import Connection, open_store
from llmswitch.store.request_log import RequestRow, insert_new_rows

SEGMENTS = (1, 100, 1000)


def rows(n: int, start: int) -> list[RequestRow]:
    return [
        RequestRow(
            ts=1_765_000_000.0 + (start + i) * 0.01,
            request_id=f"bench-{start + i}",
            client=f"client-{i % 12}",
            requested_model="auto",
            chosen_model=f"model-{i % 8}",
            backend=f"backend-{i % 4}",
            tier="classifier",
            status=200 if i % 50 else 502,
            stream=bool(i % 2),
            latency_ms=200.0 + i % 900,
            ttfb_ms=40.0 + i % 100,
            tokens_in=900,
            tokens_out=250,
            cost_usd=0.0004,
            task="code",
            instance="bench:8080",
        )
        for i in range(n)
    ]


@asynccontextmanager
async def pg_database(server: str) -> AsyncIterator[str]:
    name = f"llmswitch_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def measure(
    opener: Callable[[], AbstractAsyncContextManager[Connection]], total: int
) -> list[str]:
    lines = []
    async with opener() as db:
        start = 0
        for size in SEGMENTS:
            batches = max(1, min(total // size, 2000))
            t0 = time.perf_counter()
            for _ in range(batches):
                await insert_new_rows(db, rows(size, start))
                start += size
            elapsed = time.perf_counter() - t0
            lines.append(
                f"| {db.dialect.name} | {size} | {batches} | {elapsed / batches * 1000:.2f} |"
                f" {batches * size / elapsed:,.0f} |"
            )
            print(lines[-1], flush=True)
    return lines


async def main(opts: argparse.Namespace) -> None:
    git = git_state()
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = StoreConfig(path=str(Path(tmp) / "bench.db"))
        table = await measure(lambda: open_store(sqlite), opts.rows)
    async with pg_database(opts.pg) as url:
        table += await measure(lambda: open_store(StoreConfig(url=url)), opts.rows)
    text = "\n".join(
        [
            f"## Ledger flush: SQLite against PostgreSQL ({now_utc()})",
            machine_line(git),
            "- `ops/bench/ledger_flush.py`: `insert_new_rows` per journal segment (ids looked",
            "  up, rows inserted and rolled up in one transaction); SQLite in WAL mode on a temp",
            "  file, PostgreSQL 15 on loopback (a database made for the run), psycopg 3 in a",
            "  worker thread",
            "",
            "| engine | rows per segment | segments | ms per segment | rows/s |",
            "|---|---|---|---|---|",
            *table,
        ]
    )
    publish(text, keep=not opts.no_record)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--no-record", action="store_true")
    trio.run(main, parser.parse_args())
