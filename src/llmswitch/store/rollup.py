"""Hourly and daily rollups of ``request_log``: what stats read, fast after a year.

Every request adds to one ``request_rollup`` row per dimension (``all``, ``model``,
``client``...) for its UTC hour and one for its UTC day: counts, tokens, cost, and a
latency histogram in fixed buckets, which survives summing where a percentile would
not. A window reads day rows for its whole days and hour rows for the edges. Raw rows
may then be pruned (``store.retain_days``) without losing what stats answer.

The ledger rolls up in the transaction that inserts the rows (``rolled_up_id`` says how
far), so a crash never counts a row twice or misses one; an old database is rolled up
the first time a new llmswitch flushes into it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from llmswitch.store.engine import Connection, Row, Transaction

#: Upper bounds (ms) of the latency buckets: 4 ms growing by half each step, to ~3.8 min;
#: the last bucket is open. A percentile is interpolated inside its bucket, so it is
#: good to about a fifth of its value.
BUCKETS = 28
BUCKET_BOUNDS_MS: tuple[float, ...] = tuple(4.0 * 1.5**i for i in range(BUCKETS - 1))

#: Stats dimensions and the ``request_log`` column each one reads.
DIMENSIONS: dict[str, str] = {
    "model": "chosen_model",
    "backend": "backend",
    "client": "client",
    "task": "task",
    "profile": "profile",
    "tier": "tier",
    "harness": "harness",
    "status": "status",
    "instance": "instance",
}
#: The dimension every request belongs to once: totals, and the per-hour/day series.
ALL = "all"

_SUMS = ("requests", "errors", "tokens_in", "tokens_out", "cost_usd")
_LAT = tuple(f"lat_{i}" for i in range(BUCKETS))
_TTFB = tuple(f"ttfb_{i}" for i in range(BUCKETS))
_VALUES = (*_SUMS, *_LAT, *_TTFB)
_SOURCE = ("id", "ts", "status", "tokens_in", "tokens_out", "cost_usd", "latency_ms", "ttfb_ms")
#: Rows read per step when rolling up a large backlog (an old database).
_CHUNK = 20_000


def bucket_of(ms: float) -> int:
    """The histogram bucket holding a latency of ``ms`` milliseconds."""
    if not ms > BUCKET_BOUNDS_MS[0]:  # also NaN
        return 0
    i = math.ceil(math.log(ms / BUCKET_BOUNDS_MS[0], 1.5))
    return min(i, BUCKETS - 1)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a bucket histogram in ms; None when it is empty.

    Interpolated geometrically inside the bucket; the open last bucket answers its lower
    bound, so a very long tail reads as "at least".
    """
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i == BUCKETS - 1:
                return BUCKET_BOUNDS_MS[-1]
            low = BUCKET_BOUNDS_MS[i - 1] if i else 0.0
            high = BUCKET_BOUNDS_MS[i]
            frac = (rank - seen) / n
            return low + (high - low) * frac if i == 0 else low * (high / low) ** frac
        seen += n
    return BUCKET_BOUNDS_MS[-1]


def is_error(status: int) -> bool:
    """What stats count as an error: any answer but a success (client departures too)."""
    return not 200 <= status < 300


@dataclass(slots=True)
class Totals:
    """Sums for one (dimension, key, hour), or for one group of a stats answer."""

    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    lat: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    ttfb: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def add(self, one: Request) -> None:
        """Count one request (:func:`request_of`)."""
        error, tokens_in, tokens_out, cost, lat, ttfb = one
        self.requests += 1
        self.errors += error
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.cost_usd += cost
        if lat is not None:
            self.lat[lat] += 1
        if ttfb is not None:
            self.ttfb[ttfb] += 1

    def values(self) -> tuple[float, ...]:
        sums = (self.requests, self.errors, self.tokens_in, self.tokens_out, self.cost_usd)
        return (*sums, *self.lat, *self.ttfb)

    @classmethod
    def of(cls, values: Sequence[float]) -> Totals:
        """From the ``_VALUES`` columns in order (as summed by a query)."""
        n = len(_SUMS)
        return cls(
            int(values[0] or 0),
            int(values[1] or 0),
            int(values[2] or 0),
            int(values[3] or 0),
            float(values[4] or 0.0),
            [int(v or 0) for v in values[n : n + BUCKETS]],
            [int(v or 0) for v in values[n + BUCKETS :]],
        )


HOUR = 3600
DAY = 86400
SPANS = (HOUR, DAY)

#: A rollup row's identity: (dimension, span, start, key).
Slot = tuple[str, int, int, str]
#: One request as the rollups count it: error, tokens in and out, cost, latency buckets.
Request = tuple[int, int, int, float, int | None, int | None]


def request_of(row: Row) -> Request:
    """A ``request_log`` row given as the ``_SOURCE`` columns, read once for every slot
    it adds to (a row counts in about twenty)."""
    _, _, status, tokens_in, tokens_out, cost, latency_ms, ttfb_ms = row[: len(_SOURCE)]
    return (
        int(is_error(int(status))),
        int(tokens_in or 0),
        int(tokens_out or 0),
        float(cost or 0.0),
        None if latency_ms is None else bucket_of(float(latency_ms)),
        None if ttfb_ms is None else bucket_of(float(ttfb_ms)),
    )


def accumulate(rows: Iterable[Row]) -> dict[Slot, Totals]:
    """Totals per slot of rows given as ``_SOURCE`` + dimension columns."""
    out: dict[Slot, Totals] = {}
    dims = tuple(DIMENSIONS)
    base = len(_SOURCE)
    for row in rows:
        ts = int(float(row[1]))
        one = request_of(row)
        keys = [(ALL, "")]
        keys += [(d, "" if v is None else str(v)) for d, v in zip(dims, row[base:], strict=True)]
        for span in SPANS:
            start = ts - ts % span
            for dim, key in keys:
                totals = out.get((dim, span, start, key))
                if totals is None:
                    totals = out[(dim, span, start, key)] = Totals()
                totals.add(one)
    return out


_SELECT_NEW = (
    f"SELECT {', '.join(_SOURCE + tuple(DIMENSIONS.values()))} FROM request_log"
    " WHERE id > ? ORDER BY id LIMIT ?"
)
#: Adds one (*Slot, *Totals.values()) to its rollup row (also used by ops/bench).
UPSERT = (
    f"INSERT INTO request_rollup (dim, span, start, key, {', '.join(_VALUES)})"
    f" VALUES (?, ?, ?, ?, {', '.join('?' * len(_VALUES))})"
    " ON CONFLICT (dim, span, start, key) DO UPDATE SET "
    + ", ".join(f"{c} = request_rollup.{c} + excluded.{c}" for c in _VALUES)
)


async def roll_up(tx: Transaction) -> int:
    """Add every row not rolled up yet to the rollups; returns how many were added."""
    state = await tx.fetchone("SELECT rolled_up_id FROM request_rollup_state WHERE id = 1")
    last = int(state[0]) if state else 0
    added = 0
    while True:
        rows = await tx.fetchall(_SELECT_NEW, (last, _CHUNK))
        if not rows:
            break
        totals = accumulate(rows)
        await tx.executemany(UPSERT, [(*slot, *t.values()) for slot, t in totals.items()])
        last = int(rows[-1][0])
        added += len(rows)
    if added:
        await tx.execute("UPDATE request_rollup_state SET rolled_up_id = ? WHERE id = 1", (last,))
    return added


async def prune(conn: Connection, before_ts: float) -> int:
    """Delete raw rows older than ``before_ts`` that are already rolled up."""
    async with conn.transaction() as tx:
        return await tx.execute(
            "DELETE FROM request_log WHERE ts < ? AND id <= "
            "(SELECT rolled_up_id FROM request_rollup_state WHERE id = 1)",
            (before_ts,),
        )


@dataclass(frozen=True, slots=True)
class Group:
    """One group of a stats answer: its key (a value, or an hour/day start) and totals."""

    key: str
    totals: Totals


async def grouped(conn: Connection, group_by: str, since: int, until: int) -> list[Group]:
    """Totals per key of ``group_by`` over [since, until), both whole UTC hours.

    ``group_by`` is a dimension, or ``hour``/``day`` for a time series of all requests.
    Whole days come from day rows and the hours at either edge from hour rows.
    """
    sums = ", ".join(f"SUM({c})" for c in _VALUES)
    first_day = -(-since // DAY) * DAY
    last_day = max(until - until % DAY, first_day)
    if group_by == "hour" or first_day >= last_day:
        where = "span = 3600 AND start >= ? AND start < ?"
        params: tuple[int, ...] = (since, until)
    else:
        where = (
            "((span = 86400 AND start >= ? AND start < ?)"
            " OR (span = 3600 AND ((start >= ? AND start < ?) OR (start >= ? AND start < ?))))"
        )
        params = (first_day, last_day, since, first_day, last_day, until)
    if group_by == "hour":  # one row per hour already: nothing to add up
        sql = f"SELECT start, {', '.join(_VALUES)} FROM request_rollup WHERE dim = ? AND {where}"
        rows = await conn.fetchall(sql + " ORDER BY start", (ALL, *params))
        return [Group(str(r[0]), Totals.of(r[1:])) for r in rows]
    if group_by == "day":
        select, dim, order = f"(start / {DAY}) * {DAY} AS k", ALL, " ORDER BY k"
    elif group_by in DIMENSIONS or group_by == ALL:
        select, dim, order = "key AS k", group_by, ""
    else:
        raise ValueError(f"unknown group_by {group_by!r}")
    sql = f"SELECT {select}, {sums} FROM request_rollup WHERE dim = ? AND {where} GROUP BY k"
    rows = await conn.fetchall(sql + order, (dim, *params))
    return [Group(str(r[0]), Totals.of(r[1:])) for r in rows]
