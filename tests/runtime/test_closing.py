"""aclose_shielded: a close that a cancel cannot skip, and that cannot hang."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from llmswitch.runtime.closing import aclose_shielded


class Slow:
    """A resource whose close takes ``close_s`` (a connection handed back to a pool)."""

    def __init__(self, close_s: float) -> None:
        self.close_s = close_s
        self.closed = False

    async def aclose(self) -> None:
        await trio.sleep(self.close_s)
        self.closed = True


async def test_a_cancelled_caller_still_closes(autojump_clock: MockClock) -> None:
    resource = Slow(close_s=1.0)
    with trio.CancelScope() as scope:
        scope.cancel()
        await aclose_shielded(resource)
    assert resource.closed


async def test_a_close_that_hangs_is_abandoned_after_its_deadline(
    autojump_clock: MockClock,
) -> None:
    resource = Slow(close_s=3600.0)
    start = trio.current_time()
    await aclose_shielded(resource, timeout_s=2.0)
    assert trio.current_time() - start == 2.0
    assert not resource.closed
