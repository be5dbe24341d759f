"""Actors that mirror rows the offline CLI edits too (routing settings, client keys).

Each opens its own store connection before it says started, loads what it mirrors, and
polls a cheap version query so a change another process wrote is picked up within
``poll_s``; a change it makes itself it reloads at once. While the store cannot be
reached, the last loaded state stays in force.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TypeVar

import trio

from llmswitch.config import StoreConfig
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import Inbox
from llmswitch.store.connect import open_store
from llmswitch.store.engine import Connection
from llmswitch.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

M = TypeVar("M")


class StoredActor(Actor[M]):
    poll_s = 2.0

    def __init__(self, store: StoreConfig) -> None:
        self._store = store
        self._db: Connection | None = None
        self._version: Hashable = None

    async def version(self, db: Connection) -> Hashable:
        """A value that changes whenever the mirrored rows do."""
        raise NotImplementedError

    async def load(self, db: Connection) -> None:
        """Read the mirrored rows into the actor's state (and publish it)."""
        raise NotImplementedError

    @property
    def db(self) -> Connection:
        assert self._db is not None, "used before run() opened the store"
        return self._db

    async def reload(self) -> None:
        self._version = await self.version(self.db)
        await self.load(self.db)

    async def run(
        self,
        inbox: Inbox[M],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with open_store(self._store) as db:
            self._db = db
            await self.reload()
            await super().run(inbox, task_status=task_status)

    async def background(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._poll)

    async def _poll(self) -> None:
        """Reload on a change; a store that cannot be read now (its server gone) keeps
        what was loaded, said once, rather than crash and restart into the same outage."""
        unreadable = False
        while True:
            await trio.sleep(self.poll_s)
            try:
                if await self.version(self.db) != self._version:
                    await self.reload()
            except StoreUnavailable as exc:
                if not unreadable:
                    log.warning(
                        "%s: keeping what was loaded; store unreachable: %s", self.name, exc
                    )
                unreadable = True
            else:
                unreadable = False
