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
    """The OS is short of a resource (file descriptors, memory, disk): try again later.

    Rows waiting in the journal stay there; nothing is lost by waiting.
    """


class MigrationError(StoreError):
    """A migration file is malformed or failed to apply; the message names the file."""


def is_transient(exc: OSError) -> bool:
    """An OS error that says "not now" rather than "never"."""
    return exc.errno in TRANSIENT_ERRNOS
