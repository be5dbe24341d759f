"""Budget ledger actor: the request log, the spend it adds up to, and budget holds.

The single writer of ``request_log``. The request path appends each finished request's
row to the :class:`~llmswitch.store.journal.Journal` (microseconds, and it survives a
SIGKILL); every ``store.flush_interval_s``, on ``Flush`` and once more on stop, this
actor moves closed journal segments into the store (SQLite, or the fleet's PostgreSQL
with ``store.url``) in one transaction each and deletes the segments. A crash of this
actor, or of the whole process, leaves the segments for the next flush, and so does a
store that cannot be reached (said in /health and /debug until a flush gets through):
no acknowledged row is lost, and ``request_id`` keeps each row once.

Budgets hold under concurrency because a metered call first ``Reserve``s its worst case
against every budget that applies, in one step of this actor (nothing else runs between
the check and the hold), and ``Settle``s to its real cost when it ends. Spend is counted
once per row: at ``Settle`` for this process's requests, at flush for rows whose
``Settle`` never came (a previous process's journal, rows journalled directly).

The holds, and which rows were counted where, live in a :class:`LedgerMemory` that the
gateway owns and hands to every run of this actor: a restarted ledger still knows the
money promised to calls in flight (a fresh one that forgot would let new calls reserve
it again), and rebuilds its spend from the store and the journal without counting a row
twice or missing one whose ``Settle`` the crashed run had taken.

In a fleet (``cluster.redis_url``), the budgets are the fleet's: Reserve and Settle go to
a :class:`~llmswitch.cluster.budget.FleetBudget` (Redis, or this instance's offline
slice while Redis is away), and the view shows the fleet's spend, read every
``SYNC_INTERVAL_S``. The request log stays this instance's.

A shortage of file descriptors, memory or disk (:class:`StoreUnavailable`) is never a
crash: a flush leaves its segments for the next one, and opening the database waits
and tries again. Crashing instead would restart the actor into the same shortage, burn
the supervisor's restart intensity in a moment and take the whole gateway down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from llmswitch.actors.alerts import Alerts
from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.cluster.budget import FleetBudget
from llmswitch.cluster.money import refusal
from llmswitch.config import BudgetConfig, Config
from llmswitch.routing.brain import RoutingSettings
from llmswitch.routing.budget import (
    ALL,
    PERIOD_START,
    PERIODS,
    Budget,
    Period,
    budgets_for,
    key_scope,
    task_scope,
)
from llmswitch.routing.live import budget_in_force, merged
from llmswitch.routing.select import ClientKey
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.backoff import Backoff
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Inbox, Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.connect import open_store
from llmswitch.store.engine import Connection
from llmswitch.store.errors import StoreError, StoreUnavailable
from llmswitch.store.journal import Journal, read_segment
from llmswitch.store.request_log import RequestRow, insert_new_rows, spend_by_scope
from llmswitch.store.rollup import prune

#: How often raw rows older than ``store.retain_days`` are deleted.
PRUNE_INTERVAL_S = 3600.0

log = logging.getLogger(__name__)

#: How often a fleet's ledger reads the budgets from Redis (and reconciles offline spend).
SYNC_INTERVAL_S = 1.0
#: A fleet hold outlives the longest call by this much before Redis drops it.
HOLD_SLACK_S = 60.0

#: Waits between attempts to open the database while the OS is short of descriptors.
REOPEN = Backoff(base_s=0.25, cap_s=5.0)


@dataclass(frozen=True)
class BudgetView:
    spent_day_usd: float = 0.0
    spent_month_usd: float = 0.0
    daily_usd: float | None = None
    monthly_usd: float | None = None
    spent_week_usd: float = 0.0
    weekly_usd: float | None = None
    #: (period, scope) → the share of that budget spent, for every budget known so far.
    used_ratio: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @property
    def exceeded(self) -> bool:
        """A global budget is spent: metered models are out until its period ends."""
        return any(
            limit is not None and spent >= limit
            for spent, limit in (
                (self.spent_day_usd, self.daily_usd),
                (self.spent_week_usd, self.weekly_usd),
                (self.spent_month_usd, self.monthly_usd),
            )
        )


@dataclass(eq=False)
class Flush(Request[int]):
    """Move everything journalled so far into the store now; replies with the new rows."""


class OverBudget(Exception):
    """A metered call's worst case does not fit in a budget; the message says which."""


@dataclass(eq=False)
class Reserve(Request[int]):
    """Hold ``usd`` against every budget in ``budgets``, all or none, in one step.

    Replies with the hold's id, or fails with OverBudget. A caller that leaves without
    taking the reply has the hold released (``Reply.set``'s ``undo``).
    """

    budgets: tuple[Budget, ...]
    usd: float


@dataclass(frozen=True)
class Settle:
    """A request ended: release its hold (if any) and count what it really cost."""

    hold: int | None
    request_id: str
    usd: float
    ts: float
    scopes: tuple[str, ...] = (ALL,)


LedgerMsg = Flush | Reserve | Settle | Reconfigure
BudgetKey = tuple[str, Period]


@dataclass(eq=False)
class LedgerMemory:
    """The ledger's state that outlives a run of its actor (see the module docstring)."""

    #: Outstanding holds: id → (budget keys, usd); and their sums by budget key.
    holds: dict[int, tuple[tuple[BudgetKey, ...], float]] = field(default_factory=dict)
    held: dict[BudgetKey, float] = field(default_factory=dict)
    last_hold: int = 0
    #: Rows counted at Settle and not yet seen at a flush; and rows counted at a flush
    #: whose Settle may still come.
    settled: set[str] = field(default_factory=set)
    flushed: set[str] = field(default_factory=set)
    #: Runs of the actor so far in this process.
    runs: int = 0
    #: Why the store cannot be written now (a PostgreSQL server gone, no descriptor
    #: left), for /health and /debug; None while flushes succeed.
    store_down: str | None = None

    def hold(self, keys: tuple[BudgetKey, ...], usd: float) -> int:
        self.last_hold += 1
        self.holds[self.last_hold] = (keys, usd)
        for key in keys:
            self.held[key] = self.held.get(key, 0.0) + usd
        return self.last_hold

    def release(self, hold: int | None) -> None:
        """Give a hold back; an unknown or already released one is no-op (undo may race
        Settle)."""
        keys, usd = self.holds.pop(hold, ((), 0.0)) if hold is not None else ((), 0.0)
        for key in keys:
            left = self.held.get(key, 0.0) - usd
            if left > 1e-12:
                self.held[key] = left
            else:
                self.held.pop(key, None)


class LedgerActor(Actor[LedgerMsg]):
    name = "ledger"

    def __init__(
        self,
        config: Config,
        view: Watch[BudgetView],
        journal: Journal,
        clock: WallClock,
        alerts: Alerts | None = None,
        memory: LedgerMemory | None = None,
        fleet: FleetBudget | None = None,
        settings: Watch[RoutingSettings] | None = None,
    ) -> None:
        self._config = config
        #: The budgets in force: the file's, with those stored at run time on top.
        self._settings = settings or Watch(merged(config))
        self._budget = budget_in_force(config.budget, self._settings.value)
        self.stop_timeout_s = config.server.grace_s + 5
        self._view = view
        self._journal = journal
        self._clock = clock
        self._alerts = alerts or Alerts(self._budget, fleet.claim_alert if fleet else None)
        self._db: Connection | None = None
        self._lock = trio.Lock()
        self._starts: dict[Period, float] = {}
        #: Spend counted in the current periods, by (scope, period).
        self._spent: dict[BudgetKey, float] = {}
        self._mem = memory or LedgerMemory()
        self._fleet = fleet
        self._first_run = self._mem.runs == 0
        self._mem.runs += 1
        #: Rows an earlier run counted at Settle: that count went with it, so the flush
        #: that meets them counts them again.
        self._recount = set(self._mem.settled)
        self._mem.settled.clear()
        self._limits = configured_limits(config, self._budget)
        self._refused = 0
        self._pruned_at: float | None = None
        self._pruned = 0
        self._flushes = 0
        self._written = 0
        self._flush_errors = 0

    async def run(
        self,
        inbox: Inbox[LedgerMsg],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with AsyncExitStack() as stack:
            await self._open(stack)
            await self._flush(startup=True)
            await super().run(inbox, task_status=task_status)

    async def _open(self, stack: AsyncExitStack) -> None:
        """Open the database into ``stack`` and count the spend so far; wait out a shortage."""
        store = self._config.store
        attempt = 0
        while True:
            try:
                async with AsyncExitStack() as opening:
                    self._db = await opening.enter_async_context(open_store(store))
                    await self._load_spend()
                    await stack.enter_async_context(opening.pop_all())
                    return
            except StoreUnavailable as exc:
                self._db = None
                self._flush_errors += 1
                self._mem.store_down = str(exc)
                wait = REOPEN.ceiling(attempt)
                attempt += 1
                log.warning("ledger: %s; opening the database again in %gs", exc, wait)
                await trio.sleep(wait)

    async def background(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._flush_periodically)
        nursery.start_soon(self._alerts.run)
        nursery.start_soon(self._follow_settings)
        if self._fleet is not None:
            nursery.start_soon(self._sync_periodically, self._fleet)
            nursery.start_soon(self._fleet.send_settlements)

    async def handle(self, msg: LedgerMsg) -> None:
        if isinstance(msg, Flush):
            msg.reply.set(await self._flush())
        elif isinstance(msg, Reserve):
            await self._reserve(msg)
        elif isinstance(msg, Reconfigure):
            self._reconfigure(msg.config)
            msg.reply.set(None)
        else:
            self._mem.release(msg.hold)
            counted = 0.0
            if msg.request_id in self._mem.flushed:
                self._mem.flushed.discard(msg.request_id)
            elif msg.usd:
                counted = msg.usd
                self._mem.settled.add(msg.request_id)
                self._count(msg.ts, msg.usd, msg.scopes)
                self._publish(ratios=False)
            if self._fleet is not None:
                self._fleet.settle(msg.hold, msg.request_id, counted, msg.ts, msg.scopes)

    def _reconfigure(self, config: Config) -> None:
        """Switch to the new budgets (a reloaded file's, or those stored at run time);
        spend and outstanding holds stay as they are, and the next Reserve is checked
        against the new limits."""
        budget = budget_in_force(config.budget, self._settings.value)
        configured = configured_limits(self._config, self._budget)
        learnt = {k: v for k, v in self._limits.items() if k not in configured}
        self._config, self._budget = config, budget
        self._limits = learnt | configured_limits(config, budget)
        self._alerts.retarget(budget)
        self._publish()

    async def _follow_settings(self) -> None:
        """Take the global budgets stored at run time as the router publishes them."""
        version = self._settings.version
        while True:
            settings, version = await self._settings.wait_newer(version)
            if budget_in_force(self._config.budget, settings) != self._budget:
                self._reconfigure(self._config)

    async def _reserve(self, msg: Reserve) -> None:
        now = self._clock.now()
        self._roll(now)
        for budget in msg.budgets:
            self._limits[budget.key] = budget.limit_usd
        # Handled one at a time (the fleet's await included): the id is still free after.
        hold = self._mem.last_hold + 1
        reason = await self._refusal(msg, hold, now)
        if reason is not None:
            self._refused += 1
            msg.reply.fail(OverBudget(reason))
            return
        msg.reply.set(self._mem.hold(tuple(b.key for b in msg.budgets), msg.usd), undo=self._undo)

    async def _refusal(self, msg: Reserve, hold: int, now: float) -> str | None:
        """Why ``msg`` does not fit; None if it fits, and then the fleet, if any, holds it
        as ``hold`` already."""
        if self._fleet is not None:
            ttl = max((b.total_s for b in self._config.backends), default=0.0) + HOLD_SLACK_S
            return await self._fleet.reserve(hold, msg.budgets, msg.usd, now, ttl)
        for budget in msg.budgets:
            held = self._mem.held.get(budget.key, 0.0)
            reason = refusal(budget, self._spent.get(budget.key, 0.0), held, msg.usd)
            if reason is not None:
                return reason
        return None

    def _undo(self, hold: int) -> None:
        self._mem.release(hold)
        if self._fleet is not None:
            self._fleet.abandon(hold)

    async def _sync_periodically(self, fleet: FleetBudget) -> None:
        """The fleet's spend into the view; offline spend into Redis once it is back."""
        while True:
            now = self._clock.now()
            self._roll(now)
            keys = set(self._limits) | {(ALL, period) for period in PERIODS}
            budgets = [Budget(s, p, self._limits.get((s, p), 0.0)) for s, p in sorted(keys)]
            spent = await fleet.sync(budgets, now)
            if spent is not None:
                self._spent.update(spent)
                self._publish()
            await trio.sleep(SYNC_INTERVAL_S)

    async def on_stop(self) -> None:
        if self._db is not None:
            await self._flush()
        if self._fleet is not None:
            await self._fleet.flush_outbox()
        if self._journal.holds_rows():
            log.warning(
                "ledger: rows stay in %s; the next start moves them into the store",
                self._journal.directory,
            )

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

    async def _flush(self, startup: bool = False) -> int:
        async with self._lock:
            held_back = self._journal.waiting()
            segments = self._journal.rotate()
            if not segments and self._mem.store_down is not None:
                await self._probe()
            moved, ok = await self._move(segments, startup)
            if ok and held_back:
                # The open segment waited behind those (store.journal.SEGMENT_BYTES).
                more, _ = await self._move(self._journal.rotate(), startup)
                moved += more
            if moved:
                self._written += moved
                self._flushes += 1
                self._publish()
            return moved

    async def _move(self, segments: list[Path], startup: bool) -> tuple[int, bool]:
        """Move ``segments`` into the store, oldest first: the rows new to it, and whether
        all of them went (a failure leaves the rest for the next flush)."""
        assert self._db is not None
        moved = 0
        for segment in segments:
            try:
                new = await insert_new_rows(self._db, read_segment(segment))
            except StoreError as exc:
                # Busy, short of descriptors, the server gone: the rows are safe in the
                # journal, and the next flush tries again (see the module docstring).
                self._flush_errors += 1
                self._store_failed(exc, segment.name)
                return moved, False
            self._store_back()
            segment.unlink()
            for row in new:
                scopes = self._count_row(row, startup)
                if scopes and self._fleet is not None:
                    self._fleet.settle(None, row.request_id, row.cost_usd, row.ts, scopes)
            moved += len(new)
        return moved, True

    async def _probe(self) -> None:
        """Whether a store that was down is back, with nothing to write to tell."""
        assert self._db is not None
        try:
            await self._db.fetchone("SELECT 1")
        except StoreError as exc:
            self._store_failed(exc, "nothing")
        else:
            self._store_back()

    def _store_failed(self, exc: StoreError, segment: str) -> None:
        """Say the first failure of an outage (not every flush's), and keep its reason."""
        if not isinstance(exc, StoreUnavailable):
            log.warning("ledger: %s; %s kept for the next flush", exc, segment)
            return
        if self._mem.store_down is None:
            log.warning("ledger: store unreachable (%s); rows wait in the journal", exc)
        self._mem.store_down = str(exc)

    def _store_back(self) -> None:
        if self._mem.store_down is not None:
            log.warning("ledger: store reachable again; moving the journal's rows into it")
        self._mem.store_down = None

    def _count_row(self, row: RequestRow, startup: bool) -> tuple[str, ...]:
        """A stored row's spend, unless this run's Settle counted it already; the scopes
        it was counted in."""
        if row.request_id in self._mem.settled:
            self._mem.settled.discard(row.request_id)
            return ()
        if not row.cost_usd:
            return ()
        if row.request_id in self._recount:
            self._recount.discard(row.request_id)
        elif not (startup and self._first_run):  # its Settle may still be on the way
            self._mem.flushed.add(row.request_id)
        scopes = [ALL] + ([key_scope(row.client)] if row.client else [])
        if row.task:
            scopes.append(task_scope(row.task))
        self._count(row.ts, row.cost_usd, tuple(scopes))
        return tuple(scopes)

    async def _load_spend(self) -> None:
        assert self._db is not None
        self._roll(self._clock.now())
        for period, start in self._starts.items():
            for scope, usd in (await spend_by_scope(self._db, start)).items():
                self._spent[(scope, period)] = usd
        self._publish()

    def _roll(self, now: float) -> None:
        """Start the periods that began by ``now``: their spend starts at zero."""
        for period in PERIODS:
            start = PERIOD_START[period](now)
            if start > self._starts.get(period, float("-inf")):
                self._starts[period] = start
                self._spent = {k: v for k, v in self._spent.items() if k[1] != period}

    def _count(self, ts: float, usd: float, scopes: tuple[str, ...]) -> None:
        self._roll(max(ts, self._clock.now()))
        for period in PERIODS:
            if ts < self._starts[period]:
                continue  # spent in an earlier period
            for scope in scopes:
                key = (scope, period)
                before = self._spent.get(key, 0.0)
                self._spent[key] = before + usd
                limit = self._limits.get(key)
                if limit:
                    self._alerts.note(scope, period, self._starts[period], before + usd, limit)

    def _publish(self, ratios: bool = True) -> None:
        """The budget view; the per-budget ratios (one per key and task budget) are
        recomputed at each flush, not on every request's Settle."""
        budget = self._budget
        used_ratio = self._view.value.used_ratio
        if ratios:
            used_ratio = {
                (period, scope): self._spent.get((scope, period), 0.0) / limit
                for (scope, period), limit in self._limits.items()
                if limit > 0
            }
        view = BudgetView(
            spent_day_usd=self._spent.get((ALL, "day"), 0.0),
            spent_month_usd=self._spent.get((ALL, "month"), 0.0),
            daily_usd=budget.daily_usd,
            monthly_usd=budget.monthly_usd,
            spent_week_usd=self._spent.get((ALL, "week"), 0.0),
            weekly_usd=budget.weekly_usd,
            used_ratio=used_ratio,
        )
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
            "store": self._config.store.where,
            "store_down": self._mem.store_down,
            "spent_day_usd": round(view.spent_day_usd, 6),
            "spent_week_usd": round(view.spent_week_usd, 6),
            "spent_month_usd": round(view.spent_month_usd, 6),
            "budget_exceeded": view.exceeded,
            "holds": len(self._mem.holds),
            "held_usd": {f"{s}/{p}": round(v, 6) for (s, p), v in self._mem.held.items()},
            "refused_holds": self._refused,
            "fleet": self._fleet.snapshot() if self._fleet is not None else None,
            "alerts_sent": self._alerts.sent,
            "alerts_posted_elsewhere": self._alerts.posted_elsewhere,
        }


def configured_limits(config: Config, budget: BudgetConfig) -> dict[BudgetKey, float]:
    """The budgets in force: the global ones of ``budget`` (the file's, or stored at run
    time) and the config's keys' (runtime keys' budgets are learnt from Reserve)."""
    limits = {b.key: b.limit_usd for b in budgets_for(budget, None, None)}
    for c in config.clients:
        for b in budgets_for(BudgetConfig(), ClientKey(c.name, c), None):
            limits[b.key] = b.limit_usd
    for task, usd in budget.task_daily_usd.items():
        limits[(task_scope(task), "day")] = usd
    return limits
