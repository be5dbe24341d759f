"""Open the configured store: PostgreSQL at ``store.url`` when set, else SQLite at
``store.path``. Callers get a :class:`~llmswitch.store.engine.Connection` either way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from llmswitch.store.db import connect, open_db, open_existing
from llmswitch.store.engine import Connection
from llmswitch.store.pg import connect_pg, open_pg

if TYPE_CHECKING:
    from llmswitch.config import StoreConfig


async def connect_store(store: StoreConfig) -> Connection:
    """A connection to the configured store, without migrating it (readers: stats, /ui)."""
    if store.url is not None:
        return await connect_pg(store.url, busy_timeout_s=store.busy_timeout_s)
    return await connect(store.path, busy_timeout_s=store.busy_timeout_s)


@asynccontextmanager
async def open_store(store: StoreConfig) -> AsyncIterator[Connection]:
    """The configured store, migrated, closed on exit: PostgreSQL at ``store.url`` when
    set, else SQLite at ``store.path``."""
    if store.url is not None:
        async with open_pg(store.url, busy_timeout_s=store.busy_timeout_s) as pg:
            yield pg
        return
    async with open_db(store.path, busy_timeout_s=store.busy_timeout_s) as db:
        yield db


@asynccontextmanager
async def open_existing_store(store: StoreConfig) -> AsyncIterator[Connection | None]:
    """:func:`open_store` for readers that must not create a SQLite file (None when there
    is none yet); a PostgreSQL store is always there to read."""
    if store.url is not None:
        async with open_store(store) as pg:
            yield pg
        return
    async with open_existing(store.path, busy_timeout_s=store.busy_timeout_s) as db:
        yield db
