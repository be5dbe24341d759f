"""A client's departure, however the framework wraps it, is never a gateway failure."""

from __future__ import annotations

import pytest
import trio

from llmswitch.front.chat import client_left


@pytest.mark.parametrize(
    "exc",
    [
        GeneratorExit(),
        trio.BrokenResourceError("the client took nothing for 5s; connection closed"),
        trio.ClosedResourceError(),
        BaseExceptionGroup("send", [trio.BrokenResourceError(), GeneratorExit()]),
        BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [trio.ClosedResourceError()])]),
    ],
)
def test_departures_are_recognised_through_groups(exc: BaseException) -> None:
    assert client_left(exc)


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("a bug"),
        BaseExceptionGroup("mixed", [trio.BrokenResourceError(), ValueError("a bug")]),
        KeyboardInterrupt(),
    ],
)
def test_anything_else_is_a_gateway_failure(exc: BaseException) -> None:
    assert not client_left(exc)


async def test_a_cancellation_is_a_departure() -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.sleep(1)
        except trio.Cancelled as exc:
            assert client_left(exc)
            raise
