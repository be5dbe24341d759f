"""The catalogue overlay (migration 080): prices and limits synced from a price list.

``llmswitch prices sync`` writes it through :func:`save_overlay`; loading a config reads
it with :func:`read_overlay`, synchronously and read-only, so a config load never creates
a database file (nor migrates a PostgreSQL store). SQLite shares one lock state per file
between the connections of a process, so this short-lived reader leaves the gateway's
own connection's locks alone.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import psycopg
from pydantic import ValidationError

from llmswitch.providers.catalogue import Entry
from llmswitch.store.db import MEMORY
from llmswitch.store.engine import Connection
from llmswitch.store.pg import CONNECT_TIMEOUT_S
from llmswitch.urls import redact_url, scrub_password

log = logging.getLogger(__name__)


_SELECT = "SELECT name, entry FROM catalogue_overlay"


def _entries(rows: list[tuple[str, str]]) -> dict[str, Entry]:
    """Rows that still parse; one that does not is logged and left out."""
    entries = {}
    for name, text in rows:
        try:
            entries[name] = Entry.model_validate_json(text)
        except ValidationError as exc:
            log.warning("catalogue overlay entry %r ignored: %s", name, exc.errors()[0]["msg"])
    return entries


def read_overlay(path: str, url: str | None = None) -> dict[str, Entry]:
    """The overlay stored in PostgreSQL at ``url`` when given, else at ``path``; empty
    when there is no database or no overlay yet, or (logged) the server is unreachable."""
    if url is not None:
        return _read_pg_overlay(url)
    if path == MEMORY or not Path(path).is_file():
        return {}
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute(_SELECT).fetchall()
    except sqlite3.Error as exc:
        if "no such table" not in str(exc):
            log.warning("catalogue overlay in %s not read: %s", path, exc)
        return {}
    return _entries(rows)


def _read_pg_overlay(url: str) -> dict[str, Entry]:
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as db:
            rows = db.execute(_SELECT).fetchall()
    except psycopg.errors.UndefinedTable:
        return {}
    except psycopg.Error as exc:
        log.warning(
            "catalogue overlay in %s not read: %s", redact_url(url), scrub_password(str(exc), url)
        )
        return {}
    return _entries(rows)


async def load_overlay(db: Connection) -> dict[str, Entry]:
    return _entries(await db.fetchall(_SELECT))


async def save_overlay(db: Connection, entries: Mapping[str, Entry], source: str) -> None:
    """Replace the stored entries of these names, in one transaction."""
    now = time.time()
    rows = [(n, e.model_dump_json(exclude_none=True), source, now) for n, e in entries.items()]
    async with db.transaction() as tx:
        await tx.executemany(
            "INSERT INTO catalogue_overlay (name, entry, source, synced_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET entry = excluded.entry,"
            " source = excluded.source, synced_at = excluded.synced_at",
            rows,
        )
