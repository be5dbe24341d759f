"""``GET /admin/stats``: requests, errors, tokens, cost, latency and savings from the rollups.

Read from ``request_rollup`` (daily and hourly; see :mod:`llmswitch.store.rollup`), so a
year of traffic answers from a few thousand rows per dimension and the answer has hour
granularity: ``since`` rounds down and ``until`` up to whole UTC hours.

Savings are what the same tokens would have cost on the baseline model
(``stats.baseline_model``, else the priciest configured model) minus what they did cost.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from llmswitch.config import Config, ModelConfig
from llmswitch.front.errors import GatewayError, bad_request
from llmswitch.store.connect import connect_store
from llmswitch.store.errors import StoreError
from llmswitch.store.rollup import ALL, DIMENSIONS, Group, Totals, grouped, percentile

GROUP_BY = (*DIMENSIONS, "day", "hour")
DEFAULT_SINCE = "7d"
#: The longest window one query may cover, and one hourly series (2,208 points).
MAX_WINDOW_S = 5 * 366 * 86400
MAX_HOURLY_S = 92 * 86400
_RELATIVE = re.compile(r"^(\d{1,6})([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(raw: str, now: float, param: str) -> float:
    """Unix seconds from ``7d``/``24h``/``30m``/``2w`` (before now), unix seconds, or ISO 8601."""
    text = raw.strip()
    if m := _RELATIVE.match(text):
        return now - int(m[1]) * _UNIT_S[m[2]]
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(value) and value >= 0:
            return value
        raise bad_request(f"{param}: must be a time", param=param)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"{param}: {text[:40]!r} is not a time; use 7d, 24h, unix seconds or ISO 8601"
            " (2026-12-01 or 2026-12-01T10:00:00Z)",
            param=param,
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def window(args: Mapping[str, str], now: float, group_by: str) -> tuple[int, int]:
    """``since``/``until`` as whole hours [since, until); 400 naming the parameter."""
    since = parse_time(args.get("since", DEFAULT_SINCE), now, "since")
    until = parse_time(args["until"], now, "until") if "until" in args else now
    if until <= since:
        raise bad_request("until must be after since", param="until")
    if until - since > MAX_WINDOW_S:
        raise bad_request("since..until may span at most 5 years", param="since")
    if group_by == "hour" and until - since > MAX_HOURLY_S:
        raise bad_request(
            "group_by=hour covers at most 92 days; use group_by=day for longer", param="since"
        )
    return int(since // 3600) * 3600, math.ceil(until / 3600) * 3600


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _latency(counts: list[int]) -> dict[str, float | None]:
    return {
        name: None if (v := percentile(counts, q)) is None else round(v, 1)
        for name, q in (("p50", 0.5), ("p95", 0.95))
    }


def describe(totals: Totals, baseline: ModelConfig | None) -> dict[str, Any]:
    """One group's figures; savings are null with no priced baseline."""
    base = baseline.cost_usd(totals.tokens_in, totals.tokens_out) if baseline else None
    return {
        "requests": totals.requests,
        "errors": totals.errors,
        "tokens_in": totals.tokens_in,
        "tokens_out": totals.tokens_out,
        "cost_usd": round(totals.cost_usd, 6),
        "baseline_cost_usd": None if base is None else round(base, 6),
        "savings_usd": None if base is None else round(base - totals.cost_usd, 6),
        "latency_ms": _latency(totals.lat),
        "ttfb_ms": _latency(totals.ttfb),
    }


def report(
    config: Config,
    group_by: str,
    since: int,
    until: int,
    groups: list[Group],
    total: list[Group],
) -> dict[str, Any]:
    """The /admin/stats answer from rollup groups (pure, for tests and the CLI alike)."""
    baseline = config.baseline_model()
    time_key = group_by in ("day", "hour")
    rows = [
        {"key": _iso(float(g.key)) if time_key else (g.key or None), **describe(g.totals, baseline)}
        for g in groups
    ]
    if not time_key:
        rows.sort(key=lambda r: (-r["cost_usd"], -r["requests"], str(r["key"])))
    return {
        "since": _iso(since),
        "until": _iso(until),
        "group_by": group_by,
        "granularity": "hour",
        "baseline_model": baseline.id if baseline else None,
        "total": describe(total[0].totals if total else Totals(), baseline),
        "groups": rows,
    }


async def stats(config: Config, args: Mapping[str, str]) -> dict[str, Any]:
    """Read the rollups for a request's query arguments; GatewayError on bad input."""
    group_by = args.get("group_by", "model")
    if group_by not in GROUP_BY:
        raise bad_request(
            f"group_by: {group_by[:40]!r} is not one of {', '.join(GROUP_BY)}", param="group_by"
        )
    since, until = window(args, time.time(), group_by)
    try:
        conn = await connect_store(config.store)
        try:
            groups = await grouped(conn, group_by, since, until)
            total = await grouped(conn, ALL, since, until)
        finally:
            await conn.close()
    except StoreError as exc:
        raise GatewayError(503, f"stats are unavailable: {exc}", "server_error") from None
    return report(config, group_by, since, until, groups, total)
