"""Start-up failures explained from inside any nesting of exception groups (pure)."""

from __future__ import annotations

import errno

from llmswitch.cli.startup import explain
from llmswitch.config import ServerConfig, StoreConfig
from llmswitch.main import StartRefused
from llmswitch.store.errors import StoreError, StoreUnavailable

SERVER = ServerConfig(port=8080)
X_DB = StoreConfig(path="x.db")


def nested(exc: BaseException) -> BaseExceptionGroup[BaseException]:
    inner = BaseExceptionGroup("serve", [exc])
    return BaseExceptionGroup("root", [inner])


def test_a_port_in_use_deep_in_groups_is_exit_3_with_the_fix() -> None:
    bind = OSError(errno.EADDRINUSE, "address already in use")
    failure = explain(nested(bind), SERVER, X_DB)
    assert failure is not None and failure.code == 3
    assert "127.0.0.1:8080 is already in use" in failure.message
    assert "set [server] port or `--port`" in failure.message


def test_refusals_and_store_errors_are_explained() -> None:
    refused = explain(StartRefused("refusing to listen on 0.0.0.0"), SERVER, X_DB)
    assert refused is not None and (refused.code, refused.message) == (
        2,
        "refusing to listen on 0.0.0.0",
    )
    store = explain(nested(StoreError("x.db: cannot open database")), SERVER, X_DB)
    assert store is not None and store.code == 3
    assert "set [store] path to a writable SQLite file" in store.message
    pg = StoreConfig(url="postgresql://llm:s3cret@db.lan/llm")
    down = explain(nested(StoreUnavailable("postgresql://***@db.lan/llm: refused")), SERVER, pg)
    assert down is not None and down.code == 3
    assert "[store] url" in down.message and "s3cret" not in down.message


def test_a_bug_is_not_explained_away() -> None:
    assert explain(nested(KeyError("oops")), SERVER, X_DB) is None
    assert explain(OSError(errno.EIO, "io"), SERVER, X_DB) is None
