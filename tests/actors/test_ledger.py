"""The ledger: no row lost to a crash, a stop or a kill; spend adds up into the budget view.

These run on the real clock: the store works in threads, and an autojumping MockClock
would leap ahead while a query runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from llmswitch.actors.ledger import (
    BudgetView,
    Flush,
    LedgerActor,
    LedgerMemory,
    LedgerMsg,
    OverBudget,
    Reserve,
    Settle,
)
from llmswitch.config import parse_config
from llmswitch.routing.budget import Budget, day_start, month_start
from llmswitch.routing.live import merged
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.supervisor import ChildSpec, Supervisor
from llmswitch.runtime.watch import Watch
from llmswitch.store.db import open_db
from llmswitch.store.journal import Journal, journal_dir, read_segment
from llmswitch.store.request_log import RequestRow, count_rows
from tests.store.shortage import Shortage


async def test_budgets_stored_at_run_time_are_the_ledgers_limits_until_cleared(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "l.db", daily_usd=1.0)

    async def view_where(ok: Any) -> BudgetView:
        with trio.fail_after(10):
            while not ok(ledger.view.value):
                await ledger.view.wait_newer(ledger.view.version)
        return ledger.view.value

    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        await ledger.mailbox.cast(Settle(None, "r1", 0.3, time.time()))
        await view_where(lambda v: v.spent_day_usd == pytest.approx(0.3))
        ledger.settings.publish(merged(ledger.config, {"budget.daily_usd": 0.2}))
        lowered = await view_where(lambda v: v.daily_usd == 0.2)
        assert lowered.exceeded and lowered.used_ratio[("day", "all")] == pytest.approx(1.5)
        ledger.settings.publish(merged(ledger.config))  # cleared: the file's again
        back = await view_where(lambda v: v.daily_usd == 1.0)
        assert not back.exceeded and back.used_ratio[("day", "all")] == pytest.approx(0.3)
        await ledger.supervisor.stop()


def row(n: int, cost: float = 0.0) -> RequestRow:
    return RequestRow(ts=time.time(), request_id=f"r{n}", status=200, stream=False, cost_usd=cost)


class Ledger:
    def __init__(self, db: Path, **budget: Any) -> None:
        # A long flush interval: rows stay journalled until a flush, a restart or a stop.
        self.config = parse_config(
            {"store": {"path": str(db), "flush_interval_s": 3600}, "budget": budget}
        )
        self.view: Watch[BudgetView] = Watch(BudgetView())
        #: The routing settings in force, as the router would publish them.
        self.settings = Watch(merged(self.config))
        self.journal = Journal(journal_dir(str(db)))
        self.mailbox: Mailbox[LedgerMsg] = Mailbox("ledger", 64)
        self.memory = LedgerMemory()
        self.supervisor = Supervisor([ChildSpec("ledger", self.actor, self.mailbox)])

    def actor(self) -> LedgerActor:
        return LedgerActor(
            self.config,
            self.view,
            self.journal,
            WallClock(),
            memory=self.memory,
            settings=self.settings,
        )

    async def rows_on_disk(self) -> int:
        async with open_db(self.config.store.path) as db:
            return await count_rows(db)


async def test_rows_journalled_around_a_crash_are_written_exactly_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        ledger.journal.append(row(1))
        ledger.mailbox.try_cast(object())  # type: ignore[arg-type]  # crashes the actor
        ledger.journal.append(row(2))
        ledger.journal.append(row(1))  # a duplicate is harmless
        await ledger.mailbox.call(Flush(), timeout=10)  # the restarted actor moved them
        assert ledger.supervisor.child("ledger").restarts == 1
        assert await ledger.rows_on_disk() == 2
        assert list(ledger.journal.directory.glob("*.jsonl")) == [
            ledger.journal.directory / f"{ledger.journal._seq:012d}.jsonl"
        ]
        await ledger.supervisor.stop()


async def test_stop_moves_everything_journalled(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        for n in range(50):
            ledger.journal.append(row(n))
        await ledger.supervisor.stop()
    assert await ledger.rows_on_disk() == 50


async def test_a_killed_process_leaves_its_rows_for_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    script = (
        "import os, sys, time\n"
        "from llmswitch.store.journal import Journal, journal_dir\n"
        "from llmswitch.store.request_log import RequestRow\n"
        "j = Journal(journal_dir(sys.argv[1]))\n"
        "for n in range(30):\n"
        "    j.append(RequestRow(ts=time.time(), request_id=f'k{n}', status=200, stream=False))\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = await trio.run_process([sys.executable, "-c", script, str(db)], check=False)
    assert proc.returncode == -9
    ledger = Ledger(db)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)  # the first flush runs at start
        assert await ledger.rows_on_disk() == 30
        await ledger.supervisor.stop()


async def test_spend_reaches_the_budget_view_and_survives_a_restart(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db", daily_usd=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        ledger.journal.append(row(1, cost=0.6))
        await ledger.mailbox.call(Flush(), timeout=10)
        assert not ledger.view.value.exceeded
        ledger.journal.append(row(2, cost=0.5))
        ledger.journal.append(row(2, cost=0.5))  # counted once
        await ledger.mailbox.call(Flush(), timeout=10)
        assert ledger.view.value.exceeded
        await ledger.supervisor.stop()
    again = Ledger(tmp_path / "l.db", daily_usd=1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(again.supervisor.run)
        assert again.view.value.spent_day_usd == 1.1
        assert again.view.value.exceeded
        await again.supervisor.stop()


def test_while_the_store_is_away_rows_gather_in_few_segments(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(row(1))
    [waiting] = journal.rotate()  # the store is away: this one is not moved
    for n in range(2, 50):
        journal.append(row(n))
        assert journal.rotate() == [waiting]  # a flush every 0.25 s opens no new file
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 2
    waiting.unlink()  # the store is back and took it
    [rest] = journal.rotate()
    assert [r.request_id for r in read_segment(rest)] == [row(n).request_id for n in range(2, 50)]


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(row(1))
    os.write(journal._fd, b'{"ts": 1, "request_id": "half')
    (segment,) = journal.rotate()
    assert [r.request_id for r in read_segment(segment)] == ["r1"]


def test_periods_are_utc_day_and_month() -> None:
    ts = 1_795_320_383.0  # 2026-11-22T03:26:23Z
    assert day_start(ts) == 1_795_305_600.0
    assert month_start(ts) == 1_793_491_200.0  # 2026-11-01T00:00:00Z


LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


async def test_a_locked_database_delays_the_flush_without_crashing(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    ledger = Ledger(db)
    ledger.config = parse_config(
        {"store": {"path": str(db), "flush_interval_s": 3600, "busy_timeout_s": 0.2}}
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        ledger.journal.append(row(1))
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", LOCK_HOLDER, str(db), "1.0"], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        with trio.fail_after(10):
            assert (await proc.stdout.receive_some(16)).startswith(b"locked")
            assert await ledger.mailbox.call(Flush(), timeout=5) == 0
            await proc.wait()
        assert ledger.supervisor.child("ledger").restarts == 0
        assert await ledger.mailbox.call(Flush(), timeout=5) == 1
        await ledger.supervisor.stop()
    assert await ledger.rows_on_disk() == 1


async def test_holds_are_all_or_none_across_day_week_and_key_budgets(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db", daily_usd=10.0, weekly_usd=1.0)
    day, week = Budget("all", "day", 10.0), Budget("all", "week", 1.0)
    key = Budget("key:ide", "day", 0.5)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        first = await ledger.mailbox.call(Reserve((day, week, key), 0.4), timeout=10)
        # The key's budget has 0.1 left: refused, and nothing is held for day or week.
        with pytest.raises(OverBudget, match="daily budget of key ide"):
            await ledger.mailbox.call(Reserve((day, week, key), 0.2), timeout=10)
        await ledger.mailbox.call(Reserve((day, week), 0.6), timeout=10)
        # The week is now fully held (0.4 + 0.6): another cent does not fit.
        with pytest.raises(OverBudget, match="weekly budget"):
            await ledger.mailbox.call(Reserve((day, week), 0.01), timeout=10)
        # Settling for less than was held frees the difference.
        await ledger.mailbox.cast(Settle(first, "r1", 0.1, time.time(), ("all", "key:ide")))
        await ledger.mailbox.call(Reserve((day, week), 0.3), timeout=10)
        assert ledger.view.value.spent_week_usd == pytest.approx(0.1)
        await ledger.supervisor.stop()


async def test_a_flush_short_of_descriptors_keeps_its_rows_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(tmp_path / "l.db")
    shortage = Shortage(tmp_path, monkeypatch)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        ledger.journal.append(row(1))
        ledger.journal.rotate()  # a closed segment waiting to be moved
        ledger.journal.append(row(2))
        shortage.on = True
        # The closed one cannot be read: nothing moves, no crash (and no new segment is
        # opened while one waits: row 2 stays in the open one).
        assert await ledger.mailbox.call(Flush(), timeout=10) == 0
        ledger.journal.append(row(3))  # the request path keeps journalling meanwhile
        assert shortage.refused == 1
        shortage.on = False
        assert await ledger.mailbox.call(Flush(), timeout=10) == 3
        child = ledger.supervisor.child("ledger")
        assert child.restarts == 0
        assert child.actor is not None and child.actor.summary()["flush_errors"] == 1
        await ledger.supervisor.stop()
    assert await ledger.rows_on_disk() == 3


async def test_the_ledger_waits_out_a_database_it_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(tmp_path / "l.db")
    ledger.journal.append(row(1))
    shortage = Shortage(tmp_path, monkeypatch)
    shortage.on = True
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ledger.supervisor.run)
        with trio.fail_after(10):
            while shortage.refused < 2:  # noqa: ASYNC110 (the first try and one retry)
                await trio.sleep(0.05)
        child = ledger.supervisor.child("ledger")
        assert child.state == "starting" and child.restarts == 0
        shortage.on = False
        assert await ledger.mailbox.call(Flush(), timeout=10) == 0  # moved as it opened
        assert child.restarts == 0
        await ledger.supervisor.stop()
    assert await ledger.rows_on_disk() == 1


def test_journal_segments_are_private(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.append(row(1))
    (segment,) = journal.rotate()
    assert segment.stat().st_mode & 0o777 == 0o600
    assert journal.directory.stat().st_mode & 0o777 == 0o700


async def test_holds_and_counted_rows_survive_a_crash_of_the_actor(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.db", daily_usd=1.0)
    day = Budget("all", "day", 1.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.supervisor.run)
        done = await ledger.mailbox.call(Reserve((day,), 0.3), timeout=10)
        ledger.journal.append(row(1, cost=0.3))
        await ledger.mailbox.cast(Settle(done, "r1", 0.3, time.time()))
        in_flight = await ledger.mailbox.call(Reserve((day,), 0.5), timeout=10)
        ledger.journal.append(row(2, cost=0.2))  # journalled; its Settle comes after the crash
        ledger.mailbox.try_cast(object())  # type: ignore[arg-type]  # crashes the actor
        # The restarted actor still holds 0.5 for the call in flight: 0.3 + 0.5 + 0.3 > 1.
        with pytest.raises(OverBudget):
            await ledger.mailbox.call(Reserve((day,), 0.3), timeout=10)
        assert ledger.supervisor.child("ledger").restarts == 1
        await ledger.mailbox.cast(Settle(in_flight, "r2", 0.2, time.time()))
        await ledger.mailbox.call(Flush(), timeout=10)
        # r1 (settled by the crashed run) and r2 (settled after) are each counted once.
        assert ledger.view.value.spent_day_usd == pytest.approx(0.5)
        await ledger.mailbox.call(Reserve((day,), 0.5), timeout=10)
        assert ledger.memory.holds.keys() == {3}
        await ledger.supervisor.stop()


async def reserve(mailbox: Mailbox[LedgerMsg], scope: trio.CancelScope) -> None:
    with scope:
        await mailbox.call(Reserve((Budget("all", "day", 1.0),), 0.6), timeout=5)
    assert scope.cancelled_caught


async def sent_then_cancelled(nursery: trio.Nursery, ledger: Ledger) -> LedgerMsg:
    """A metered call's Reserve, sent and not yet handled, whose caller is now cancelled
    (woken, but not run yet: the test picks what happens before it runs)."""
    scope = trio.CancelScope()
    nursery.start_soon(reserve, ledger.mailbox, scope)
    msg = await ledger.mailbox.inbox.receive()
    scope.cancel()
    return msg


@pytest.mark.parametrize("left_first", [True, False], ids=["before-grant", "before-taken"])
async def test_a_caller_cancelled_around_the_grant_leaves_no_hold(
    left_first: bool, tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    # The clock stands still: no call timeout fires; the test hands the actor each message.
    ledger = Ledger(tmp_path / "l.db", daily_usd=1.0)
    actor = ledger.actor()
    async with trio.open_nursery() as nursery:
        msg = await sent_then_cancelled(nursery, ledger)
        if left_first:
            await trio.testing.wait_all_tasks_blocked()  # the caller has left
        await actor.handle(msg)
        # Granted to no one: given back at once; or set before the caller ran, then given
        # back as its call unwinds.
        assert len(ledger.memory.holds) == (0 if left_first else 1)
        await trio.testing.wait_all_tasks_blocked()
        assert ledger.memory.holds == {}
    whole = Reserve((Budget("all", "day", 1.0),), 1.0)
    await actor.handle(whole)
    assert await whole.reply.wait() == 2  # the whole budget was free again
