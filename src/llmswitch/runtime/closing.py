"""Closing a resource from a task that may be being cancelled.

trio's ``aclose_forcefully`` cancels the close at once: right for a socket, wrong for an
httpx response, whose ``aclose`` is what gives its connection back to the pool (a
cancelled request that skips it leaks the slot until ``PoolTimeout``). Here the close is
shielded from the caller's cancellation and bounded by its own deadline instead.
"""

from __future__ import annotations

from typing import Protocol

import trio

#: How long a shielded close may take before it is abandoned.
CLOSE_TIMEOUT_S = 5.0


class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


async def aclose_shielded(resource: AsyncClosable, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """Close ``resource`` even while being cancelled, giving up after ``timeout_s``.

    What a cancel leaves behind: nothing, unless the close itself outlasts ``timeout_s``;
    then the resource is abandoned half-closed and the caller's cancellation goes on.
    """
    with trio.CancelScope(shield=True), trio.move_on_after(timeout_s):
        await resource.aclose()
