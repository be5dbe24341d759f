"""Client keys created at run time: name, SHA-256 of the key, and what the key may do.

The key itself is made here, shown once to whoever created it, and never stored: only
its digest is. The CLI and the running gateway share the table; the gateway notices a
change by polling :func:`keys_version`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass

from pydantic import ValidationError

from llmswitch.config import KeyPolicy
from llmswitch.store.engine import Connection

log = logging.getLogger(__name__)

KEY_PREFIX = "lsk-"
#: Names end up in logs, the ledger and metrics labels: keep them plain.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class StoredKey:
    name: str
    digest: bytes
    policy: KeyPolicy
    created_at: float


class KeyExists(ValueError):
    """A key of that name (or, astronomically unlikely, that digest) is stored already."""


def new_key() -> str:
    """A fresh client key: 256 random bits, URL-safe."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def create_key(conn: Connection, name: str, policy: KeyPolicy) -> str:
    """Store a new key for ``name``; return the key, which is not stored and not shown again."""
    key = new_key()
    async with conn.transaction() as tx:
        if await tx.fetchone("SELECT 1 FROM client_keys WHERE name = ?", (name,)):
            raise KeyExists(f"a key named {name!r} exists; revoke it first")
        await tx.execute(
            "INSERT INTO client_keys (name, key_sha256, policy, created_at) VALUES (?, ?, ?, ?)",
            (name, digest_of(key).hex(), policy.model_dump_json(), time.time()),
        )
    return key


async def revoke_key(conn: Connection, name: str) -> bool:
    """Delete the key of that name; False if there was none."""
    async with conn.transaction() as tx:
        return await tx.execute("DELETE FROM client_keys WHERE name = ?", (name,)) > 0


async def load_keys(conn: Connection) -> list[StoredKey]:
    """The stored keys by name; one whose policy no longer validates is skipped and logged."""
    rows = await conn.fetchall(
        "SELECT name, key_sha256, policy, created_at FROM client_keys ORDER BY name"
    )
    keys = []
    for name, digest, policy, created in rows:
        try:
            parsed = KeyPolicy.model_validate(json.loads(policy))
        except (ValueError, ValidationError) as exc:
            log.warning("client_keys: skipping %r: %s", name, exc)
            continue
        keys.append(StoredKey(str(name), bytes.fromhex(digest), parsed, float(created)))
    return keys


async def keys_version(conn: Connection) -> tuple[int, float]:
    """Moves on every create and revoke, by this process or another."""
    row = await conn.fetchone("SELECT COUNT(*), COALESCE(SUM(created_at), 0) FROM client_keys")
    return (int(row[0]), float(row[1])) if row else (0, 0.0)
