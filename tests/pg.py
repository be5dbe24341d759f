"""PostgreSQL for the tests: the system server on 127.0.0.1:5432 (trust auth, user
postgres), one database per test session, created here and dropped at its end, and one
schema per test inside it (cheap, and every test starts empty).

``.ci/run`` starts the server when nothing answers there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

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


#: Debian's PostgreSQL 15 (the postgresql package); its programs run as the postgres user.
PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivateServer:
    """A PostgreSQL server of the test's own on a free loopback port, to kill and restart
    (never the system one). ``url`` reaches its ``postgres`` database (trust auth)."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _as_postgres(self, *args: str | Path, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, args)],
            check=True,
            capture_output=True,
            timeout=timeout,
        )

    def init(self) -> None:
        self._as_postgres(
            PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def start(self) -> None:
        """Start (after a kill: crash recovery) and wait until it accepts connections; a
        killed server's last backends may hold its shared memory for a moment."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        for attempt in range(20):
            try:
                self._as_postgres(
                    PG_BIN / "pg_ctl", "-D", self.data, "-o", options,
                    "-l", self.root / "log", "-w", "-t", "30", "start",
                )  # fmt: skip
                return
            except subprocess.CalledProcessError:
                if attempt == 19:
                    raise
                time.sleep(0.25)

    def kill(self) -> None:
        """SIGKILL the postmaster (its backends notice and exit)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        with suppress(subprocess.SubprocessError):
            self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "stop")


@contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A fresh server in a private folder (owned by postgres), stopped and removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="llmswitch-pg-"))
    shutil.chown(root, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = PrivateServer(root, port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def emptied(url: str) -> str:
    """``url`` with every table of its schema emptied as a fresh migration leaves it
    (cheaper than migrating a new schema for each test)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name <> 'schema_migrations'"
            )
        ]
        for table in tables:  # DELETE: far cheaper than TRUNCATE on tables this small
            conn.execute(f"DELETE FROM {table}")
        if "request_rollup_state" in tables:  # the row migration 060 inserts
            conn.execute("INSERT INTO request_rollup_state (id, rolled_up_id) VALUES (1, 0)")
    return url
