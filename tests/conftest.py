"""Fixtures shared by every test directory: the PostgreSQL test database (tests/pg.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import fresh_schema, session_database


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This session's own database on the system PostgreSQL, dropped at the end."""
    with session_database() as url:
        yield url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """A URL into an empty schema of its own for one test."""
    return fresh_schema(pg_database)
