"""Keys actor: the client keys in force, the config's and those created at run time.

It owns the ``client_keys`` table for the running gateway (the offline CLI writes it
too) and publishes a :class:`~llmswitch.front.access.KeyRing` through a Watch, so the
access check on every request reads keys without a round trip. A change made by the CLI
is picked up within ``poll_s``; one made through the admin API at once.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.actors.stored import StoredActor
from llmswitch.config import Config, KeyPolicy
from llmswitch.front.access import KeyRing
from llmswitch.routing.select import ClientKey
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.db import Connection
from llmswitch.store.keys import (
    KeyExists,
    StoredKey,
    create_key,
    keys_version,
    load_keys,
    revoke_key,
)


@dataclass(eq=False)
class CreateKey(Request[str]):
    """Create a key; replies with the key itself (shown once), or fails with KeyExists."""

    name: str
    policy: KeyPolicy


@dataclass(eq=False)
class RevokeKey(Request[bool]):
    name: str


@dataclass(eq=False)
class ListKeys(Request[list[StoredKey]]):
    pass


KeysMsg = CreateKey | RevokeKey | ListKeys | Reconfigure


def keyring(config: Config, stored: list[StoredKey]) -> KeyRing:
    return KeyRing.build(config.clients, [(k.digest, ClientKey(k.name, k.policy)) for k in stored])


class KeysActor(StoredActor[KeysMsg]):
    name = "keys"

    def __init__(self, config: Config, view: Watch[KeyRing]) -> None:
        super().__init__(config.store.path)
        self._config = config
        self._view = view
        self._stored: list[StoredKey] = []

    async def version(self, db: Connection) -> Hashable:
        return await keys_version(db)

    async def load(self, db: Connection) -> None:
        self._stored = await load_keys(db)
        self._view.publish(keyring(self._config, self._stored))

    async def handle(self, msg: KeysMsg) -> None:
        if isinstance(msg, ListKeys):
            msg.reply.set(list(self._stored))
        elif isinstance(msg, Reconfigure):
            self._config = msg.config
            self._view.publish(keyring(self._config, self._stored))
            msg.reply.set(None)
        elif isinstance(msg, CreateKey):
            if any(c.name == msg.name for c in self._config.clients):
                msg.reply.fail(KeyExists(f"{msg.name!r} is a [[clients]] entry of the config"))
                return
            try:
                key = await create_key(self.db, msg.name, msg.policy)
            except KeyExists as exc:
                msg.reply.fail(exc)
                return
            await self.reload()
            msg.reply.set(key)
        else:
            revoked = await revoke_key(self.db, msg.name)
            await self.reload()
            msg.reply.set(revoked)

    def summary(self) -> Mapping[str, Any]:
        return {
            "configured": [c.name for c in self._config.clients],
            "stored": [k.name for k in self._stored],
        }
