"""Migration runner: fresh databases, idempotence, failures that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.store import MigrationError, applied_versions, load_migrations, migrate, open_db
from llmswitch.store.migrate import split_statements

REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def test_the_installed_package_ships_every_migration_in_the_repo() -> None:
    assert [m.filename for m in load_migrations()] == [
        m.filename for m in load_migrations(REPO_MIGRATIONS)
    ]


def test_repo_migrations_load_in_order() -> None:
    migrations = load_migrations(REPO_MIGRATIONS)
    assert (migrations[0].version, migrations[0].name) == (1, "request_log")
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)


async def test_fresh_file_db_is_migrated_and_reopen_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    async with open_db(path) as db:
        assert await applied_versions(db) == {m.version: m.name for m in load_migrations()}
        first = await db.fetchall("SELECT version, name, applied_at FROM schema_migrations")
        names = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master")}
        assert {"request_log", "request_log_ts", "request_log_chosen_model"} <= names

    async with open_db(path) as db:
        assert await migrate(db) == []
        again = await db.fetchall("SELECT version, name, applied_at FROM schema_migrations")
        assert again == first  # not re-applied: applied_at unchanged


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


async def test_new_migration_applies_alone_and_failure_rolls_back(tmp_path: Path) -> None:
    mig = _write(tmp_path / "mig", {"__init__.py": "", "001_first.sql": "CREATE TABLE a (x);"})
    path = tmp_path / "m.db"
    async with open_db(path, migrations=mig) as db:
        assert await applied_versions(db) == {1: "first"}

    _write(
        mig,
        {
            "002_second.sql": "-- adds b\nCREATE TABLE b (y TEXT)",  # no final ';' is fine
            "003_broken.sql": "CREATE TABLE c (z);\nINSERT INTO no_such_table VALUES (1);\n",
        },
    )
    with pytest.raises(MigrationError, match=r"003_broken\.sql.*statement 2.*no_such_table"):
        async with open_db(path, migrations=mig):
            pass

    (mig / "003_broken.sql").unlink()
    async with open_db(path, migrations=mig) as db:
        assert await applied_versions(db) == {1: "first", 2: "second"}
        names = {r[0] for r in await db.fetchall("SELECT name FROM sqlite_master")}
        assert "b" in names
        assert "c" not in names  # the failed migration's first statement was rolled back


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"1_short.sql": "SELECT 1;"}, r"1_short\.sql: bad file name"),
        ({"001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"}, r"share version 1"),
        ({"001_tx.sql": "BEGIN;\nCREATE TABLE t (x);\nCOMMIT;"}, r"001_tx\.sql: contains BEGIN"),
    ],
)
def test_bad_migration_files_are_rejected(
    tmp_path: Path, files: dict[str, str], match: str
) -> None:
    with pytest.raises(MigrationError, match=match):
        load_migrations(_write(tmp_path / "bad", files))


def test_split_statements_respects_strings_comments_and_triggers() -> None:
    script = """
    -- leading comment; with a semicolon
    CREATE TABLE t (x TEXT DEFAULT 'a;b');
    /* block; comment */
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET x = 'c;d' WHERE rowid = new.rowid;
    END;
    ;
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[0].endswith("DEFAULT 'a;b');")
    assert "CREATE TRIGGER" in statements[1]
    assert statements[1].endswith("END;")


async def test_trigger_migration_applies(tmp_path: Path) -> None:
    mig = _write(
        tmp_path / "trig",
        {
            "001_t.sql": (
                "CREATE TABLE t (x INTEGER, n INTEGER DEFAULT 0);\n"
                "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN\n"
                "  UPDATE t SET n = 1 WHERE rowid = new.rowid;\n"
                "END;\n"
            )
        },
    )
    async with open_db(":memory:", migrations=mig) as db:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (x) VALUES (1)")
        assert await db.fetchall("SELECT x, n FROM t") == [(1, 1)]
