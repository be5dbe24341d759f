"""Which budgets a metered call counts against, and its worst-case cost: pure functions.

A budget is a scope (``all``, ``key:NAME``, ``task:TYPE``) over a period (UTC day, ISO
week from Monday, calendar month) with a limit in USD. The ledger actor holds the
running totals; this module only says what applies and how much to hold.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from llmswitch.config import BudgetConfig, ModelConfig
from llmswitch.routing.select import ClientKey

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
ALL = "all"


@dataclass(frozen=True)
class Budget:
    """One limit a metered call must fit in."""

    scope: str
    period: Period
    limit_usd: float

    @property
    def key(self) -> tuple[str, Period]:
        return (self.scope, self.period)

    def describe(self) -> str:
        who = "" if self.scope == ALL else f" of {self.scope.replace(':', ' ')}"
        return f"{self.period}ly budget{who} (${self.limit_usd:g})".replace("dayly", "daily")


def key_scope(name: str) -> str:
    return f"key:{name}"


def task_scope(task_type: str) -> str:
    return f"task:{task_type}"


def scopes_of(client: ClientKey | None, task_type: str | None) -> tuple[str, ...]:
    """Where a call's spend counts: everything, its client key, its task type."""
    scopes = [ALL]
    if client is not None:
        scopes.append(key_scope(client.name))
    if task_type is not None:
        scopes.append(task_scope(task_type))
    return tuple(scopes)


def budgets_for(
    config: BudgetConfig, client: ClientKey | None, task_type: str | None
) -> tuple[Budget, ...]:
    """Every configured budget that applies to a call of this key and task type."""
    limits: list[tuple[str, Period, float | None]] = [
        (ALL, "day", config.daily_usd),
        (ALL, "week", config.weekly_usd),
        (ALL, "month", config.monthly_usd),
    ]
    if client is not None:
        limits += [
            (key_scope(client.name), "day", client.policy.daily_usd),
            (key_scope(client.name), "month", client.policy.monthly_usd),
        ]
    if task_type is not None:
        limits.append((task_scope(task_type), "day", config.task_daily_usd.get(task_type)))
    return tuple(Budget(s, p, limit) for s, p, limit in limits if limit is not None)


def output_bound(model: ModelConfig, asked: int, config: BudgetConfig) -> int:
    """The most output tokens a call may produce: the request's limit, else the model's,
    else the configured default."""
    return asked or model.max_output_tokens or config.default_output_tokens


def prompt_bound(body: Mapping[str, Any]) -> int:
    """Prompt tokens the call can be billed for at most: the UTF-8 bytes of its messages
    and tools as JSON. Byte-level tokenizers never make more tokens than bytes, and the
    JSON around the text covers the per-message overhead; a four-characters-a-token
    estimate would let a budget be overrun by every prompt it underestimates."""
    billed = {"messages": body.get("messages"), "tools": body.get("tools")}
    return len(json.dumps(billed, ensure_ascii=False).encode())


def worst_case_usd(model: ModelConfig, body: Mapping[str, Any], output_tokens: int) -> float:
    """The most a call can cost: every prompt token it may be billed for, and as many
    output tokens as it may produce."""
    return model.cost_usd(prompt_bound(body), output_tokens)


def day_start(ts: float) -> float:
    """Start of the UTC day holding ``ts``."""
    return ts - ts % 86400


def week_start(ts: float) -> float:
    """Start of the UTC week (Monday) holding ``ts``."""
    return day_start(ts) - time.gmtime(ts).tm_wday * 86400


def month_start(ts: float) -> float:
    """Start of the UTC month holding ``ts``."""
    t = time.gmtime(ts)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


PERIOD_START = {"day": day_start, "week": week_start, "month": month_start}


def crossed(before: float, after: float, thresholds: tuple[float, ...]) -> list[float]:
    """The alert thresholds a used ratio passed on its way from ``before`` to ``after``."""
    return [t for t in thresholds if before < t <= after]
