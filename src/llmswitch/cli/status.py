"""``llmswitch status`` and ``llmswitch stats``: a running gateway, seen by its operator.

Both ask the gateway itself (``/health``, ``/debug``, ``/admin/stats``) with the admin
token, so they show what it is doing now: backends with a hint when down, breakers,
rate-limit cooldowns, actors and their restarts, spend against every budget; and what
was served, spent and saved over a window. Tables for people, ``--json`` for scripts.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from llmswitch.cli.common import SubParsers, config_command, fail, offline
from llmswitch.cli.remote import Remote, RemoteError, add_remote_arguments
from llmswitch.cli.table import Cell, fields, table
from llmswitch.config import Config
from llmswitch.hints import backend_hint

_PERIODS = (("day", "daily_usd"), ("week", "weekly_usd"), ("month", "monthly_usd"))


def _backend_rows(
    config: Config, health: dict[str, Any], debug: dict[str, Any]
) -> list[list[Cell]]:
    configured = {b.name: b for b in config.backends}
    rows: list[list[Cell]] = []
    for name, h in health.get("backends", {}).items():
        pool = (debug.get("backends", {}).get(name) or {}).get("pool") or {}
        reason = h.get("reason")
        hint = backend_hint(configured[name], reason) if name in configured else None
        rows.append(
            [name, h.get("state"), pool.get("breaker"), pool.get("in_flight"), reason, hint]
        )
    return rows


def _budget_rows(budget: dict[str, Any]) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for period, limit_key in _PERIODS:
        limit = budget.get(limit_key)
        spent = budget.get(f"spent_{period}_usd", 0.0)
        used = f"{spent / limit:.0%}" if limit else None
        rows.append([f"global/{period}", round(spent, 4), limit, used])
    for key, ratio in sorted(budget.get("used_ratio", {}).items()):
        if not key.startswith("global/"):
            rows.append([key, None, None, f"{ratio:.0%}"])
    return rows


def _cooldowns(debug: dict[str, Any]) -> list[list[Cell]]:
    for actor in debug.get("supervisor", {}).get("actors", []):
        if actor.get("name") == "limits":
            cooling = actor.get("summary", {}).get("cooldown_s", {})
            return [[scope, left] for scope, left in sorted(cooling.items())]
    return []


def store_line(store: dict[str, Any]) -> str:
    """The store as /health says it: writable, or not and why, and whether its server
    (PostgreSQL) answers; while it does not, rows wait in the journal."""
    if store.get("down"):
        return f"unreachable, rows wait in the journal: {store['down']}"
    return "ok" if store.get("ok", True) else f"not writable: {store.get('reason')}"


def render_status(config: Config, url: str, health: dict[str, Any], debug: dict[str, Any]) -> str:
    models = health.get("models", {})
    state = "ready" if health.get("ready") else f"not ready: {health.get('reason', '?')}"
    head = fields(
        [
            ("gateway", url),
            ("state", state),
            ("store", store_line(health.get("store", {}))),
            ("uptime_s", debug.get("uptime_s")),
            ("in flight", debug.get("in_flight")),
            (
                "models",
                f"{models.get('up', 0)} up, {models.get('down', 0)} down, "
                f"{models.get('unknown', 0)} unknown",
            ),
        ]
    )
    backends = table(
        ["backend", "state", "breaker", "in flight", "reason", "hint"],
        _backend_rows(config, health, debug),
    )
    actors = table(
        ["actor", "state", "restarts", "mailbox", "last error"],
        [
            [a["name"], a["state"], a["restarts"], a["mailbox"]["depth"], a.get("last_error")]
            for a in debug.get("supervisor", {}).get("actors", [])
        ],
    )
    cooldowns = table(["rate-limited scope", "cooling down (s)"], _cooldowns(debug))
    budgets = table(
        ["budget", "spent usd", "limit usd", "used"], _budget_rows(debug.get("budget", {}))
    )
    return "\n\n".join([head, backends, actors, cooldowns, budgets])


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    remote = Remote(config, args.url)
    try:
        health = remote.get("/health")
        debug = remote.get("/debug")
    except RemoteError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps({"url": remote.url, "health": health, "debug": debug}, indent=2))
    else:
        print(render_status(config, remote.url, health, debug))
    return 0 if health.get("ready") else 1


def _ms(latency: dict[str, Any]) -> Cell:
    p50, p95 = latency.get("p50"), latency.get("p95")
    return None if p50 is None else f"{p50:g}/{p95:g}"


def render_stats(report: dict[str, Any]) -> str:
    def row(key: Cell, g: dict[str, Any]) -> list[Cell]:
        return [
            key,
            g["requests"],
            g["errors"],
            g["tokens_in"],
            g["tokens_out"],
            g["cost_usd"],
            g["savings_usd"],
            _ms(g["latency_ms"]),
        ]

    headers = [report["group_by"], "requests", "errors", "tokens in", "tokens out", "cost usd"]
    headers += ["saved usd", "p50/p95 ms"]
    rows = [row(g["key"], g) for g in report["groups"]]
    rows.append(row("(total)", report["total"]))
    baseline = report.get("baseline_model")
    note = f"savings against {baseline}" if baseline else "no priced model: no savings baseline"
    return f"{report['since']} .. {report['until']}; {note}\n\n" + table(headers, rows)


def cmd_stats(config: Config, args: argparse.Namespace) -> int:
    remote = Remote(config, args.url)
    params = {"since": args.since, "group_by": args.by}
    if args.until:
        params["until"] = args.until
    try:
        report = remote.get("/admin/stats", params)
    except RemoteError as exc:
        return fail(str(exc))
    print(json.dumps(report, indent=2) if args.json else render_stats(report))
    return 0


def register(sub: SubParsers) -> None:
    p = config_command(sub, "status", "a running gateway: backends, breakers, actors, budgets")
    add_remote_arguments(p)
    p.set_defaults(func=offline(cmd_status))
    p = config_command(sub, "stats", "what a running gateway served, spent and saved")
    add_remote_arguments(p)
    p.add_argument("--since", default="24h", help="30m, 24h, 7d, unix seconds or ISO 8601")
    p.add_argument("--until", help="same forms as --since; default: now")
    p.add_argument(
        "--by",
        default="model",
        help="model, backend, client, task, profile, tier, harness, status, day or hour",
    )
    p.set_defaults(func=offline(cmd_stats))
