"""Routing settings edited at run time: tier-1 rules and keyed JSON settings.

The offline CLI and the running gateway share the database file. Every write stamps a
wall-clock ``updated_at``, strictly above every earlier stamp (even if two writes land in
the same clock tick or the clock steps back), and deletes are stamped in
``router_changes``; so a running router notices any change by polling
:func:`settings_version`, one cheap query, and reloads only when it moves.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final, Protocol

from pydantic import ValidationError

from llmswitch.config import RuleConfig
from llmswitch.store.engine import Connection, Params, Row, Transaction

log = logging.getLogger(__name__)

# A new stamp is at least this far above the last one; well above a float's resolution at
# today's unix times (about 2.4e-7 s).
_MIN_STEP_S: Final = 0.001

_VERSION_SQL: Final = """
SELECT MAX(t) FROM (
    SELECT MAX(updated_at) AS t FROM router_rules
    UNION ALL SELECT MAX(updated_at) FROM router_settings
    UNION ALL SELECT MAX(changed_at) FROM router_changes
) AS stamps
"""


class _Reader(Protocol):
    async def fetchone(self, sql: str, params: Params = ...) -> Row | None: ...


async def _version(reader: _Reader) -> float:
    row = await reader.fetchone(_VERSION_SQL)
    return float(row[0]) if row is not None and row[0] is not None else 0.0


async def _stamp(tx: Transaction) -> float:
    """A new ``updated_at`` above every stored one, recorded in ``router_changes``."""
    ts = max(time.time(), await _version(tx) + _MIN_STEP_S)
    await tx.execute(
        "INSERT INTO router_changes (id, changed_at) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET changed_at = excluded.changed_at",
        (ts,),
    )
    return ts


async def settings_version(conn: Connection) -> float:
    """The latest change to rules or settings (unix seconds); 0.0 if there never was one.

    It moves on every :func:`save_rule`, :func:`delete_rule` that deleted something and
    :func:`set_setting`, including those made by another process.
    """
    return await _version(conn)


# --- rules -------------------------------------------------------------------------------


def _parse_rule(name: str, text: str) -> RuleConfig | None:
    """The stored rule, or None (logged) if its JSON no longer validates."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        # The row's key is the rule's identity, whatever the JSON says.
        return RuleConfig.model_validate({**data, "name": name})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(rule)'}: {err['msg']}"
            for err in exc.errors()
        )
        log.warning("router_rules: skipping stored rule %r: %s", name, problems)
    except ValueError as exc:  # json.JSONDecodeError too
        log.warning("router_rules: skipping stored rule %r: %s", name, exc)
    return None


async def load_rules(conn: Connection) -> list[RuleConfig]:
    """The stored rules, by name; a rule that no longer validates is skipped and logged."""
    rows = await conn.fetchall("SELECT name, rule FROM router_rules ORDER BY name")
    rules = [_parse_rule(str(name), str(text)) for name, text in rows]
    return [rule for rule in rules if rule is not None]


async def save_rule(conn: Connection, rule: RuleConfig) -> None:
    """Store a rule, replacing a stored rule of the same name."""
    text = rule.model_dump_json()
    async with conn.transaction() as tx:
        ts = await _stamp(tx)
        await tx.execute(
            "INSERT INTO router_rules (name, rule, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET"
            " rule = excluded.rule, updated_at = excluded.updated_at",
            (rule.name, text, ts),
        )


async def delete_rule(conn: Connection, name: str) -> bool:
    """Delete the stored rule of that name; False if there was none.

    Only stored rules are deleted: a configured rule of the same name (or a shipped
    default) is in force again afterwards.
    """
    return await _delete_row(conn, "router_rules", "name", name)


async def _delete_row(conn: Connection, table: str, column: str, key: str) -> bool:
    """Delete one row by its key and stamp the version; False if there was none.

    ``table`` and ``column`` are this module's constants, never input.
    """
    async with conn.transaction() as tx:
        if not await tx.fetchone(f"SELECT 1 FROM {table} WHERE {column} = ?", (key,)):
            return False
        await tx.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
        await _stamp(tx)
    return True


# --- settings ------------------------------------------------------------------------------


_BAD: Final = object()


def _decoded(key: str, text: Any) -> Any:
    """The row's JSON value, or ``_BAD`` (logged) if it is not valid JSON."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        log.warning("router_settings: ignoring %r, not valid JSON: %s", key, exc)
        return _BAD


async def get_setting(conn: Connection, key: str) -> Any | None:
    """The JSON-decoded value stored under ``key``; None if unset (or stored as null, or
    no longer valid JSON, which is logged)."""
    row = await conn.fetchone("SELECT value FROM router_settings WHERE key = ?", (key,))
    value = _BAD if row is None else _decoded(key, row[0])
    return None if value is _BAD else value


async def load_settings(conn: Connection) -> dict[str, Any]:
    """Every stored setting, JSON-decoded, by key. A row stored as null is kept (a budget
    of null means "no limit", unlike no row); one no longer valid JSON is logged and
    left out."""
    rows = await conn.fetchall("SELECT key, value FROM router_settings ORDER BY key")
    decoded = {str(key): _decoded(str(key), text) for key, text in rows}
    return {key: value for key, value in decoded.items() if value is not _BAD}


async def set_setting(conn: Connection, key: str, value: Any) -> None:
    """Store ``value`` as JSON under ``key``, replacing the old value.

    Raises TypeError for a value JSON cannot hold and ValueError for NaN or infinities
    (not JSON, and other tools read these rows).
    """
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    async with conn.transaction() as tx:
        ts = await _stamp(tx)
        await tx.execute(
            "INSERT INTO router_settings (key, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET"
            " value = excluded.value, updated_at = excluded.updated_at",
            (key, text, ts),
        )


async def delete_setting(conn: Connection, key: str) -> bool:
    """Delete the value stored under ``key`` (the config's is in force again); False if
    there was none. A running gateway sees the change on its next poll."""
    return await _delete_row(conn, "router_settings", "key", key)
