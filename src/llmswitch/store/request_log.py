"""The ``request_log`` table: one row per request, written in batches by the budget ledger.

Plain functions over a :class:`~llmswitch.store.db.Connection`. The column list is the
dataclass's fields, so a new column is one migration and one field; ``tests/store``
checks that :class:`RequestRow` and the table's columns stay in step.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from llmswitch.store.engine import Connection, Row
from llmswitch.store.rollup import roll_up

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestRow:
    """One ``request_log`` row without its ``id``; ``ts`` is unix seconds (wall clock)."""

    ts: float
    request_id: str
    client: str | None = None
    requested_model: str | None = None
    chosen_model: str | None = None
    backend: str | None = None
    tier: str | None = None
    classification: str | None = None
    reason: str | None = None
    status: int
    stream: bool
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    usage_estimated: bool = False
    cost_usd: float = 0.0
    error: str | None = None
    rule: str | None = None
    profile: str | None = None
    harness: str | None = None
    conversation: str | None = None
    #: The ``max_tokens`` the serving model got when it could give less than was asked.
    output_cap: int | None = None
    task: str | None = None
    #: What conversation affinity did to the decision (routing.affinity).
    affinity: str | None = None
    #: The fleet member that served it (:func:`instance_name`).
    instance: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Column name to value; a tenth of ``dataclasses.asdict``'s cost on the hot path."""
        return {c: getattr(self, c) for c in COLUMNS}


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RequestRow))
_COLUMN_LIST = ", ".join(COLUMNS)
_BOOLEAN = frozenset({"stream", "usage_estimated"})


def _from_db(r: Row) -> RequestRow:
    values = dict(zip(COLUMNS, r, strict=True))
    for name in _BOOLEAN:
        values[name] = bool(values[name])
    return RequestRow(**values)


def storable(row: RequestRow) -> bool:
    """A row both engines store as it is: a finite time and cost (SQLite would store NaN
    as NULL, which NOT NULL refuses; PostgreSQL would store it, and every sum would be
    NaN)."""
    return math.isfinite(row.ts) and math.isfinite(row.cost_usd)


_INSERT = (
    f"INSERT INTO request_log ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))})"
    " ON CONFLICT (request_id) DO NOTHING"
)


def instance_name(host: str, port: int, worker: int, workers: int) -> str:
    """How a row names the process that served it: ``host:port``, and ``/worker`` when
    ``server.workers`` processes share the port."""
    return f"{host}:{port}" + (f"/{worker}" if workers > 1 else "")


async def insert_rows(conn: Connection, rows: Sequence[RequestRow]) -> None:
    """Write a batch and its rollups in one transaction; stored ``request_id``s are skipped.

    ``ON CONFLICT DO NOTHING`` makes writing the same batch again (after a crash or a
    cancellation during the commit) harmless. A row no engine could store as it is (see
    :func:`storable`) is logged and left out rather than failing the batch, which the
    ledger would retry forever.
    """
    kept = [r for r in rows if storable(r)]
    if len(kept) < len(rows):
        rejected = sorted(r.request_id for r in rows if not storable(r))
        log.warning(
            "request_log: %d row(s) rejected (time or cost not a finite number), not stored: %s",
            len(rejected),
            ", ".join(rejected[:20]),
        )
    if not kept:
        return
    params = [tuple(getattr(r, c) for c in COLUMNS) for r in kept]
    async with conn.transaction() as tx:
        await tx.executemany(_INSERT, params)
        await roll_up(tx)


async def insert_new_rows(conn: Connection, rows: Sequence[RequestRow]) -> list[RequestRow]:
    """Insert the rows not stored yet; return those, so their spend is counted once."""
    if not rows:
        return []
    present = await conn.fetchall(
        "SELECT request_id FROM request_log"
        f" WHERE request_id IN (SELECT value FROM {conn.dialect.json_values})",
        (json.dumps([r.request_id for r in rows]),),
    )
    stored = {str(p[0]) for p in present}
    new = [r for r in rows if r.request_id not in stored]
    await insert_rows(conn, new)
    return [r for r in new if storable(r)]


async def spend_since(conn: Connection, since_ts: float) -> float:
    """Total ``cost_usd`` of rows with ``ts >= since_ts`` (0.0 when none)."""
    row = await conn.fetchone(
        "SELECT COALESCE(SUM(cost_usd), 0) FROM request_log WHERE ts >= ?",
        (since_ts,),
    )
    return float(row[0]) if row else 0.0


async def spend_by_scope(conn: Connection, since_ts: float) -> dict[str, float]:
    """Spend since ``since_ts``: in all (``"all"``), per client (``"key:NAME"``) and per
    task type (``"task:TYPE"``), the scopes budgets count in."""
    spend = {"all": await spend_since(conn, since_ts)}
    for column, prefix in (("client", "key:"), ("task", "task:")):
        rows = await conn.fetchall(
            f"SELECT {column}, COALESCE(SUM(cost_usd), 0) FROM request_log"
            f" WHERE ts >= ? AND {column} IS NOT NULL GROUP BY {column}",
            (since_ts,),
        )
        spend |= {f"{prefix}{name}": float(usd) for name, usd in rows if usd}
    return spend


async def count_rows(conn: Connection) -> int:
    """Number of rows in ``request_log``."""
    row = await conn.fetchone("SELECT COUNT(*) FROM request_log")
    return int(row[0]) if row else 0


async def recent_rows(conn: Connection, limit: int) -> list[RequestRow]:
    """The ``limit`` newest rows, newest first (by ``ts``, then insertion order)."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    rows = await conn.fetchall(
        f"SELECT {_COLUMN_LIST} FROM request_log ORDER BY ts DESC, id DESC LIMIT ?",
        (limit,),
    )
    return [_from_db(r) for r in rows]


async def recent_outcomes(
    conn: Connection, limit: int
) -> list[tuple[str, int, float | None, float | None]]:
    """The ``limit`` newest rows a model served or failed: (model, status, latency_ms,
    ttfb_ms), oldest first."""
    rows = await conn.fetchall(
        "SELECT chosen_model, status, latency_ms, ttfb_ms FROM request_log"
        " WHERE chosen_model IS NOT NULL ORDER BY ts DESC, id DESC LIMIT ?",
        (limit,),
    )
    return [(str(m), int(s), lat, ttfb) for m, s, lat, ttfb in reversed(rows)]


#: Filterable columns of :func:`filtered_recent_rows`, by query name.
FILTERS = {
    "client": "client",
    "model": "chosen_model",
    "status": "status",
    "harness": "harness",
    "instance": "instance",
}


async def filtered_recent_rows(
    conn: Connection, limit: int, scan: int, where: dict[str, str | int]
) -> list[RequestRow]:
    """The ``limit`` newest rows matching ``where`` (see :data:`FILTERS`), newest first.

    Only the ``scan`` newest rows are searched, so a filter that matches nothing costs a
    bounded read, not the whole table.
    """
    if limit < 0 or scan < 0:
        raise ValueError("limit and scan must be >= 0")
    clauses = " AND ".join(f"{FILTERS[name]} = ?" for name in where) or "TRUE"
    rows = await conn.fetchall(
        f"SELECT {_COLUMN_LIST} FROM"
        f" (SELECT * FROM request_log ORDER BY ts DESC, id DESC LIMIT ?) AS recent"
        f" WHERE {clauses} ORDER BY ts DESC, id DESC LIMIT ?",
        (scan, *where.values(), limit),
    )
    return [_from_db(r) for r in rows]
