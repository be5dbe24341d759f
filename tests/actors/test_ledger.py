"""The ledger: no row lost to a crash or a shutdown; spend adds up into the budget view.

These run on the real clock: the store works in threads, and an autojumping MockClock
would leap ahead while a query runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from llmswitch.actors.ledger import (
    BudgetView,
    Flush,
    LedgerActor,
    LedgerMsg,
    Pending,
    Record,
    day_start,
    month_start,
)
from llmswitch.config import parse_config
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.supervisor import ChildSpec, Supervisor
from llmswitch.runtime.watch import Watch
from llmswitch.store.db import open_db
from llmswitch.store.request_log import RequestRow, count_rows


def row(n: int, cost: float = 0.0, ts: float | None = None) -> RequestRow:
    return RequestRow(
        ts=ts or WallClock().now(), request_id=f"r{n}", status=200, stream=False, cost_usd=cost
    )


class Ledger:
    def __init__(self, db: Path, **budget: Any) -> None:
        # A long flush interval: rows stay pending until a flush, a crash or a stop.
        self.config = parse_config(
            {"store": {"path": str(db), "flush_interval_s": 3600}, "budget": budget}
        )
        self.view: Watch[BudgetView] = Watch(BudgetView())
        self.pending = Pending()
        self.mailbox: Mailbox[LedgerMsg] = Mailbox("ledger", 64)
        clock = WallClock()
        self.supervisor = Supervisor(
            [
                ChildSpec(
                    "ledger",
                    lambda: LedgerActor(self.config, self.view, self.pending, clock),
                    self.mailbox,
                )
            ]
        )

    async def rows_on_disk(self) -> int:
        async with open_db(self.config.store.path) as db:
            return await count_rows(db)


async def test_a_row_queued_before_a_crash_is_written_exactly_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        await ledger.mailbox.cast(Record(row(1)))
        ledger.mailbox.try_cast(object())  # type: ignore[arg-type]  # crashes the actor
        await ledger.mailbox.cast(Record(row(2)))
        await ledger.mailbox.call(Flush(), timeout=10)
        assert ledger.supervisor.child("ledger").restarts == 1
        assert await ledger.rows_on_disk() == 2
        await ledger.supervisor.stop()


async def test_stop_flushes_what_is_pending(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        for n in range(50):
            await ledger.mailbox.cast(Record(row(n)))
        with trio.fail_after(10):
            while ledger.mailbox.depth:  # noqa: ASYNC110 (the mailbox has no drained event)
                await trio.sleep(0.01)
        assert ledger.pending.rows
        await ledger.supervisor.stop()
    assert await ledger.rows_on_disk() == 50


async def test_spend_reaches_the_budget_view_and_survives_a_restart(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db", daily_usd=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        await ledger.mailbox.cast(Record(row(1, cost=0.6)))
        await ledger.mailbox.call(Flush(), timeout=10)
        assert not ledger.view.value.exceeded
        await ledger.mailbox.cast(Record(row(2, cost=0.5)))
        await ledger.mailbox.call(Flush(), timeout=10)
        assert ledger.view.value.exceeded
        await ledger.supervisor.stop()
    again = Ledger(tmp_path / "l.db", daily_usd=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(again.supervisor.run)
        assert again.view.value.spent_day_usd == 1.1
        assert again.view.value.exceeded
        await again.supervisor.stop()


def test_periods_are_utc_day_and_month() -> None:
    ts = 1_795_320_383.0  # 2026-11-22T03:26:23Z
    assert day_start(ts) == 1_795_305_600.0
    assert month_start(ts) == 1_793_491_200.0  # 2026-11-01T00:00:00Z
