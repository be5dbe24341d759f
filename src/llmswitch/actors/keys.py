"""Keys actor: the client keys in force, the config's and those created at run time.

It owns the ``client_keys`` table for the running gateway (the offline CLI writes it
too) and publishes a :class:`~llmswitch.front.access.KeyRing` through a Watch, so the
access check on every request reads keys without a round trip. A change made by the CLI
is picked up within ``poll_s``; one made through the admin API at once.

In a fleet, a key created or revoked through the admin API is told to the peers (name,
SHA-256, policy; never the key), and the keys in force are the newest per name of our
store's and the fleet's (:func:`merge_keys`): a key created on a peer works here at
once, and a revocation anywhere stops it everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.actors.stored import StoredActor
from llmswitch.cluster.news import Entry, Heard, Tell, changes, silent
from llmswitch.config import Config, KeyPolicy
from llmswitch.front.access import KeyRing
from llmswitch.routing.select import ClientKey
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.engine import Connection
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


KeysMsg = CreateKey | RevokeKey | ListKeys | Reconfigure | Heard

log = logging.getLogger(__name__)


def keyring(config: Config, stored: list[StoredKey]) -> KeyRing:
    return KeyRing.build(config.clients, [(k.digest, ClientKey(k.name, k.policy)) for k in stored])


def key_data(key: StoredKey) -> dict[str, Any]:
    """What the fleet is told of a key: its digest, never the key itself."""
    return {
        "sha256": key.digest.hex(),
        "policy": key.policy.model_dump(mode="json"),
        "created_at": key.created_at,
    }


def merge_keys(local: list[StoredKey], fleet: Mapping[str, Entry]) -> list[StoredKey]:
    """The keys in force, by name: our store's row (stamped by its creation) or the fleet's
    newest entry for that name, whichever is newer; a revocation (no data) removes it."""
    mine = {k.name: k for k in local}
    out = []
    for name in sorted(mine.keys() | fleet.keys()):
        entry, key = fleet.get(name), mine.get(name)
        if entry is not None and (key is None or entry.stamp >= key.created_at):
            key = _from_entry(name, entry)
        if key is not None:
            out.append(key)
    return out


def stored_data(keys: list[StoredKey]) -> dict[str, dict[str, Any]]:
    """Our store's keys as the fleet is told them, by name."""
    return {k.name: key_data(k) for k in keys}


def _from_entry(name: str, entry: Entry) -> StoredKey | None:
    if entry.data is None:
        return None
    try:
        return StoredKey(
            name,
            bytes.fromhex(str(entry.data["sha256"])),
            KeyPolicy.model_validate(entry.data["policy"]),
            float(entry.data["created_at"]),
        )
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        log.warning("fleet: skipping client key %r: %s", name, exc)
        return None


class KeysActor(StoredActor[KeysMsg]):
    name = "keys"

    def __init__(self, config: Config, view: Watch[KeyRing], tell: Tell = silent) -> None:
        super().__init__(config.store)
        self._config = config
        self._view = view
        self._tell = tell
        self._local: list[StoredKey] = []
        #: The fleet's newest entry per key name (a revocation included).
        self._fleet: dict[str, Entry] = {}
        self._stored: list[StoredKey] = []
        self._loaded = False

    async def version(self, db: Connection) -> Hashable:
        return await keys_version(db)

    async def load(self, db: Connection) -> None:
        """Read our store; once running, what changed in it since is told to the fleet
        (what was there at start is not: a peer may have revoked it meanwhile)."""
        before, self._local = self._local, await load_keys(db)
        if self._loaded:
            for name, data in changes(stored_data(before), stored_data(self._local)):
                self._fleet.pop(name, None)
                self._tell("key", name, data)
        self._loaded = True
        self._merge()

    def _merge(self) -> None:
        self._stored = merge_keys(self._local, self._fleet)
        self._view.publish(keyring(self._config, self._stored))

    async def handle(self, msg: KeysMsg) -> None:
        if isinstance(msg, ListKeys):
            msg.reply.set(list(self._stored))
        elif isinstance(msg, Reconfigure):
            self._config = msg.config
            self._view.publish(keyring(self._config, self._stored))
            msg.reply.set(None)
        elif isinstance(msg, Heard):
            self._fleet[msg.entry.key] = msg.entry
            self._merge()
        elif isinstance(msg, CreateKey):
            if any(c.name == msg.name for c in self._config.clients):
                msg.reply.fail(KeyExists(f"{msg.name!r} is a [[clients]] entry of the config"))
                return
            if any(k.name == msg.name for k in self._stored):
                msg.reply.fail(KeyExists(f"a key named {msg.name!r} exists; revoke it first"))
                return
            try:
                key = await create_key(self.db, msg.name, msg.policy)
            except KeyExists as exc:
                msg.reply.fail(exc)
                return
            await self.reload()  # tells the fleet
            msg.reply.set(key)
        else:
            in_force = any(k.name == msg.name for k in self._stored)
            if not await revoke_key(self.db, msg.name) and in_force:
                # A peer's key, never in our store: tell its revocation ourselves.
                self._fleet.pop(msg.name, None)
                self._tell("key", msg.name, None)
            await self.reload()  # tells the fleet of a key deleted from our store
            msg.reply.set(in_force)

    def summary(self) -> Mapping[str, Any]:
        return {
            "configured": [c.name for c in self._config.clients],
            "stored": [k.name for k in self._stored],
        }
