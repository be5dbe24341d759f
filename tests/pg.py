"""PostgreSQL for the tests: the system server on 127.0.0.1:5432 (trust auth, user
postgres), one database per test session, created here and dropped at its end, and one
schema per test inside it (cheap, and every test starts empty).

``.ci/run`` starts the server when nothing answers there.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

SERVER = "postgresql://postgres@127.0.0.1:5432"


@contextmanager
def session_database() -> Iterator[str]:
    """A new database's URL, dropped (connections and all) on exit."""
    name = f"llmswitch_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_schema(database_url: str) -> str:
    """A new empty schema in the session's database; the URL that works in it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{database_url}?options=-csearch_path%3D{schema}"
