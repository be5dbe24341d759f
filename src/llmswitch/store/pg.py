"""PostgreSQL for trio: psycopg 3 in worker threads, shaped like the SQLite connection.

One psycopg connection (autocommit, so no transaction is ever left open implicitly) is
used by one worker thread at a time, and a lock holds it for a whole read or a whole
transaction, as :class:`~llmswitch.store.db.Connection` does for SQLite. A transaction
first takes a database-wide advisory lock, the counterpart of SQLite's ``BEGIN
IMMEDIATE``: the fleet's writers commit one after another, so ids grow in commit order
and the rollups' high-water mark never skips a row another instance committed late.

The server may go away at any time (an outage, a restart). A lost connection is
:class:`StoreUnavailable`, like an OS shortage for SQLite: the ledger keeps its journal
and tries again, and the next use opens a new connection (never inside a transaction,
which fails as a whole instead). Errors are mapped once, at this edge, with the URL's
password scrubbed from their text; ``path`` is the URL without its credentials.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from importlib.resources.abc import Traversable
from typing import TypeVar

import anyio
import anyio.to_thread
import psycopg
from psycopg import pq

from llmswitch.store.engine import (
    POSTGRESQL,
    Params,
    Row,
    SharedConnection,
    SQLValue,
    TransactionHandle,
)
from llmswitch.store.errors import (
    LOCK_NOT_AVAILABLE,
    StatementError,
    StoreBusyError,
    StoreUnavailable,
    is_transient_sqlstate,
)
from llmswitch.store.migrate import DEFAULT_PACKAGE, migrate
from llmswitch.urls import redact_url, scrub_password

T = TypeVar("T")

#: libpq's connect_timeout (whole seconds, at least 2): how long a start or a reconnect
#: waits for an unreachable server; the worker thread cannot be cancelled sooner.
CONNECT_TIMEOUT_S = 3
#: libpq's tcp_user_timeout (ms) and keepalives: a server that stops answering without
#: closing the connection (a host down, a network cut) fails a statement within ~15 s
#: instead of TCP's ~15 min; the worker thread cannot be cancelled, and the ledger's lock
#: (and a shutdown) would wait for it.
DEAD_PEER_MS = 15_000
#: How long a shielded COMMIT or ROLLBACK may wait for a server that does not answer
#: before the connection is left behind (the commit's outcome is then unknown, as when
#: the connection is lost: callers that retry write idempotently).
SHIELDED_S = 30.0
#: Key of the advisory lock every write transaction holds (any constant; per database).
WRITER_LOCK = 0x6C6C6D73  # "llms"


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled); our SQL has no
    ``?`` or ``%`` inside string literals."""
    return sql.replace("%", "%%").replace("?", "%s")


def _adapt(value: SQLValue) -> SQLValue:
    """A value as PostgreSQL takes it where SQLite took it: booleans in INTEGER columns,
    and text without NUL (PostgreSQL refuses it; a client may send one in a name)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def _args(params: Params) -> tuple[SQLValue, ...] | None:
    return tuple(_adapt(v) for v in params) if params else None


class PgTransaction(TransactionHandle[psycopg.Connection]):
    """Statements inside one transaction on one server connection; only valid in its block."""

    def __init__(self, owner: PgConnection, raw: psycopg.Connection) -> None:
        super().__init__(raw)
        self._owner = owner

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        raw = self._live()
        return await self._owner._run(lambda: _execute(raw, sql, params).rowcount)

    async def executemany(self, sql: str, seq_of_params: Sequence[Params]) -> int:
        """Run one statement per parameter tuple (pipelined); returns the rows changed."""
        raw = self._live()

        def many() -> int:
            with raw.cursor() as cur:
                cur.executemany(_placeholders(sql), [_args(p) or () for p in seq_of_params])
                return cur.rowcount

        return await self._owner._run(many)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read inside the transaction (sees its own uncommitted writes)."""
        raw = self._live()
        return await self._owner._run(lambda: _execute(raw, sql, params).fetchall())


def _execute(raw: psycopg.Connection, sql: str, params: Params) -> psycopg.Cursor[Row]:
    args = _args(params)
    return raw.execute(_placeholders(sql) if args else sql, args)


class PgConnection(SharedConnection):
    """A PostgreSQL connection shared by tasks: each read or transaction runs alone.

    Made by :func:`open_pg` or :func:`connect_pg`; reconnects on the next use after the
    server went away.
    """

    dialect = POSTGRESQL

    def __init__(self, url: str, busy_timeout_s: float) -> None:
        super().__init__(redact_url(url))
        self._url = url
        self.busy_timeout_s = busy_timeout_s
        self._raw: psycopg.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)
        #: Moves on when a cancelled call leaves its connection behind (:meth:`_run`).
        self._generation = 0

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        """psycopg's errors as the store's, without the password (see the module doc)."""
        try:
            yield
        except psycopg.Error as exc:
            text = scrub_password(str(exc).strip().splitlines()[0] if str(exc) else "", self._url)
            message = f"{self.path}: {type(exc).__name__}: {text}"
            if exc.sqlstate == LOCK_NOT_AVAILABLE:
                raise StoreBusyError(
                    f"{message} (the writer lock stayed taken for {self.busy_timeout_s:g} s)"
                ) from None
            lost = isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
            if is_transient_sqlstate(exc.sqlstate, connection_lost=lost):
                raise StoreUnavailable(message) from None
            raise StatementError(message) from None

    async def _run(self, fn: Callable[[], T]) -> T:
        """``fn`` in this connection's worker thread, its errors mapped.

        A cancelled call returns at once and leaves its thread behind, maybe waiting on a
        server that does not answer (the thread cannot be interrupted): the connection it
        uses is forgotten, with the limiter it holds, and the next call opens a new one.
        The thread closes it when its call ends, so a transaction it held (and the writer
        lock) ends then rather than whenever the connection is collected.
        """
        limiter, generation, raw = self._limiter, self._generation, self._raw

        def mapped() -> T:
            try:
                with self._mapped():
                    return fn()
            finally:
                if generation != self._generation and raw is not None:
                    raw.close()

        try:
            return await anyio.to_thread.run_sync(mapped, limiter=limiter, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            if generation == self._generation:
                self._generation += 1
                self._raw = None
                self._limiter = anyio.CapacityLimiter(1)
            raise

    def _connection(self) -> psycopg.Connection:
        """The open connection, or a new one (in the worker thread)."""
        if self._raw is not None and not self._raw.closed:
            return self._raw
        generation = self._generation
        self._raw = None
        raw = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="llmswitch",
            tcp_user_timeout=DEAD_PEER_MS,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=2,
            keepalives_count=3,
        )
        # How long a transaction waits for the writer lock (SQLite's busy timeout).
        raw.execute(
            "SELECT set_config('lock_timeout', %s, false)",
            (f"{max(1, round(self.busy_timeout_s * 1000))}ms",),
        )
        if generation == self._generation:  # else its call was cancelled meanwhile
            self._raw = raw
        return raw

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a read and return every row."""
        async with self._lock:
            self._check_open()
            return await self._run(lambda: _execute(self._connection(), sql, params).fetchall())

    def _begin(self) -> psycopg.Connection:
        raw = self._connection()
        raw.execute("BEGIN")
        try:
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
        except BaseException:
            _rollback(raw)
            raise
        return raw

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgTransaction]:
        """A write transaction holding the writer lock: committed if the block ends
        normally, else rolled back. The commit is shielded; a connection lost during it
        leaves the outcome unknown, so callers that retry write idempotently."""
        async with self._lock:
            self._check_open()
            raw = await self._run(self._begin)
            generation = self._generation
            tx = PgTransaction(self, raw)
            try:
                yield tx
                tx._end()
                with anyio.CancelScope(shield=True) as shield:
                    shield.deadline = anyio.current_time() + SHIELDED_S
                    await self._run(lambda: raw.execute("COMMIT"))
                if shield.cancelled_caught:
                    raise StoreUnavailable(
                        f"{self.path}: no answer to COMMIT within {SHIELDED_S:g} s;"
                        " the connection is left behind and the outcome unknown"
                    )
            except BaseException:
                tx._end()
                if generation == self._generation:  # not left behind by a cancelled call
                    with anyio.CancelScope(shield=True) as shield:
                        shield.deadline = anyio.current_time() + SHIELDED_S
                        await self._run(lambda: _rollback(raw))
                raise

    async def _close_driver(self) -> None:
        if self._raw is not None:
            await anyio.to_thread.run_sync(self._raw.close, limiter=self._limiter)


def _rollback(raw: psycopg.Connection) -> None:
    """End a failed transaction; nothing to do on a connection that is gone."""
    if raw.closed or raw.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    try:
        raw.execute("ROLLBACK")
    except psycopg.Error:
        raw.close()  # unusable: the next use opens a new one


async def connect_pg(url: str, *, busy_timeout_s: float) -> PgConnection:
    """A connection, opened now so a wrong URL or a server that is down shows at once."""
    conn = PgConnection(url, busy_timeout_s)
    await conn._run(conn._connection)
    return conn


@asynccontextmanager
async def open_pg(
    url: str, *, busy_timeout_s: float, migrations: str | Traversable | None = None
) -> AsyncIterator[PgConnection]:
    """Connect, migrate (see :mod:`llmswitch.store.migrate`), close on exit."""
    conn = await connect_pg(url, busy_timeout_s=busy_timeout_s)
    try:
        await migrate(conn, DEFAULT_PACKAGE if migrations is None else migrations)
        yield conn
    finally:
        await conn.close()
