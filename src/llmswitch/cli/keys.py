"""``llmswitch keys``: client keys created at run time, without a running gateway.

``create`` prints the new key once (only its SHA-256 is stored), ``list`` shows names and
rights but never a secret, ``revoke`` deletes a key, ``hash`` prints the SHA-256 of a key
read from stdin, for a ``[[clients]]`` entry's ``key_sha256``. A running gateway picks up
created and revoked keys within a few seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

import trio
from pydantic import ValidationError

from llmswitch.cli.common import EXIT_CONFIG, SubParsers, config_command, fail, offline
from llmswitch.cli.table import table
from llmswitch.config import Config, KeyPolicy
from llmswitch.store.connect import open_existing_store, open_store
from llmswitch.store.keys import KEY_NAME, KeyExists, create_key, load_keys, revoke_key

PICKED_UP = "a running gateway picks it up within a few seconds"


def _policy(args: argparse.Namespace) -> KeyPolicy:
    rights = {
        "rpm": args.rpm,
        "tpm": args.tpm,
        "models": args.models,
        "profiles": args.profiles,
        "force_profile": args.force_profile,
        "daily_usd": args.daily_usd,
        "monthly_usd": args.monthly_usd,
        "metered_cloud": args.metered_cloud,
    }
    return KeyPolicy.model_validate({k: v for k, v in rights.items() if v is not None})


def cmd_keys(config: Config, args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(config, args.json)
    if args.name is None or not KEY_NAME.fullmatch(args.name):
        return fail(
            f"keys {args.action} NAME: 1 to 64 letters, digits, '.', '_' or '-'", EXIT_CONFIG
        )
    if args.action == "create":
        return _create(config, args)
    return _revoke(config, args.name)


def run(args: argparse.Namespace) -> int:
    """``keys hash`` needs no config; the others read it and its store."""
    return cmd_hash() if args.action == "hash" else offline(cmd_keys)(args)


def _create(config: Config, args: argparse.Namespace) -> int:
    try:
        policy = _policy(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        return fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}", EXIT_CONFIG)
    problem = config.key_policy_problem(policy)
    if any(c.name == args.name for c in config.clients):
        problem = f"{args.name!r} is a [[clients]] entry of the config"
    if problem is not None:
        return fail(problem)

    async def write() -> str:
        async with open_store(config.store) as db:
            return await create_key(db, args.name, policy)

    try:
        key = trio.run(write)
    except KeyExists as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps({"name": args.name, "key": key}))
    else:
        print(key)
        print(f"key {args.name} created; it is shown only now. {PICKED_UP}.", file=sys.stderr)
    return 0


def _revoke(config: Config, name: str) -> int:
    async def delete() -> bool:
        async with open_store(config.store) as db:
            return await revoke_key(db, name)

    if not trio.run(delete):
        return fail(f"no stored key named {name!r}")
    print(f"key {name} revoked; {PICKED_UP}")
    return 0


def _list(config: Config, as_json: bool) -> int:
    async def read() -> list[tuple[str, str, str, str]]:
        async with open_existing_store(config.store) as db:
            stored = await load_keys(db) if db is not None else []
        rows = [(c.name, "config", "", _rights(c)) for c in config.clients]
        return rows + [
            (
                k.name,
                "store",
                time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created_at)),
                _rights(k.policy),
            )
            for k in stored
        ]

    rows = trio.run(read)
    if as_json:
        keys = [{"name": n, "source": s, "created": c, "rights": r} for n, s, c, r in rows]
        print(json.dumps({"keys": keys}, indent=2))
    else:
        print(table(["name", "source", "created (UTC)", "rights"], rows, empty="(no client keys)"))
    return 0


def _rights(policy: KeyPolicy) -> str:
    shown = policy.model_dump(exclude_defaults=True, include=set(KeyPolicy.model_fields))
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or "all"


def cmd_hash() -> int:
    key = sys.stdin.readline().strip()
    if not key:
        return fail("give the key on stdin", EXIT_CONFIG)
    print(hashlib.sha256(key.encode()).hexdigest())
    return 0


def register(sub: SubParsers) -> None:
    p = config_command(sub, "keys", "create, list or revoke client keys")
    p.add_argument(
        "action", nargs="?", choices=["list", "create", "revoke", "hash"], default="list"
    )
    p.add_argument("name", nargs="?", help="the client's name (create, revoke)")
    p.add_argument("--rpm", type=int)
    p.add_argument("--tpm", type=int)
    p.add_argument("--models", nargs="+", metavar="GLOB", help="models it may use")
    p.add_argument("--profiles", nargs="+", metavar="PROFILE", help="profiles it may ask for")
    p.add_argument("--force-profile", metavar="PROFILE", help="the profile it always gets")
    p.add_argument("--daily-usd", type=float)
    p.add_argument("--monthly-usd", type=float)
    p.add_argument(
        "--metered-cloud", nargs="+", metavar="TASK", help='task types it may meter ("*": all)'
    )
    p.set_defaults(func=run)
