"""The conversation affinity table's memory at its cap, and the time of one lookup.

The table (``routing.affinity``) is filled to ``routing.affinity_max`` with keys shaped
like real ones (``openclaw:<uuid>``, as :mod:`routing.envelope` makes them, counted: the
table alone keeps them) pinned to model ids from the config (shared strings, as in the
router); its memory is read with tracemalloc. The reference, in the same run, is the
least anything could hold: a plain dict of the same keys to the same ids. Then a full
table is timed for ``get`` then ``pin`` (one served turn), beside a plain dict's.

    .venv/bin/python ops/bench/affinity.py [--no-record]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import uuid
from collections.abc import Callable

from common import fmt, git_state, machine_line, now_utc, percentile, publish

from llmswitch.routing.affinity import AffinityTable

CAPS = (1_000, 10_000, 100_000)
MODELS = ("small-3b", "coder-14b", "cloud-large")
TURNS = 50_000


def _keys(n: int) -> list[str]:
    return [f"openclaw:{uuid.uuid4()}" for _ in range(n)]


def _measured(build: Callable[[], object]) -> tuple[int, object]:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, held


def table_bytes(n: int) -> int:
    """The table at ``n`` entries, its keys included (in the router it alone holds them)."""

    def build() -> AffinityTable:
        table = AffinityTable(ttl_s=1e9, max_entries=n)
        for i, key in enumerate(_keys(n)):
            table.pin(key, MODELS[i % 3], now=float(i))
        return table

    size, _ = _measured(build)
    return size


def dict_bytes(n: int) -> int:
    def build() -> dict[str, str]:
        return {key: MODELS[i % 3] for i, key in enumerate(_keys(n))}

    size, _ = _measured(build)
    return size


def turn_times(keys: list[str]) -> tuple[list[float], list[float]]:
    """Microseconds per served turn: the table's get + pin, a dict's get + store."""
    table = AffinityTable(ttl_s=1e9, max_entries=len(keys))
    plain: dict[str, str] = {}
    for i, key in enumerate(keys):
        table.pin(key, MODELS[i % 3], now=0.0)
        plain[key] = MODELS[i % 3]
    ours: list[float] = []
    ref: list[float] = []
    for i in range(TURNS):
        key = keys[(i * 7919) % len(keys)]
        t0 = time.perf_counter()
        table.pin(key, table.get(key, 1.0) or MODELS[0], now=1.0)
        t1 = time.perf_counter()
        plain[key] = plain.get(key) or MODELS[0]
        t2 = time.perf_counter()
        ours.append((t1 - t0) * 1e6)
        ref.append((t2 - t1) * 1e6)
    return ours, ref


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    git = git_state()
    lines = [
        f"## {now_utc()}: conversation affinity table at its cap (`ops/bench/affinity.py`)",
        "",
        machine_line(git),
        "- keys `openclaw:<uuid>` (45 characters), counted; model ids shared; "
        "memory by tracemalloc",
        "",
        "| entries (affinity_max) | table (MB) | plain dict (MB) | table/dict | bytes per entry |",
        "|---:|---:|---:|---:|---:|",
    ]
    for cap in CAPS:
        ours, ref = table_bytes(cap), dict_bytes(cap)
        lines.append(
            f"| {cap:,} | {fmt(ours / 1e6)} | {fmt(ref / 1e6)} | {fmt(ours / ref)} "
            f"| {ours / cap:.0f} |"
        )
    ours_us, ref_us = turn_times(_keys(10_000))
    lines += [
        "",
        f"One served turn on a full 10,000-entry table ({TURNS:,} turns): get + pin "
        f"p50 {fmt(percentile(ours_us, 50))} µs, p99 {fmt(percentile(ours_us, 99))} µs; "
        f"a plain dict's get + store p50 {fmt(percentile(ref_us, 50))} µs, "
        f"p99 {fmt(percentile(ref_us, 99))} µs.",
    ]
    text = "\n".join(lines)
    publish(text, keep=not args.no_record)


if __name__ == "__main__":
    main()
