"""Connection behaviour: pragmas, waiting for another process's lock, sharing, cancelling."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from llmswitch.store import (
    RequestRow,
    StoreBusyError,
    StoreError,
    StoreUnavailable,
    count_rows,
    insert_rows,
    open_db,
)
from llmswitch.store.db import open_existing
from tests.store.shortage import Shortage

# Another process that takes the write lock, says so, holds it, then commits.
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
conn.close()
"""


@asynccontextmanager
async def write_lock_held_elsewhere(path: Path, seconds: float) -> AsyncIterator[trio.Process]:
    """Yield once a separate process holds the database's write lock for ``seconds``."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        buf = b""
        with trio.fail_after(15):
            while b"\n" not in buf:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    raise RuntimeError("lock holder exited before taking the lock")
                buf += chunk
        assert buf.strip() == b"locked"
        yield proc
    finally:
        with trio.CancelScope(shield=True):
            with trio.move_on_after(seconds + 10):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            if proc.stdout is not None:
                await proc.stdout.aclose()


def row(i: int) -> RequestRow:
    return RequestRow(ts=float(i), request_id=f"r{i}", status=200, stream=False, cost_usd=0.5)


async def test_file_db_pragmas(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db") as db:
        assert await db.fetchone("PRAGMA journal_mode") == ("wal",)
        assert await db.fetchone("PRAGMA synchronous") == (1,)  # NORMAL
        assert await db.fetchone("PRAGMA foreign_keys") == (1,)
    assert (tmp_path / "p.db").exists()


async def test_memory_db_works() -> None:
    async with open_db(":memory:") as db:
        await insert_rows(db, [row(1)])
        assert await count_rows(db) == 1
        assert await db.fetchone("PRAGMA foreign_keys") == (1,)


async def test_write_waits_for_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    with trio.fail_after(20):
        async with open_db(path, busy_timeout_s=5.0) as db:
            async with write_lock_held_elsewhere(path, 1.5) as proc:
                started = time.monotonic()
                await insert_rows(db, [row(1), row(2)])
                waited = time.monotonic() - started
            assert proc.returncode == 0
            assert 0.8 < waited < 5.0, waited  # waited for the holder, then wrote
            assert await count_rows(db) == 2


async def test_write_fails_clearly_after_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with trio.fail_after(20):
        async with open_db(path, busy_timeout_s=0.3) as db:
            async with write_lock_held_elsewhere(path, 1.5):
                started = time.monotonic()
                with pytest.raises(StoreBusyError, match=r"locked after 0\.3 s"):
                    await insert_rows(db, [row(1)])
                assert time.monotonic() - started < 1.2
            # the connection is fine afterwards: no transaction was left open
            await insert_rows(db, [row(1)])
            assert await count_rows(db) == 1


async def test_cancelling_a_waiting_write_is_prompt(tmp_path: Path) -> None:
    path = tmp_path / "cancel.db"
    with trio.fail_after(20):
        async with open_db(path, busy_timeout_s=10.0) as db:
            async with write_lock_held_elsewhere(path, 2.0):
                started = time.monotonic()
                with trio.move_on_after(0.3) as scope:
                    await insert_rows(db, [row(1)])
                assert scope.cancelled_caught
                assert time.monotonic() - started < 1.0  # not the 2 s the lock is held
            await insert_rows(db, [row(2)])
            assert await count_rows(db) == 1


async def test_tasks_sharing_a_connection_keep_their_transactions_apart() -> None:
    class Boom(Exception):
        pass

    async with open_db(":memory:") as db:

        async def good(i: int) -> None:
            await insert_rows(db, [row(i * 10 + k) for k in range(5)])

        async def bad() -> None:
            with pytest.raises(Boom):
                async with db.transaction() as tx:
                    await tx.execute(
                        "INSERT INTO request_log (ts, request_id, status, stream)"
                        " VALUES (0, 'doomed', 500, 0)"
                    )
                    await trio.sleep(0.01)  # let the other tasks queue up meanwhile
                    raise Boom

        async with trio.open_nursery() as nursery:
            nursery.start_soon(bad)
            for i in range(20):
                nursery.start_soon(good, i)

        assert await count_rows(db) == 100
        assert await db.fetchone("SELECT 1 FROM request_log WHERE request_id = 'doomed'") is None


async def test_transaction_object_is_dead_after_its_block() -> None:
    async with open_db(":memory:") as db:
        async with db.transaction() as tx:
            pass
        with pytest.raises(StoreError, match="transaction already ended"):
            await tx.execute("SELECT 1")


async def test_closed_connection_refuses_work() -> None:
    async with open_db(":memory:") as db:
        pass
    with pytest.raises(StoreError, match="closed"):
        await count_rows(db)


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    with pytest.raises(StoreError, match="cannot open database"):
        async with open_db(tmp_path / "a_file" / "x.db"):
            pass


async def test_out_of_descriptors_is_unavailable_not_a_plain_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shortage = Shortage(tmp_path, monkeypatch)
    shortage.on = True
    with pytest.raises(StoreUnavailable, match="Too many open files"):
        async with open_db(tmp_path / "x.db"):
            pass
    shortage.on = False
    async with open_db(tmp_path / "x.db") as db:
        assert await count_rows(db) == 0


async def test_the_database_and_its_wal_are_private(tmp_path: Path) -> None:
    async with open_db(tmp_path / "p.db") as db:
        await insert_rows(db, [row(1)])
        for name in ("p.db", "p.db-wal", "p.db-shm"):
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name


async def test_an_older_world_readable_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    async with open_db(path):
        pass
    path.chmod(0o644)
    async with open_db(path):
        pass
    assert path.stat().st_mode & 0o777 == 0o600


async def test_open_existing_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "absent.db"
    async with open_existing(path) as db:
        assert db is None
    assert not path.parent.exists()
    async with open_db(path) as made:
        await made.fetchall("SELECT 1")
    async with open_existing(path) as db:
        assert db is not None


async def test_a_file_that_is_not_a_database_is_a_store_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"plain text, not SQLite " * 50)
    with pytest.raises(StoreError, match=r"notes\.db: not a usable SQLite database"):
        async with open_db(path):
            pass
