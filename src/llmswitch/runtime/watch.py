"""Watch: a versioned latest value, for views read far more often than written.

Actors publish immutable snapshots of their state; request handlers read
:attr:`Watch.value` without a round trip through the actor's mailbox.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Watch(Generic[T]):
    def __init__(self, initial: T) -> None:
        self._value = initial
        self._version = 0
        self._changed = trio.Event()

    @property
    def value(self) -> T:
        return self._value

    @property
    def version(self) -> int:
        return self._version

    def publish(self, value: T) -> None:
        self._value = value
        self._version += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_newer(self, version: int) -> tuple[T, int]:
        """Wait until a value newer than ``version`` is published; return it and its version."""
        while self._version <= version:
            await self._changed.wait()
        return self._value, self._version
