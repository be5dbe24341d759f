"""Errors of the store layer, in their own module so that db and migrate can share them."""

from __future__ import annotations

import errno

#: The OS is short of something that comes back by itself: descriptors, memory, disk.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.ENOBUFS,
        errno.EAGAIN,
        errno.EINTR,
        errno.ENOSPC,
        errno.EDQUOT,
    }
)


class StoreError(Exception):
    """Base class for errors raised by the store layer."""


class StoreBusyError(StoreError):
    """The database stayed locked by another connection for longer than the busy timeout."""


class StoreUnavailable(StoreError):
    """The OS is short of a resource (file descriptors, memory, disk), or the database
    server is unreachable or shedding load: try again later.

    Rows waiting in the journal stay there; nothing is lost by waiting.
    """


class StatementError(StoreError):
    """The database server refused a statement for good (a bad value, a bug in the SQL):
    trying the same again will fail the same way."""


class MigrationError(StoreError):
    """A migration file is malformed or failed to apply; the message names the file."""


def is_transient(exc: OSError) -> bool:
    """An OS error that says "not now" rather than "never"."""
    return exc.errno in TRANSIENT_ERRNOS


#: SQLSTATE classes that say "not now": connection exception (08), transaction rollback
#: (40: serialization failure, deadlock), insufficient resources (53), operator
#: intervention (57: shutdown, crash recovery, cannot connect now), system error (58).
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
#: lock_not_available: the writer lock stayed taken past the busy timeout.
LOCK_NOT_AVAILABLE = "55P03"


def is_transient_sqlstate(sqlstate: str | None, *, connection_lost: bool) -> bool:
    """A PostgreSQL error worth retrying later: the connection is gone (the server was
    killed, restarted or is unreachable), or its SQLSTATE class says "not now"."""
    return connection_lost or (sqlstate is not None and sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES)
