"""SQLite access and the migration runner.

``open_db`` gives a migrated :class:`Connection`; ``request_log`` holds the queries the
budget ledger runs. Everything here is async and runs SQLite in worker threads.
"""

from llmswitch.store.db import Connection, Transaction, connect, open_db
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
    "MigrationError",
    "RequestRow",
    "StoreBusyError",
    "StoreError",
    "StoreUnavailable",
    "Transaction",
    "applied_versions",
    "connect",
    "count_rows",
    "insert_rows",
    "load_migrations",
    "migrate",
    "open_db",
    "recent_rows",
    "spend_since",
]
