"""Hourly rollups: they add up to the raw rows, survive re-writes and pruning."""

from __future__ import annotations

import dataclasses

import pytest

from llmswitch.store import RequestRow, insert_rows
from llmswitch.store.rollup import (
    BUCKET_BOUNDS_MS,
    BUCKETS,
    bucket_of,
    grouped,
    percentile,
    prune,
    roll_up,
)
from tests.store.conftest import OpenStore

HOUR = 1_700_000_000 // 3600 * 3600


def row(i: int, **kw: object) -> RequestRow:
    base = RequestRow(
        ts=HOUR + i * 60.0,
        request_id=f"req-{i}",
        client="alice" if i % 2 else "bob",
        chosen_model="big" if i % 3 == 0 else "small",
        backend="cloud" if i % 3 == 0 else "local",
        tier="classifier",
        status=200,
        stream=False,
        latency_ms=100.0 + i,
        ttfb_ms=20.0,
        tokens_in=10,
        tokens_out=5,
        cost_usd=0.5 if i % 3 == 0 else 0.0,
        task="code",
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def test_buckets_are_ordered_and_cover_every_latency() -> None:
    assert bucket_of(0.0) == 0
    assert bucket_of(float("nan")) == 0
    assert bucket_of(BUCKET_BOUNDS_MS[0]) == 0
    assert bucket_of(BUCKET_BOUNDS_MS[5]) == 5
    assert bucket_of(BUCKET_BOUNDS_MS[5] + 0.01) == 6
    assert bucket_of(1e12) == BUCKETS - 1


def test_percentile_lands_inside_the_bucket_of_the_true_value() -> None:
    counts = [0] * BUCKETS
    for ms in [10.0] * 50 + [1000.0] * 50:
        counts[bucket_of(ms)] += 1
    p50 = percentile(counts, 0.5)
    p95 = percentile(counts, 0.95)
    assert p50 is not None and BUCKET_BOUNDS_MS[bucket_of(10.0) - 1] < p50 <= 10.0 * 1.5
    assert p95 is not None and 1000.0 / 1.5 < p95 <= 1000.0 * 1.5
    assert percentile([0] * BUCKETS, 0.5) is None


async def test_rollups_add_up_to_the_raw_rows_by_every_dimension(store: OpenStore) -> None:
    rows = [row(i) for i in range(90)]  # 90 minutes: two hours
    async with store() as db:
        await insert_rows(db, rows)
        await insert_rows(db, rows[:30])  # a re-written batch counts once
        total = await grouped(db, "all", HOUR, HOUR + 7200)
        by_model = {g.key: g.totals for g in await grouped(db, "model", HOUR, HOUR + 7200)}
        by_hour = await grouped(db, "hour", HOUR, HOUR + 7200)
    assert total[0].totals.requests == 90
    assert total[0].totals.tokens_in == 900
    assert by_model["big"].requests == 30
    assert by_model["big"].cost_usd == pytest.approx(15.0)
    assert by_model["small"].cost_usd == 0.0
    assert [int(g.key) for g in by_hour] == [HOUR, HOUR + 3600]
    assert [g.totals.requests for g in by_hour] == [60, 30]


async def test_errors_are_every_status_but_success(store: OpenStore) -> None:
    rows = [row(0), row(1, status=502), row(2, status=499), row(3, status=400)]
    async with store() as db:
        await insert_rows(db, rows)
        by_status = {g.key: g.totals.errors for g in await grouped(db, "status", HOUR, HOUR + 3600)}
    assert by_status == {"200": 0, "502": 1, "499": 1, "400": 1}


async def test_pruning_keeps_what_stats_read(store: OpenStore) -> None:
    async with store() as db:
        await insert_rows(db, [row(i) for i in range(10)])
        deleted = await prune(db, HOUR + 3600 * 24)
        remaining = await db.fetchone("SELECT COUNT(*) FROM request_log")
        total = await grouped(db, "all", HOUR, HOUR + 3600)
    assert deleted == 10
    assert remaining == (0,)
    assert total[0].totals.requests == 10


async def test_rows_from_before_rollups_existed_are_rolled_up_once(store: OpenStore) -> None:
    async with store() as db:
        async with db.transaction() as tx:
            for i in range(5):
                await tx.execute(
                    "INSERT INTO request_log (ts, request_id, status, stream, chosen_model)"
                    " VALUES (?, ?, 200, 0, 'old')",
                    (HOUR + i, f"old-{i}"),
                )
            # An old database: nothing rolled up yet.
            await tx.execute("DELETE FROM request_rollup")
            await tx.execute("UPDATE request_rollup_state SET rolled_up_id = 0")
        async with db.transaction() as tx:
            assert await roll_up(tx) == 5
        async with db.transaction() as tx:
            assert await roll_up(tx) == 0
        by_model = {g.key: g.totals.requests for g in await grouped(db, "model", HOUR, HOUR + 60)}
    assert by_model == {"old": 5}


async def test_unknown_group_is_refused(store: OpenStore) -> None:
    async with store() as db:
        with pytest.raises(ValueError, match="group_by"):
            await grouped(db, "password", HOUR, HOUR + 60)


async def test_a_window_of_whole_days_and_partial_edges_counts_each_row_once(
    store: OpenStore,
) -> None:
    day0 = HOUR - HOUR % 86400
    # One request every 30 minutes for four days.
    rows = [row(i, ts=day0 + i * 1800.0, request_id=f"r{i}") for i in range(4 * 48)]
    since, until = day0 + 5 * 3600, day0 + 3 * 86400 + 7 * 3600
    expected = sum(1 for r in rows if since <= r.ts < until)
    async with store() as db:
        await insert_rows(db, rows)
        total = await grouped(db, "all", since, until)
        days = await grouped(db, "day", since, until)
        hours = await grouped(db, "hour", since, until)
    assert total[0].totals.requests == expected
    assert [g.totals.requests for g in days] == [38, 48, 48, 14]
    assert sum(g.totals.requests for g in hours) == expected
    assert len(hours) == (until - since) // 3600
