"""Errors of the store layer, in their own module so that db and migrate can share them."""


class StoreError(Exception):
    """Base class for errors raised by the store layer."""


class StoreBusyError(StoreError):
    """The database stayed locked by another connection for longer than the busy timeout."""


class MigrationError(StoreError):
    """A migration file is malformed or failed to apply; the message names the file."""
