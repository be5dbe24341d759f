"""request_log queries: batches, idempotent re-writes, spend sums, round trips."""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest

from llmswitch.store import (
    RequestRow,
    count_rows,
    insert_rows,
    recent_rows,
    spend_since,
)
from tests.store.conftest import OpenStore, columns


def row(i: int, *, ts: float | None = None, cost: float = 0.0, **kw: object) -> RequestRow:
    base = RequestRow(
        ts=1_700_000_000.0 + i if ts is None else ts,
        request_id=f"req-{i}",
        client="alice",
        requested_model="auto",
        chosen_model="local-small" if i % 2 else "cloud-big",
        backend="ollama",
        tier="rules",
        classification="chat",
        reason="greeting",
        status=200,
        stream=bool(i % 2),
        latency_ms=12.5,
        ttfb_ms=3.25,
        tokens_in=10 + i,
        tokens_out=20 + i,
        usage_estimated=i % 3 == 0,
        cost_usd=cost,
        error=None,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


async def test_row_fields_match_table_columns(store: OpenStore) -> None:
    async with store() as db:
        cols = await columns(db, "request_log")
    assert cols == ["id"] + [f.name for f in dataclasses.fields(RequestRow)]


async def test_insert_batch_count_and_round_trip(store: OpenStore) -> None:
    rows = [row(i) for i in range(50)]
    async with store() as db:
        await insert_rows(db, rows)
        assert await count_rows(db) == 50
        recent = await recent_rows(db, 5)
        assert recent == rows[::-1][:5]  # newest first, every field round-trips
        assert await recent_rows(db, 0) == []
        assert await recent_rows(db, 1000) == rows[::-1]


async def test_minimal_row_uses_defaults(store: OpenStore) -> None:
    minimal = RequestRow(ts=1.0, request_id="m", status=502, stream=False, error="boom")
    async with store() as db:
        await insert_rows(db, [minimal])
        assert await recent_rows(db, 1) == [minimal]


async def test_duplicate_request_id_is_ignored(store: OpenStore) -> None:
    async with store() as db:
        batch = [row(i, cost=1.0) for i in range(10)]
        await insert_rows(db, batch)
        await insert_rows(db, batch)  # the same batch again, as after a crash mid-commit
        # overlapping batch, with a changed duplicate: the first write wins
        await insert_rows(db, [row(9, cost=99.0), row(10, cost=1.0)])
        assert await count_rows(db) == 11
        assert await spend_since(db, 0) == pytest.approx(11.0)


async def test_empty_batch_is_a_no_op(store: OpenStore) -> None:
    async with store() as db:
        await insert_rows(db, [])
        assert await count_rows(db) == 0


async def test_spend_since_sums_rows_at_or_after(store: OpenStore) -> None:
    async with store() as db:
        assert await spend_since(db, 0) == 0.0
        await insert_rows(
            db,
            [
                row(1, ts=100.0, cost=0.5),
                row(2, ts=199.999, cost=1.25),
                row(3, ts=200.0, cost=2.0),
                row(4, ts=300.0, cost=4.0),
                row(5, ts=301.0),  # free
            ],
        )
        assert await spend_since(db, 0) == pytest.approx(7.75)
        assert await spend_since(db, 200.0) == pytest.approx(6.0)  # boundary included
        assert await spend_since(db, 300.5) == 0.0
        assert await spend_since(db, 1e12) == 0.0


async def test_row_rejected_by_constraint_is_logged_others_kept(
    caplog: pytest.LogCaptureFixture, store: OpenStore
) -> None:
    caplog.set_level(logging.WARNING, logger="llmswitch.store.request_log")
    async with store() as db:
        await insert_rows(db, [row(1, cost=1.0)])
        # NaN becomes NULL in SQLite, which NOT NULL cost_usd refuses.
        await insert_rows(db, [row(1, cost=1.0), row(2, cost=math.nan), row(3, cost=2.0)])
        assert await count_rows(db) == 2
        assert await spend_since(db, 0) == pytest.approx(3.0)
    assert "req-2" in caplog.text
    assert "req-1" not in caplog.text  # a duplicate is not a rejection


async def test_file_db_keeps_rows_across_reopen(store: OpenStore) -> None:
    rows = [row(i, cost=0.1) for i in range(20)]
    async with store() as db:
        await insert_rows(db, rows)
    async with store() as db:
        assert await count_rows(db) == 20
        assert await recent_rows(db, 20) == rows[::-1]
        assert await spend_since(db, 0) == pytest.approx(2.0)


async def test_negative_limit_is_refused(store: OpenStore) -> None:
    async with store() as db:
        with pytest.raises(ValueError):
            await recent_rows(db, -1)
