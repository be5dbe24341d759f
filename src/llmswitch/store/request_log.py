"""The ``request_log`` table: one row per request, written in batches by the budget ledger.

Plain functions over a :class:`~llmswitch.store.db.Connection`; the SQL of each lives in
that function. ``tests/store`` checks that :class:`RequestRow` and the table's columns
stay in step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from llmswitch.store.db import Connection, Row

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


def _from_db(r: Row) -> RequestRow:
    return RequestRow(
        ts=r[0],
        request_id=r[1],
        client=r[2],
        requested_model=r[3],
        chosen_model=r[4],
        backend=r[5],
        tier=r[6],
        classification=r[7],
        reason=r[8],
        status=r[9],
        stream=bool(r[10]),
        latency_ms=r[11],
        ttfb_ms=r[12],
        tokens_in=r[13],
        tokens_out=r[14],
        usage_estimated=bool(r[15]),
        cost_usd=r[16],
        error=r[17],
    )


async def insert_rows(conn: Connection, rows: Sequence[RequestRow]) -> None:
    """Write a batch in one transaction; rows whose ``request_id`` is stored are skipped.

    ``INSERT OR IGNORE`` makes writing the same batch again (after a crash or a
    cancellation during the commit) harmless. It also skips a row that breaks another
    constraint (a NaN cost is stored as NULL in a NOT NULL column) rather than failing
    the batch, which the ledger would retry forever; such rows are logged.
    """
    if not rows:
        return
    params = [
        (
            r.ts,
            r.request_id,
            r.client,
            r.requested_model,
            r.chosen_model,
            r.backend,
            r.tier,
            r.classification,
            r.reason,
            r.status,
            int(r.stream),
            r.latency_ms,
            r.ttfb_ms,
            r.tokens_in,
            r.tokens_out,
            int(r.usage_estimated),
            r.cost_usd,
            r.error,
        )
        for r in rows
    ]
    async with conn.transaction() as tx:
        inserted = await tx.executemany(
            """
            INSERT OR IGNORE INTO request_log (
                ts, request_id, client, requested_model, chosen_model, backend, tier,
                classification, reason, status, stream, latency_ms, ttfb_ms,
                tokens_in, tokens_out, usage_estimated, cost_usd, error
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            params,
        )
        if inserted < len(rows):
            # Fewer rows than given: duplicates (expected on a re-write) or rejected rows.
            # A rejected row is absent from the table; one JSON parameter avoids SQLite's
            # limit on the number of parameters.
            ids = [r.request_id for r in rows]
            present = await tx.fetchall(
                "SELECT request_id FROM request_log"
                " WHERE request_id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
            rejected = sorted(set(ids) - {str(p[0]) for p in present})
            if rejected:
                log.warning(
                    "request_log: %d row(s) rejected by constraints, not stored: %s",
                    len(rejected),
                    ", ".join(rejected[:20]),
                )


async def spend_since(conn: Connection, since_ts: float) -> float:
    """Total ``cost_usd`` of rows with ``ts >= since_ts`` (0.0 when none)."""
    row = await conn.fetchone(
        "SELECT TOTAL(cost_usd) FROM request_log WHERE ts >= ?",
        (since_ts,),
    )
    return float(row[0]) if row else 0.0


async def count_rows(conn: Connection) -> int:
    """Number of rows in ``request_log``."""
    row = await conn.fetchone("SELECT COUNT(*) FROM request_log")
    return int(row[0]) if row else 0


async def recent_rows(conn: Connection, limit: int) -> list[RequestRow]:
    """The ``limit`` newest rows, newest first (by ``ts``, then insertion order)."""
    if limit < 0:
        raise ValueError("limit must be >= 0")
    rows = await conn.fetchall(
        """
        SELECT ts, request_id, client, requested_model, chosen_model, backend, tier,
               classification, reason, status, stream, latency_ms, ttfb_ms,
               tokens_in, tokens_out, usage_estimated, cost_usd, error
        FROM request_log
        ORDER BY ts DESC, id DESC
        LIMIT ?
        """,
        (limit,),
    )
    return [_from_db(r) for r in rows]
