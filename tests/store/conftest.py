"""``store``: the store tests run once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from llmswitch.config import StoreConfig
from llmswitch.store import Connection, open_store
from llmswitch.store.engine import Params
from tests.pg import emptied, fresh_schema

#: Opens (and migrates) the test's database; each call is a new connection to it.
OpenStore = Callable[[], AbstractAsyncContextManager[Connection]]


@pytest.fixture(scope="session")
def pg_store_schema(pg_database: str) -> str:
    """One schema for the store tests on PostgreSQL, emptied before each (tests/pg.py)."""
    return fresh_schema(pg_database)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    if request.param == "sqlite":
        config = StoreConfig(path=str(tmp_path / "store.db"))
    else:
        config = StoreConfig(url=emptied(request.getfixturevalue("pg_store_schema")))
    return lambda: open_store(config)


async def write(db: Connection, sql: str, params: Params = ()) -> None:
    """One statement in its own transaction (a write a test makes behind the API's back)."""
    async with db.transaction() as tx:
        await tx.execute(sql, params)


async def columns(db: Connection, table: str) -> list[str]:
    """A table's columns in order, asked the engine's way."""
    if db.dialect.name == "sqlite":
        sql = "SELECT name FROM pragma_table_info(?) ORDER BY cid"
    else:
        sql = (
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position"
        )
    return [str(r[0]) for r in await db.fetchall(sql, (table,))]
