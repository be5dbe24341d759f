"""Budget ledger actor: the request log and the spend it adds up to.

The single writer of ``request_log``. Rows arrive as ``Record`` events (cast with
backpressure: a row must never be dropped) and are written in batched transactions,
when a batch fills or every ``store.flush_interval_s``, and once more on stop.

Rows not yet committed live in a :class:`Pending` buffer owned by the service, not by
the actor, so a row queued before a crash is still written by the restarted actor.
Spend is counted when a row arrives, so the budget view is current before the write.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from llmswitch.config import Config
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.db import Connection, open_db
from llmswitch.store.request_log import RequestRow, insert_rows, spend_since

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


@dataclass(frozen=True)
class Record:
    row: RequestRow


@dataclass(eq=False)
class Flush(Request[int]):
    """Write everything pending now; replies with the number of rows written."""


LedgerMsg = Record | Flush


@dataclass(eq=False)
class Pending:
    """Rows accepted but not yet committed; survives restarts of the ledger actor."""

    rows: list[RequestRow] = field(default_factory=list)
    written: int = 0


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
        self, config: Config, view: Watch[BudgetView], pending: Pending, clock: WallClock
    ) -> None:
        self._config = config
        self.stop_timeout_s = config.server.grace_s + 5
        self._view = view
        self._pending = pending
        self._clock = clock
        self._db: Connection | None = None
        self._lock = trio.Lock()
        self._day = self._month = 0.0
        self._spent_day = self._spent_month = 0.0
        self._flushes = 0

    async def run(
        self,
        inbox: trio.MemoryReceiveChannel[LedgerMsg],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with open_db(self._config.store.path) as db:
            self._db = db
            await self._load_spend()
            await super().run(inbox, task_status=task_status)

    async def background(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._flush_periodically)

    async def handle(self, msg: LedgerMsg) -> None:
        if isinstance(msg, Flush):
            msg.reply.set(await self._flush())
            return
        self._pending.rows.append(msg.row)
        self._count_spend(msg.row.ts, msg.row.cost_usd)
        if len(self._pending.rows) >= self._config.store.batch_max:
            await self._flush()

    async def on_stop(self) -> None:
        if self._db is not None:
            await self._flush()

    async def _flush_periodically(self) -> None:
        while True:
            await trio.sleep(self._config.store.flush_interval_s)
            await self._flush()

    async def _flush(self) -> int:
        async with self._lock:
            rows = list(self._pending.rows)
            if not rows or self._db is None:
                return 0
            await insert_rows(self._db, rows)
            del self._pending.rows[: len(rows)]
            self._pending.written += len(rows)
            self._flushes += 1
            return len(rows)

    async def _load_spend(self) -> None:
        assert self._db is not None
        now = self._clock.now()
        self._day, self._month = day_start(now), month_start(now)
        self._spent_day = await spend_since(self._db, self._day)
        self._spent_month = await spend_since(self._db, self._month)
        for row in self._pending.rows:
            self._count_spend(row.ts, row.cost_usd)
        self._publish()

    def _count_spend(self, ts: float, cost: float) -> None:
        if day_start(ts) > self._day:
            self._day, self._spent_day = day_start(ts), 0.0
        if month_start(ts) > self._month:
            self._month, self._spent_month = month_start(ts), 0.0
        if cost:
            self._spent_day += cost
            self._spent_month += cost
        self._publish()

    def _publish(self) -> None:
        budget = self._config.budget
        view = BudgetView(self._spent_day, self._spent_month, budget.daily_usd, budget.monthly_usd)
        if view != self._view.value:
            self._view.publish(view)

    def summary(self) -> Mapping[str, Any]:
        view = self._view.value
        return {
            "pending_rows": len(self._pending.rows),
            "written_rows": self._pending.written,
            "flushes": self._flushes,
            "spent_day_usd": round(view.spent_day_usd, 6),
            "spent_month_usd": round(view.spent_month_usd, 6),
            "budget_exceeded": view.exceeded,
        }
