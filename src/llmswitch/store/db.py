"""One SQLite connection for trio, through sqlite-anyio, with transactions that are safe to share.

sqlite-anyio runs each call (execute, fetchall, commit...) in a worker thread and
serialises *calls* per connection, but not *transactions*: two tasks sharing one
connection would write into each other's transaction. :class:`SqliteConnection` adds a lock
that is held for a whole read or a whole transaction.

A shortage the OS recovers from (no file descriptor left, disk or memory full) raises
:class:`StoreUnavailable`, so callers can try again later instead of crashing. The
database file is created 0600 (SQLite gives its -wal and -shm files the same mode): it
holds every request's client, model and cost.

Waiting for a database locked by another process is done in short slices (SQLite's
own busy handler sleeps inside the worker thread and ``sqlite3_interrupt`` does not
wake it), so a cancelled write gives up within a slice instead of after the full busy
timeout.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.lowlevel
import sqlite_anyio

from llmswitch.store.engine import SQLITE, Params, Row, SharedConnection, TransactionHandle
from llmswitch.store.errors import StoreBusyError, StoreError, StoreUnavailable, is_transient
from llmswitch.store.migrate import DEFAULT_PACKAGE, migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
DEFAULT_BUSY_TIMEOUT_S = 5.0
# SQLite's busy handler sleeps in the worker thread and cannot be interrupted; waiting in
# slices this long bounds how late a cancellation is noticed.
BUSY_SLICE_S = 0.05


def _is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY (any extended code): another connection holds a lock we need."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF == 5


#: SQLite primary result codes for a shortage, not a fault: NOMEM, IOERR, FULL, CANTOPEN
#: (SQLite cannot open a file when the process is out of descriptors).
TRANSIENT_SQLITE_CODES = frozenset({7, 10, 13, 14})
#: Owner read and write only.
FILE_MODE = 0o600


@contextmanager
def _shortage_is_unavailable(path: str) -> Iterator[None]:
    """Map an OS or SQLite shortage to :class:`StoreUnavailable`, once, at this edge."""
    try:
        yield
    except OSError as exc:
        if not is_transient(exc):
            raise
        raise StoreUnavailable(f"{path}: {exc}") from exc
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code is None or code & 0xFF not in TRANSIENT_SQLITE_CODES:
            raise
        raise StoreUnavailable(f"{path}: {exc}") from exc


@contextmanager
def _unusable_is_store_error(path: str) -> Iterator[None]:
    """A file SQLite cannot use as a database (not one, corrupt) is a :class:`StoreError`
    naming the file: the caller's one line, never a traceback."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if _is_busy(exc):
            raise
        raise StoreError(f"{path}: not a usable SQLite database ({exc})") from exc


class SqliteTransaction(TransactionHandle[sqlite_anyio.Connection]):
    """Statements inside one ``BEGIN IMMEDIATE`` transaction; only valid inside its block."""

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        cur = await self._live().execute(sql, params)
        return cur.rowcount

    async def executemany(self, sql: str, seq_of_params: Sequence[Params]) -> int:
        """Run one statement per parameter tuple; returns the total rows changed."""
        cur = await self._live().cursor()
        await cur.executemany(sql, seq_of_params)
        return cur.rowcount

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Read inside the transaction (sees its own uncommitted writes)."""
        cur = await self._live().execute(sql, params)
        return await cur.fetchall()


class SqliteConnection(SharedConnection):
    """A SQLite connection shared by tasks: each read or transaction runs alone.

    Made by :func:`open_db`. Statements run in autocommit mode unless inside
    :meth:`transaction`, so no implicit transaction is ever left open.
    """

    dialect = SQLITE

    def __init__(
        self,
        conn: sqlite_anyio.Connection,
        raw: sqlite3.Connection,
        path: str,
        busy_timeout_s: float,
    ) -> None:
        super().__init__(path)
        self._conn = conn
        self._raw = raw
        self.busy_timeout_s = busy_timeout_s

    async def _retry_busy(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """Run ``op`` again while the database is locked elsewhere, up to the busy timeout.

        Real time (not trio's clock): the wait is for another process, and a MockClock
        would jump while the worker thread blocks. Only call with idempotent ``op``s.
        """
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                return await op()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"{self.path}: database still locked after {self.busy_timeout_s:g} s"
                        f" ({what})"
                    ) from exc
            await anyio.lowlevel.checkpoint()

    async def _fetchall(self, sql: str, params: Params) -> list[Row]:
        cur = await self._conn.execute(sql, params)
        return await cur.fetchall()

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a read and return every row (a partly read cursor would pin a WAL snapshot)."""
        async with self._lock:
            self._check_open()
            with _shortage_is_unavailable(self.path):
                return await self._retry_busy("read", lambda: self._fetchall(sql, params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        """A write transaction: committed if the block ends normally, else rolled back.

        ``BEGIN IMMEDIATE`` takes the write lock up front: in WAL mode a deferred
        transaction that upgrades to a writer fails with SQLITE_BUSY without waiting.
        The commit is shielded, so once the block has finished, a cancellation arriving
        during the commit cannot leave it half-decided; callers that retry after an error
        should still write idempotently.
        """
        async with self._lock:
            self._check_open()
            tx = SqliteTransaction(self._conn)
            with _shortage_is_unavailable(self.path):
                try:
                    await self._retry_busy("begin", lambda: self._conn.execute("BEGIN IMMEDIATE"))
                    yield tx
                    tx._end()
                    with anyio.CancelScope(shield=True):
                        await self._conn.commit()
                except BaseException:
                    tx._end()
                    # Safe to read here: no worker thread is using the connection (we hold
                    # the lock and sqlite-anyio waits for its thread even when cancelled).
                    if self._raw.in_transaction:
                        await self._conn.rollback()  # shielded by sqlite-anyio
                    raise

    async def _close_driver(self) -> None:
        await self._conn.close()


def _create_private(path: str) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644), and take
    group and other access away from files an older version created.

    Never open and close an existing database file here: closing any descriptor of a
    file drops every POSIX lock this process holds on it, those of SQLite connections
    already open included. A file this call creates (O_EXCL) has no connection yet.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        for name in (path, f"{path}-wal", f"{path}-shm"):
            with suppress(FileNotFoundError):
                if os.stat(name).st_mode & 0o077:
                    os.chmod(name, FILE_MODE)


def _connect_raw(path: str) -> sqlite3.Connection:
    """Blocking open, run in a worker thread; autocommit so transactions are explicit."""
    try:
        with _shortage_is_unavailable(path):
            if path != MEMORY:
                _create_private(path)
            return sqlite3.connect(
                path,
                timeout=BUSY_SLICE_S,
                isolation_level=None,
                check_same_thread=False,  # sqlite-anyio hops threads; its limiter serialises
            )
    except StoreUnavailable:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot open database: {exc}") from exc


async def connect(
    path: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
) -> SqliteConnection:
    """Open and configure a connection without running migrations; prefer :func:`open_db`."""
    if busy_timeout_s < 0:
        raise ValueError("busy_timeout_s must be >= 0")
    spath = os.fspath(path)
    raw = await anyio.to_thread.run_sync(_connect_raw, spath)
    # The class is what sqlite_anyio.connect() builds too; building the sqlite3 connection
    # ourselves is the only way to pass isolation_level and the busy slice.
    conn = SqliteConnection(sqlite_anyio.Connection(raw), raw, spath, busy_timeout_s)
    try:
        with _unusable_is_store_error(spath):
            await _configure(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


async def _configure(conn: SqliteConnection) -> None:
    """Per-connection PRAGMAs (busy slice set by connect); WAL persists in the file."""
    mode = await conn.fetchone("PRAGMA journal_mode = WAL")
    if conn.path != MEMORY and (mode is None or str(mode[0]).lower() != "wal"):
        log.warning("%s: journal_mode is %s, not wal; writers will block readers", conn.path, mode)
    await conn.fetchall("PRAGMA synchronous = NORMAL")
    await conn.fetchall("PRAGMA foreign_keys = ON")


@asynccontextmanager
async def open_db(
    path: str | os.PathLike[str],
    *,
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
    migrations: str | Traversable | None = None,
) -> AsyncIterator[SqliteConnection]:
    """Open the database (WAL, synchronous=NORMAL, foreign keys), migrate it, close on exit.

    ``path`` may be ``":memory:"``; missing parent directories are created.
    ``busy_timeout_s`` is how long a read or the start of a write waits for a lock held by
    another process before :class:`StoreBusyError`. ``migrations`` is a package name or a
    directory; the default is the ``llmswitch.migrations`` package.
    """
    conn = await connect(path, busy_timeout_s=busy_timeout_s)
    try:
        with _unusable_is_store_error(conn.path):
            await migrate(conn, DEFAULT_PACKAGE if migrations is None else migrations)
        yield conn
    finally:
        await conn.close()


@asynccontextmanager
async def open_existing(
    path: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
) -> AsyncIterator[SqliteConnection | None]:
    """:func:`open_db` for readers that must not create a database: None when the file
    is not there yet (nothing was ever stored)."""
    if os.fspath(path) != MEMORY and not await anyio.Path(path).exists():
        yield None
        return
    async with open_db(path, busy_timeout_s=busy_timeout_s) as db:
        yield db
