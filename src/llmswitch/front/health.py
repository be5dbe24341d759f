"""``/health/live``, ``/health/ready`` and ``/health``: is the process up, can it serve?

Live only says the process answers. Ready says a request could be served now: the
store (for PostgreSQL, the journal beside ``store.path``) is writable, the gateway is not
draining, and at least one enabled model sits on a backend whose last probe succeeded. A
backend is ``unknown`` until its first probe, so a fresh gateway is not ready until one
has answered (a probe's 401 is "down: auth", never "ok"). A store server that cannot be
reached leaves the gateway ready (rows wait in the journal) and is said under ``store``.
``/health`` is ready's answer with the detail an operator reads.

A fleet whose Redis is away is still ready, with status "degraded" and the reason
(``cluster degraded: ...``): it serves on local limits and its offline budget slice, and
a load balancer that took every instance out over a Redis outage would stop the service
that degraded mode keeps.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmswitch.actors.health import HealthView
from llmswitch.actors.ledger import BudgetView
from llmswitch.cluster.link import LinkState
from llmswitch.config import Config


@dataclass(frozen=True, slots=True)
class StoreCheck:
    ok: bool
    reason: str | None = None
    #: Why the ledger's last flush did not reach the store (a PostgreSQL server gone).
    #: Still ready: rows wait in the local journal and ship when it is back.
    down: str | None = None


def check_store(path: str, ledger_state: str, down: str | None = None) -> StoreCheck:
    """Can the ledger write? Its actor runs and the database file (or its folder, where
    the journal is too) is writable; ``down`` is the ledger's word on the store itself."""
    if ledger_state != "running":
        return StoreCheck(False, f"the ledger actor is {ledger_state}", down)
    target = Path(path)
    probe = target if target.exists() else target.parent
    if not os.access(probe, os.W_OK):
        return StoreCheck(False, f"{probe} is not writable", down)
    return StoreCheck(True, down=down)


def readiness(
    config: Config,
    health: HealthView,
    budget: BudgetView,
    store: StoreCheck,
    *,
    draining: bool,
    cluster: LinkState | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Whether the gateway can serve, and the body that says why (pure)."""
    states = {
        b.name: health.backends[b.name].state if b.name in health.backends else "unknown"
        for b in config.backends
    }
    models = Counter(states.get(m.backend, "unknown") for m in config.models if m.enabled)
    reasons: list[str] = []
    if draining:
        reasons.append("draining")
    if not store.ok:
        reasons.append(f"store: {store.reason}")
    if not models["up"]:
        if not config.models:
            reasons.append("no models configured")
        elif models["unknown"] and not models["down"]:
            reasons.append("starting: no backend has answered its first probe yet")
        else:
            reasons.append("no enabled model is on a backend that is up")
    ready = not reasons
    body: dict[str, Any] = {
        "status": "ok" if ready else ("draining" if draining else "unavailable"),
        "ready": ready,
        "backends_up": sorted(n for n, s in states.items() if s == "up"),
        "backends": {
            n: {"state": s, "reason": health.backends[n].last_error if s == "down" else None}
            for n, s in states.items()
        },
        "models": {k: models[k] for k in ("up", "down", "unknown")},
        "store": {
            "ok": store.ok,
            "reason": store.reason,
            "reachable": store.down is None,
            "down": store.down,
        },
        "budget": {
            "exceeded": budget.exceeded,
            "spent_day_usd": round(budget.spent_day_usd, 6),
            "spent_month_usd": round(budget.spent_month_usd, 6),
        },
    }
    if cluster is not None:
        body["cluster"] = {"state": "up" if cluster.up else "degraded", "reason": cluster.reason}
        if not cluster.up:
            body["degraded"] = f"cluster degraded: {cluster.reason}"
            body["status"] = "degraded" if ready else body["status"]
    if reasons:
        body["reason"] = "; ".join(reasons)
    return ready, body
