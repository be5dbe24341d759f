"""Budget ledger actor: the request log and the spend it adds up to.

The single writer of ``request_log``. The request path appends each finished request's
row to the :class:`~llmswitch.store.journal.Journal` (microseconds, and it survives a
SIGKILL); every ``store.flush_interval_s``, on ``Flush`` and once more on stop, this
actor moves closed journal segments into SQLite in one transaction each, counts the
spend of the rows that were new, and deletes the segments. A crash of this actor, or of
the whole process, leaves the segments for the next flush: no acknowledged row is lost.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import trio

from llmswitch.config import Config
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.db import Connection, open_db
from llmswitch.store.errors import StoreError
from llmswitch.store.journal import Journal, read_segment
from llmswitch.store.request_log import insert_new_rows, spend_since
from llmswitch.store.rollup import prune

#: How often raw rows older than ``store.retain_days`` are deleted.
PRUNE_INTERVAL_S = 3600.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BudgetView:
    spent_day_usd: float = 0.0
    spent_month_usd: float = 0.0
    daily_usd: float | None = None
    monthly_usd: float | None = None

    @property
    def exceeded(self) -> bool:
        return (self.daily_usd is not None and self.spent_day_usd >= self.daily_usd) or (
            self.monthly_usd is not None and self.spent_month_usd >= self.monthly_usd
        )


@dataclass(eq=False)
class Flush(Request[int]):
    """Move everything journalled so far into SQLite now; replies with the new rows."""


LedgerMsg = Flush


def day_start(ts: float) -> float:
    """Start of the UTC day holding ``ts``."""
    return ts - ts % 86400


def month_start(ts: float) -> float:
    """Start of the UTC month holding ``ts``."""
    t = time.gmtime(ts)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


class LedgerActor(Actor[LedgerMsg]):
    name = "ledger"

    def __init__(
        self, config: Config, view: Watch[BudgetView], journal: Journal, clock: WallClock
    ) -> None:
        self._config = config
        self.stop_timeout_s = config.server.grace_s + 5
        self._view = view
        self._journal = journal
        self._clock = clock
        self._db: Connection | None = None
        self._lock = trio.Lock()
        self._day = self._month = 0.0
        self._spent_day = self._spent_month = 0.0
        self._flushes = 0
        self._written = 0
        self._flush_errors = 0
        self._pruned_at: float | None = None
        self._pruned = 0

    async def run(
        self,
        inbox: trio.MemoryReceiveChannel[LedgerMsg],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        store = self._config.store
        async with open_db(store.path, busy_timeout_s=store.busy_timeout_s) as db:
            self._db = db
            await self._load_spend()
            await self._flush()
            await super().run(inbox, task_status=task_status)

    async def background(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._flush_periodically)

    async def handle(self, msg: LedgerMsg) -> None:
        msg.reply.set(await self._flush())

    async def on_stop(self) -> None:
        if self._db is not None:
            await self._flush()

    async def _flush_periodically(self) -> None:
        while True:
            await self._prune_due()
            await trio.sleep(self._config.store.flush_interval_s)
            await self._flush()

    async def _prune_due(self) -> None:
        """Delete raw rows past ``store.retain_days`` (rolled up already), hourly."""
        now = self._clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_INTERVAL_S:
            return
        self._pruned_at = now
        assert self._db is not None
        try:
            self._pruned += await prune(self._db, now - self._config.store.retain_days * 86400)
        except StoreError as exc:
            log.warning("ledger: pruning old rows failed, will retry: %s", exc)

    async def _flush(self) -> int:
        async with self._lock:
            assert self._db is not None
            moved = 0
            for segment in self._journal.rotate():
                try:
                    new = await insert_new_rows(self._db, read_segment(segment))
                except StoreError as exc:
                    # The rows are safe in the journal: try again at the next flush rather
                    # than crash (a crash loop would take the whole gateway down).
                    self._flush_errors += 1
                    log.warning("ledger: %s; %s kept for the next flush", exc, segment.name)
                    break
                segment.unlink()
                for row in new:
                    self._count_spend(row.ts, row.cost_usd)
                moved += len(new)
            if moved:
                self._written += moved
                self._flushes += 1
                self._publish()
            return moved

    async def _load_spend(self) -> None:
        assert self._db is not None
        now = self._clock.now()
        self._day, self._month = day_start(now), month_start(now)
        self._spent_day = await spend_since(self._db, self._day)
        self._spent_month = await spend_since(self._db, self._month)
        self._publish()

    def _count_spend(self, ts: float, cost: float) -> None:
        if day_start(ts) > self._day:
            self._day, self._spent_day = day_start(ts), 0.0
        if month_start(ts) > self._month:
            self._month, self._spent_month = month_start(ts), 0.0
        if cost and ts >= self._day:
            self._spent_day += cost
        if cost and ts >= self._month:
            self._spent_month += cost

    def _publish(self) -> None:
        budget = self._config.budget
        view = BudgetView(self._spent_day, self._spent_month, budget.daily_usd, budget.monthly_usd)
        if view != self._view.value:
            self._view.publish(view)

    def summary(self) -> Mapping[str, Any]:
        view = self._view.value
        return {
            "written_rows": self._written,
            "flushes": self._flushes,
            "flush_errors": self._flush_errors,
            "pruned_rows": self._pruned,
            "journal": str(self._journal.directory),
            "spent_day_usd": round(view.spent_day_usd, 6),
            "spent_month_usd": round(view.spent_month_usd, 6),
            "budget_exceeded": view.exceeded,
        }
