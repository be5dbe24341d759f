"""The fleet's budgets in Redis: holds taken atomically by a Lua script, spend counted
once per request, and this instance's offline slice while Redis is away.

A :class:`FleetBudget` belongs to the gateway, not to a run of the ledger actor, so a
restarted ledger still knows its holds and the spend it owes Redis. The ledger actor
calls it; the rules it applies are the pure functions of :mod:`llmswitch.cluster.money`.

* ``reserve``: one script, run with Redis's own clock, drops every budget's expired
  holds, checks ``spent + held + usd <= limit`` for each, and takes the hold in all or
  none. Holds expire (``hold_ttl_s``, longer than any call may last), so the holds of
  an instance that died never block a budget for ever.
* ``settle``: queued, and sent in batches (``SETTLE_BATCH_S``; one script a batch, not a
  round trip a request): each releases its hold and adds its real cost to every
  period's counter of every scope, at most once per request id (a marker key), so a
  retry or a reconciliation never counts a request twice. A refusal while this
  instance's own settlements are still queued sends them first and asks again, so a
  client calling one after another is never refused for holds its finished calls left.
* Redis away: holds and costs are counted here, within the offline allowance; once
  Redis answers again, :meth:`FleetBudget.sync` adds each cost (through ``settle``, so
  exactly once) and reads every budget's standing afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import trio
from coredis.tokens import PureToken

from llmswitch.cluster.link import Link, LinkDown
from llmswitch.cluster.money import (
    BudgetKey,
    FleetHold,
    Offline,
    OfflineSpend,
    Settlement,
    Standing,
    budget_keys,
    counter_ttl_s,
    offline_refusal,
    refusal,
    spend_keys,
)
from llmswitch.routing.budget import PERIODS, Budget

#: How long Redis remembers that a request's cost was counted; a reconciliation after
#: a longer outage could count a request whose first settle answer was lost twice.
COUNTED_TTL_S = 7 * 86400
#: How long settlements gather before they go to Redis in one script; and at most how many.
SETTLE_BATCH_S = 0.01
SETTLE_BATCH = 256
#: How long the fleet remembers that an alert was posted: longer than a month.
ALERT_TTL_S = 40 * 86400

# KEYS: per budget, its spend counter, holds by expiry and holds' amounts.
# ARGV: usd (negative: only read), hold id, hold TTL in ms, then per budget limit and TTL.
# Replies {ok, index of the budget that refused, then spent and held of each budget read}
# as strings: Redis would truncate Lua numbers to integers.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local usd = tonumber(ARGV[1])
local out = {'1', '-1'}
for i = 0, #KEYS / 3 - 1 do
  local holds, held_k = KEYS[3 * i + 2], KEYS[3 * i + 3]
  local gone = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  if #gone > 0 then
    redis.call('HDEL', held_k, unpack(gone))
    redis.call('ZREMRANGEBYSCORE', holds, '-inf', now)
  end
  local held = 0
  for _, v in ipairs(redis.call('HVALS', held_k)) do held = held + tonumber(v) end
  local spent = tonumber(redis.call('GET', KEYS[3 * i + 1]) or '0')
  out[#out + 1] = tostring(spent)
  out[#out + 1] = tostring(held)
  local limit = tonumber(ARGV[4 + 2 * i])
  if usd >= 0 and (spent + held >= limit or spent + held + usd > limit) then
    out[1] = '0'
    out[2] = tostring(i)
    return out
  end
end
if usd < 0 then return out end
for i = 0, #KEYS / 3 - 1 do
  redis.call('ZADD', KEYS[3 * i + 2], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('HSET', KEYS[3 * i + 3], ARGV[2], ARGV[1])
  for j = 1, 3 do redis.call('EXPIRE', KEYS[3 * i + j], ARGV[5 + 2 * i]) end
end
return out
"""

# Settlements, one after the other. ARGV: the marker TTL, then per settlement its hold id
# ('' for none), number of hold key pairs n, usd, number of counters m, the m counter TTLs.
# KEYS: per settlement its counted marker, its n (holds, amounts) pairs, its m counters.
# Replies how many costs were counted (a marker already there: counted before).
SETTLE = """
local k, a, counted = 1, 2, 0
while a <= #ARGV do
  local id, n, usd, m = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], tonumber(ARGV[a + 3])
  if id ~= '' then
    for i = 0, n - 1 do
      redis.call('ZREM', KEYS[k + 1 + 2 * i], id)
      redis.call('HDEL', KEYS[k + 2 + 2 * i], id)
    end
  end
  if m > 0 and redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[1]) then
    for j = 1, m do
      redis.call('INCRBYFLOAT', KEYS[k + 2 * n + j], usd)
      redis.call('EXPIRE', KEYS[k + 2 * n + j], ARGV[a + 3 + j])
    end
    counted = counted + 1
  end
  k = k + 1 + 2 * n + m
  a = a + 4 + m
end
return counted
"""


class FleetBudget:
    def __init__(self, link: Link, fraction: float, instance: str) -> None:
        self.link = link
        self.fraction = fraction
        self.instance = instance
        self._reserve = link.script(RESERVE)
        self._settle = link.script(SETTLE)
        #: Each budget's standing at Redis's last answer: what the offline slice is cut from.
        self.seen: dict[BudgetKey, Standing] = {}
        self.offline = Offline()
        self.holds: dict[int, FleetHold] = {}
        #: Settlements waiting for the next batch to Redis.
        self.outbox: list[Settlement] = []
        self._queued = trio.Event()
        #: One sender at a time: a batch in flight is not sent twice.
        self._sending = trio.Lock()
        self.refused_offline = 0
        self.reconciled = 0

    async def reserve(
        self, hold: int, budgets: tuple[Budget, ...], usd: float, ts: float, ttl_s: float
    ) -> str | None:
        """Hold ``usd`` against every budget as ``hold``; why not, if it does not fit."""
        if self.link.up:
            try:
                reason = await self._reserve_in_redis(hold, budgets, usd, ts, ttl_s)
                if reason is not None and self.outbox:
                    await self.flush_outbox()  # our own holds, released late
                    reason = await self._reserve_in_redis(hold, budgets, usd, ts, ttl_s)
                return reason
            except LinkDown:
                pass
        reason = offline_refusal(budgets, usd, self.fraction, self.seen, self.offline)
        if reason is not None:
            self.refused_offline += 1
            return reason
        self.offline.add(self.offline.held, (b.key for b in budgets), usd)
        self.holds[hold] = FleetHold(budgets, usd, ts, None)
        return None

    async def _reserve_in_redis(
        self, hold: int, budgets: tuple[Budget, ...], usd: float, ts: float, ttl_s: float
    ) -> str | None:
        redis_id = f"{self.instance}:{hold}"
        reply = await self._run_reserve(budgets, usd, ts, redis_id, ttl_s)
        ok, index, standings = reply[0] == "1", int(reply[1]), reply[2:]
        for i, budget in enumerate(budgets[: len(standings) // 2]):
            spent, held = float(standings[2 * i]), float(standings[2 * i + 1])
            self.seen[budget.key] = Standing(spent, held + (usd if ok else 0.0), budget.limit_usd)
        if not ok:
            budget = budgets[index]
            spent, held = float(standings[2 * index]), float(standings[2 * index + 1])
            return refusal(budget, spent, held, usd) or f"{budget.describe()}: refused"
        self.holds[hold] = FleetHold(budgets, usd, ts, redis_id)
        return None

    async def _run_reserve(
        self, budgets: Iterable[Budget], usd: float, ts: float, redis_id: str, ttl_s: float
    ) -> list[str]:
        keys: list[str] = []
        args: list[Any] = [repr(usd), redis_id, int(ttl_s * 1000)]
        for budget in budgets:
            keys += [self.link.key(k) for k in budget_keys(budget.scope, budget.period, ts)]
            args += [repr(budget.limit_usd), counter_ttl_s(budget.period)]
        return [str(v) for v in await self.link.evalsha(self._reserve, keys, args)]

    def settle(
        self, hold: int | None, request_id: str, usd: float, ts: float, scopes: tuple[str, ...]
    ) -> None:
        """Release ``hold`` and count ``usd`` once for ``request_id``: queued for Redis (see
        :meth:`send_settlements`), or owed to it while it is away."""
        taken = self.holds.pop(hold, None) if hold is not None else None
        if taken is not None and taken.redis_id is None:
            self.offline.add(self.offline.held, (b.key for b in taken.budgets), -taken.usd)
        in_redis = taken if taken is not None and taken.redis_id is not None else None
        settlement = Settlement(in_redis, OfflineSpend(request_id, usd, ts, scopes))
        if self.link.up:
            self.outbox.append(settlement)
            self._queued.set()
        else:
            self._owe(settlement)

    def _owe(self, settlement: Settlement) -> None:
        """Keep ``settlement`` for Redis's return: its cost counts offline meanwhile."""
        spend = settlement.spend
        if spend.usd > 0 or settlement.hold is not None:
            self.offline.pending.append(settlement)
        if spend.usd > 0:
            self.offline.add(self.offline.spent, _scope_keys(spend.scopes), spend.usd)

    async def send_settlements(self) -> None:
        """Send what :meth:`settle` queued, in batches, until cancelled."""
        while True:
            await self._queued.wait()
            self._queued = trio.Event()
            await trio.sleep(SETTLE_BATCH_S)
            await self.flush_outbox()

    async def flush_outbox(self) -> None:
        """Send every queued settlement now; while Redis is away they are owed instead."""
        async with self._sending:
            while self.outbox:
                batch = self.outbox[:SETTLE_BATCH]
                try:
                    await self._settle_in_redis(batch)
                except LinkDown:
                    for settlement in self.outbox:
                        self._owe(settlement)
                    self.outbox.clear()
                    return
                del self.outbox[: len(batch)]

    async def _settle_in_redis(self, batch: Sequence[Settlement]) -> None:
        keys: list[str] = []
        args: list[Any] = [COUNTED_TTL_S]
        for hold, spend in ((s.hold, s.spend) for s in batch):
            pairs = [
                self.link.key(k)
                for b in (hold.budgets if hold else ())
                for k in budget_keys(b.scope, b.period, hold.ts if hold else spend.ts)[1:]
            ]
            counters = spend_keys(spend.scopes, spend.ts) if spend.usd > 0 else []
            keys += [self.link.key("counted", spend.request_id), *pairs]
            keys += [self.link.key(k) for k, _ in counters]
            args += [hold.redis_id if hold and hold.redis_id else "", len(pairs) // 2]
            args += [repr(spend.usd), len(counters), *(ttl for _, ttl in counters)]
        await self.link.evalsha(self._settle, keys, args)

    async def claim_alert(self, name: str) -> bool:
        """Whether this instance is the fleet's first to post alert ``name`` (True while
        Redis is away: a duplicate beats a silence)."""
        key = self.link.key("alert", name)
        try:
            return bool(
                await self.link.call(
                    lambda c: c.set(key, self.instance, condition=PureToken.NX, ex=ALERT_TTL_S)
                )
            )
        except LinkDown:
            return True

    def abandon(self, hold: int) -> None:
        """The caller left before taking ``hold``: give it back (no wait: Reply's undo)."""
        self.settle(hold, "", 0.0, 0.0, ())

    async def sync(self, budgets: Iterable[Budget], ts: float) -> dict[BudgetKey, float] | None:
        """With Redis up: send what is queued, add what was spent offline (each cost
        once), then read every budget. The fleet's spend plus what is still owed to it,
        by budget; None while Redis is away."""
        if not self.link.up:
            return None
        try:
            await self.flush_outbox()
            while self.offline.pending:
                owed = self.offline.pending[:SETTLE_BATCH]
                await self._settle_in_redis(owed)
                del self.offline.pending[: len(owed)]
                for spend in (o.spend for o in owed if o.spend.usd > 0):
                    self.offline.add(self.offline.spent, _scope_keys(spend.scopes), -spend.usd)
                    self.reconciled += 1
            looked = tuple(budgets)
            reply = await self._run_reserve(looked, -1.0, ts, "", 0)
        except LinkDown:
            return None
        standings = reply[2:]
        spent: dict[BudgetKey, float] = {}
        for i, budget in enumerate(looked):
            s, held = float(standings[2 * i]), float(standings[2 * i + 1])
            self.seen[budget.key] = Standing(s, held, budget.limit_usd)
            spent[budget.key] = s + self.offline.spent.get(budget.key, 0.0)
        return spent

    def snapshot(self) -> Mapping[str, Any]:
        """For /debug: what was spent and is held offline, and what is owed to Redis."""
        return {
            "offline_budget_fraction": self.fraction,
            "offline_spent_usd": {
                f"{s}/{p}": round(v, 6) for (s, p), v in self.offline.spent.items() if v
            },
            "offline_held_usd": {
                f"{s}/{p}": round(v, 6) for (s, p), v in self.offline.held.items() if v
            },
            "to_reconcile": len(self.offline.pending),
            "to_send": len(self.outbox),
            "reconciled": self.reconciled,
            "refused_offline": self.refused_offline,
            "holds": len(self.holds),
        }


def _scope_keys(scopes: Iterable[str]) -> list[BudgetKey]:
    return [(scope, period) for scope in scopes for period in PERIODS]
