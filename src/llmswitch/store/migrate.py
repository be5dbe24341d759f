"""Migration runner: ``NNN_name.sql`` files applied once each, in order, one transaction each.

Files come from the ``llmswitch.migrations`` package through importlib.resources, so they
are found the same way in a checkout, an editable install and a wheel. Applied versions
are recorded in ``schema_migrations``; each migration re-checks that table after taking
the write lock, so two processes opening the same new database do not apply it twice.

A migration file must not contain its own ``BEGIN``/``COMMIT``/``ROLLBACK``: the runner
wraps the file and its ``schema_migrations`` row in one transaction, so a failed
migration leaves nothing behind (PostgreSQL's DDL is transactional too).

Files are written in SQLite's SQL; PostgreSQL runs each statement through
:attr:`Dialect.ddl <llmswitch.store.engine.Dialect>` (its types for SQLite's), so one
set of files migrates both engines.
"""

from __future__ import annotations

import importlib.resources
import logging
import re
import sqlite3
import time
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

import anyio

from llmswitch.store.errors import MigrationError, StatementError

if TYPE_CHECKING:
    from llmswitch.store.engine import Connection

log = logging.getLogger(__name__)

DEFAULT_PACKAGE = "llmswitch.migrations"

_FILE_RE = re.compile(r"^(?P<version>\d{3,})_(?P<name>[A-Za-z0-9_]+)\.sql$")
_COMMENT_RE = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_TX_CONTROL = frozenset({"BEGIN", "COMMIT", "END", "ROLLBACK"})

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT,
    applied_at REAL
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name, file name and split statements."""

    version: int
    name: str
    filename: str
    statements: tuple[str, ...]


def _strip_comments(sql: str) -> str:
    return _COMMENT_RE.sub(" ", sql).strip()


def split_statements(script: str, filename: str = "<script>") -> tuple[str, ...]:
    """Split a script into single statements (``execute`` runs one at a time).

    ``sqlite3.complete_statement`` decides where a statement ends, so semicolons inside
    strings, comments and ``CREATE TRIGGER ... BEGIN ... END`` bodies are handled.
    """
    statements: list[str] = []
    start = 0
    for i, ch in enumerate(script):
        if ch == ";" and sqlite3.complete_statement(script[start : i + 1]):
            statements.append(script[start : i + 1])
            start = i + 1
    if _strip_comments(script[start:]):
        statements.append(script[start:] + ";")  # last statement without ';' is fine
    result: list[str] = []
    for stmt in statements:
        body = _strip_comments(stmt).rstrip(";").strip()
        if not body:
            continue
        first = body.split(None, 1)[0].upper()
        if first in _TX_CONTROL:
            raise MigrationError(
                f"migration {filename}: contains {first}; the runner wraps each file in a"
                " transaction, remove transaction control from the file"
            )
        result.append(stmt.strip())
    return tuple(result)


def load_migrations(source: str | Traversable = DEFAULT_PACKAGE) -> list[Migration]:
    """Read and check migration files, sorted by version (blocking file I/O).

    ``source`` is a package name or a directory (a ``Traversable`` such as a ``Path``).
    Other files (``__init__.py``) are ignored; a ``.sql`` file with a bad name or a
    duplicate version is an error rather than silently skipped.
    """
    if isinstance(source, str):
        try:
            root = importlib.resources.files(source)
        except ModuleNotFoundError as exc:
            raise MigrationError(
                f"migrations package {source!r} is not importable; is it installed with"
                " llmswitch (setuptools packages must list it)?"
            ) from exc
    else:
        root = source
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        if not entry.name.endswith(".sql") or not entry.is_file():
            continue
        m = _FILE_RE.match(entry.name)
        if m is None:
            raise MigrationError(
                f"migration {entry.name}: bad file name, expected NNN_name.sql"
                " (digits, underscore, letters/digits/underscores)"
            )
        version = int(m["version"])
        if version in found:
            raise MigrationError(
                f"migrations {found[version].filename} and {entry.name} share version {version}"
            )
        found[version] = Migration(
            version=version,
            name=m["name"],
            filename=entry.name,
            statements=split_statements(entry.read_text(encoding="utf-8"), entry.name),
        )
    return [found[v] for v in sorted(found)]


async def applied_versions(conn: Connection) -> dict[int, str]:
    """Versions recorded in ``schema_migrations`` with their names."""
    rows = await conn.fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
    return {int(version): str(name) for version, name in rows}


async def migrate(conn: Connection, source: str | Traversable = DEFAULT_PACKAGE) -> list[int]:
    """Apply the migrations not yet applied, in version order; returns the versions applied.

    Idempotent. Raises :class:`MigrationError` naming the file (and statement) that
    failed; that migration is rolled back, earlier ones stay applied.
    """
    migrations = await anyio.to_thread.run_sync(load_migrations, source)
    async with conn.transaction() as tx:
        await tx.execute(conn.dialect.ddl(_CREATE_TABLE))
    done = await applied_versions(conn)

    known = {m.version for m in migrations}
    unknown = sorted(set(done) - known)
    if unknown:
        log.warning(
            "%s: schema has migrations %s that this version does not know (newer llmswitch?)",
            conn.path,
            unknown,
        )

    applied: list[int] = []
    for migration in migrations:
        if migration.version in done:
            if done[migration.version] != migration.name:
                log.warning(
                    "%s: migration %d recorded as %r, file is %s",
                    conn.path,
                    migration.version,
                    done[migration.version],
                    migration.filename,
                )
            continue
        if await _apply(conn, migration):
            applied.append(migration.version)
            log.info("%s: applied migration %s", conn.path, migration.filename)
    return applied


async def _apply(conn: Connection, migration: Migration) -> bool:
    """Apply one migration in its own transaction; False if another process beat us."""
    async with conn.transaction() as tx:
        # Re-check under the write lock: another process may have applied it meanwhile.
        if await tx.fetchone(
            "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
        ):
            return False
        for index, stmt in enumerate(migration.statements, start=1):
            try:
                await tx.execute(conn.dialect.ddl(stmt))
            except (sqlite3.Error, StatementError) as exc:
                head = " ".join(_strip_comments(stmt).split())[:80]
                raise MigrationError(
                    f"migration {migration.filename} failed at statement {index} ({head!r}): {exc}"
                ) from exc
        await tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, time.time()),
        )
    return True
