"""The store: SQLite (embedded) or PostgreSQL (``store.url``), and the migration runner.

``open_store`` gives the configured engine's migrated :class:`Connection` (``open_db``
a SQLite one); ``request_log`` holds the queries the budget ledger runs. Everything here
is async and runs the engine's driver in worker threads.
"""

from llmswitch.store.connect import connect_store, open_existing_store, open_store
from llmswitch.store.db import SqliteConnection, connect, open_db
from llmswitch.store.engine import Connection, Dialect, Transaction
from llmswitch.store.errors import MigrationError, StoreBusyError, StoreError, StoreUnavailable
from llmswitch.store.migrate import applied_versions, load_migrations, migrate
from llmswitch.store.request_log import (
    RequestRow,
    count_rows,
    insert_rows,
    recent_rows,
    spend_since,
)

__all__ = [
    "Connection",
    "Dialect",
    "MigrationError",
    "RequestRow",
    "SqliteConnection",
    "StoreBusyError",
    "StoreError",
    "StoreUnavailable",
    "Transaction",
    "applied_versions",
    "connect",
    "connect_store",
    "count_rows",
    "insert_rows",
    "load_migrations",
    "migrate",
    "open_db",
    "open_existing_store",
    "open_store",
    "recent_rows",
    "spend_since",
]
