"""Why a gateway could not start, as one line with the fix and an exit code.

trio wraps a failure inside a nursery in an ExceptionGroup, often several deep (serve()
inside llmswitch's own nurseries): the leaves are what happened. Only failures a person
can fix are explained; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from llmswitch.cli.common import EXIT_CONFIG, EXIT_ENVIRONMENT
from llmswitch.config import ServerConfig, StoreConfig
from llmswitch.main import StartRefused
from llmswitch.store.errors import StoreError


@dataclass(frozen=True)
class StartFailure:
    message: str
    code: int


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside any nesting of exception groups, in order."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def bind_problem(exc: OSError, server: ServerConfig) -> str | None:
    """A failed bind of the gateway's address, with the setting to change, or None."""
    where = f"{server.host}:{server.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{where} is already in use (another llmswitch, or llama.cpp's server, which also"
            " listens on 8080?): set [server] port or `--port`"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: no such address here; set [server] host"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied; set [server] port above 1023"
    return None


def store_problem(exc: StoreError, store: StoreConfig) -> str:
    if store.url is not None:
        return f"store unusable: {exc}; is the PostgreSQL server in [store] url up?"
    path = store.path
    if Path(path).is_dir():
        return (
            f"store.path {path!r} is a directory; name a file in it,"
            f" e.g. {str(Path(path) / 'llmswitch.db')!r}"
        )
    return f"store unusable: {exc}; set [store] path to a writable SQLite file"


def explain(exc: BaseException, server: ServerConfig, store: StoreConfig) -> StartFailure | None:
    """The first leaf a person can fix, explained; None when there is none (a bug)."""
    for leaf in leaves(exc):
        if isinstance(leaf, StartRefused):
            return StartFailure(str(leaf), EXIT_CONFIG)
        if isinstance(leaf, StoreError):
            return StartFailure(store_problem(leaf, store), EXIT_ENVIRONMENT)
        if isinstance(leaf, OSError):
            problem = bind_problem(leaf, server)
            if problem is not None:
                return StartFailure(problem, EXIT_ENVIRONMENT)
    return None
