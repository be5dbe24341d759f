"""The fleet's budgets in Redis: holds taken atomically by a Lua script, spend counted
once per request, and this instance's offline slice while Redis is away.

A :class:`FleetBudget` belongs to the gateway, not to a run of the ledger actor, so a
restarted ledger still knows its holds and the spend it owes Redis. The ledger actor
calls it; the rules it applies are the pure functions of :mod:`llmswitch.cluster.money`.

* ``reserve``: one script, run with Redis's own clock, drops every budget's expired
  holds, checks ``spent + held + usd <= limit`` for each, and takes the hold in all or
  none. Holds expire (``hold_ttl_s``, longer than any call may last), so the holds of
  an instance that died never block a budget for ever.
* ``settle``: one script releases the hold and adds the real cost to every period's
  counter of every scope, at most once per request id (a marker key), so a retry or a
  reconciliation never counts a request twice.
* Redis away: holds and costs are counted here, within the offline allowance; once
  Redis answers again, :meth:`FleetBudget.sync` adds each cost (through ``settle``, so
  exactly once) and reads every budget's standing afresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.cluster.link import Link, LinkDown
from llmswitch.cluster.money import (
    BudgetKey,
    Offline,
    OfflineSpend,
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

# KEYS: the request's counted marker, the hold's (holds, amounts) pairs, spend counters.
# ARGV: hold id ('' for none), number of pairs, usd, marker TTL, then each counter's TTL.
SETTLE = """
local n = tonumber(ARGV[2])
if ARGV[1] ~= '' then
  for i = 0, n - 1 do
    redis.call('ZREM', KEYS[2 + 2 * i], ARGV[1])
    redis.call('HDEL', KEYS[3 + 2 * i], ARGV[1])
  end
end
if tonumber(ARGV[3]) <= 0 then return 0 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4]) then return 0 end
for j = 2 + 2 * n, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[j], ARGV[3])
  redis.call('EXPIRE', KEYS[j], ARGV[5 + j - 2 - 2 * n])
end
return 1
"""


@dataclass(frozen=True)
class FleetHold:
    """A hold this instance took: in Redis (its id there) or offline (``redis_id`` None)."""

    budgets: tuple[Budget, ...]
    usd: float
    ts: float
    redis_id: str | None


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
        #: Holds whose caller left (Reply's undo, which cannot wait): released at next sync.
        self.abandoned: list[int] = []
        self.refused_offline = 0
        self.reconciled = 0

    async def reserve(
        self, hold: int, budgets: tuple[Budget, ...], usd: float, ts: float, ttl_s: float
    ) -> str | None:
        """Hold ``usd`` against every budget as ``hold``; why not, if it does not fit."""
        if self.link.up:
            try:
                return await self._reserve_in_redis(hold, budgets, usd, ts, ttl_s)
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

    async def settle(
        self, hold: int | None, request_id: str, usd: float, ts: float, scopes: tuple[str, ...]
    ) -> None:
        """Release ``hold`` and count ``usd`` once for ``request_id``; offline while away."""
        taken = self.holds.pop(hold, None) if hold is not None else None
        if taken is not None and taken.redis_id is None:
            self.offline.add(self.offline.held, (b.key for b in taken.budgets), -taken.usd)
        in_redis = taken if taken is not None and taken.redis_id is not None else None
        spend = OfflineSpend(request_id, usd, ts, scopes)
        if self.link.up:
            try:
                await self._settle_in_redis(in_redis, spend)
                return
            except LinkDown:
                pass  # a hold left in Redis expires by itself
        if usd > 0:
            self.offline.pending.append(spend)
            self.offline.add(self.offline.spent, _scope_keys(scopes), usd)

    async def _settle_in_redis(self, hold: FleetHold | None, spend: OfflineSpend) -> None:
        pairs = [
            self.link.key(k)
            for b in (hold.budgets if hold else ())
            for k in budget_keys(b.scope, b.period, hold.ts if hold else spend.ts)[1:]
        ]
        counters = spend_keys(spend.scopes, spend.ts) if spend.usd > 0 else []
        keys = [self.link.key("counted", spend.request_id), *pairs]
        keys += [self.link.key(k) for k, _ in counters]
        args: list[Any] = [hold.redis_id if hold and hold.redis_id else "", len(pairs) // 2]
        args += [repr(spend.usd), COUNTED_TTL_S, *(ttl for _, ttl in counters)]
        await self.link.evalsha(self._settle, keys, args)

    def abandon(self, hold: int) -> None:
        """The caller left before taking ``hold``: give it back at the next sync."""
        self.abandoned.append(hold)

    async def sync(self, budgets: Iterable[Budget], ts: float) -> dict[BudgetKey, float] | None:
        """With Redis up: release abandoned holds, add what was spent offline (each cost
        once), then read every budget. The fleet's spend plus what is still owed to it,
        by budget; None while Redis is away."""
        if not self.link.up:
            return None
        try:
            while self.abandoned:
                await self.settle(self.abandoned[0], "", 0.0, ts, ())
                self.abandoned.pop(0)
            while self.offline.pending:
                spend = self.offline.pending[0]
                await self._settle_in_redis(None, spend)
                self.offline.pending.pop(0)
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
            "reconciled": self.reconciled,
            "refused_offline": self.refused_offline,
            "holds": len(self.holds),
        }


def _scope_keys(scopes: Iterable[str]) -> list[BudgetKey]:
    return [(scope, period) for scope in scopes for period in PERIODS]
