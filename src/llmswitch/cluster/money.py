"""The fleet's budgets as plain data: where a budget lives in Redis, and what an instance
may spend while Redis is away. Pure functions; :mod:`llmswitch.cluster.budget` does the I/O.

While Redis answers, one Lua script takes a hold against every budget at once (see
``cluster/budget.py``). While it does not, an instance may spend only its *offline
allowance*: ``cluster.offline_budget_fraction`` of what each budget had left (limit
minus spent and held) when Redis last answered. N instances degraded together may
therefore pass a budget by at most N x that fraction of what was left; the default
fraction 0 allows no metered call at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from llmswitch.routing.budget import PERIOD_START, PERIODS, Budget, Period

BudgetKey = tuple[str, Period]
#: Sums of float dollars are off in the last bits: 0.2 + 0.1 > 0.3. Far below a cent.
_CENT_FRACTION = 1e-9

#: Longest period a spend counter must outlive (a month and a day).
_PERIOD_S = {"day": 86400.0, "week": 7 * 86400.0, "month": 32 * 86400.0}


def period_start(period: Period, ts: float) -> int:
    return int(PERIOD_START[period](ts))


def counter_ttl_s(period: Period) -> int:
    """How long a period's counters are kept: the period and a day, then Redis drops them."""
    return int(_PERIOD_S[period] + 86400)


def budget_keys(scope: str, period: Period, ts: float) -> tuple[str, str, str]:
    """The key suffixes of one budget in the period holding ``ts``: its spend counter,
    its holds by expiry (a sorted set) and its holds' amounts (a hash)."""
    base = f"budget:{period}:{period_start(period, ts)}:{scope}"
    return f"{base}:spent", f"{base}:holds", f"{base}:held"


def spend_keys(scopes: Iterable[str], ts: float) -> list[tuple[str, int]]:
    """The spend counters a cost at ``ts`` adds to, in every period, with their TTLs."""
    return [
        (budget_keys(scope, period, ts)[0], counter_ttl_s(period))
        for scope in scopes
        for period in PERIODS
    ]


@dataclass(frozen=True)
class Standing:
    """One budget as Redis last told it."""

    spent: float
    held: float
    limit: float

    @property
    def left(self) -> float:
        return max(0.0, self.limit - self.spent - self.held)


@dataclass(frozen=True)
class OfflineSpend:
    """A cost counted while Redis was away, to be added to the fleet's once it returns."""

    request_id: str
    usd: float
    ts: float
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class FleetHold:
    """A hold this instance took: in Redis (its id there) or offline (``redis_id`` None)."""

    budgets: tuple[Budget, ...]
    usd: float
    ts: float
    redis_id: str | None


@dataclass(frozen=True)
class Settlement:
    """A hold to release in Redis (if any) and a cost to count there once."""

    hold: FleetHold | None
    spend: OfflineSpend


@dataclass
class Offline:
    """What an instance spent and holds while Redis is away (mutated by its shell only)."""

    spent: dict[BudgetKey, float] = field(default_factory=dict)
    held: dict[BudgetKey, float] = field(default_factory=dict)
    #: Settled while away, oldest first: each cost is added to Redis exactly once, and
    #: each hold Redis still has is released then (it would expire anyway).
    pending: list[Settlement] = field(default_factory=list)

    def used(self, key: BudgetKey) -> float:
        return self.spent.get(key, 0.0) + self.held.get(key, 0.0)

    def add(self, table: dict[BudgetKey, float], keys: Iterable[BudgetKey], usd: float) -> None:
        for key in keys:
            table[key] = max(0.0, table.get(key, 0.0) + usd)


def offline_refusal(
    budgets: Iterable[Budget],
    usd: float,
    fraction: float,
    seen: Mapping[BudgetKey, Standing],
    offline: Offline,
) -> str | None:
    """Why a hold of ``usd`` does not fit in the offline allowance; None if it fits."""
    for budget in budgets:
        standing = seen.get(budget.key)
        if standing is None:
            return f"{budget.describe()}: never read from the cluster, so nothing to spend offline"
        allowance = fraction * standing.left
        used = offline.used(budget.key)
        if used + usd > allowance + _CENT_FRACTION:
            return (
                f"{budget.describe()}: cluster degraded, offline allowance "
                f"${allowance:.4f} ({fraction:g} of ${standing.left:.4f} left), "
                f"${used:.4f} used, ${usd:.4f} more would pass it"
            )
    return None


def refusal(budget: Budget, spent: float, held: float, usd: float) -> str | None:
    """Why a hold of ``usd`` does not fit in ``budget`` (the same rule as the Lua script's)."""
    used = spent + held
    if used >= budget.limit_usd or used + usd > budget.limit_usd:
        return f"{budget.describe()}: ${used:.4f} spent or held, ${usd:.4f} more would pass it"
    return None
