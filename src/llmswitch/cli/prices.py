"""``llmswitch prices sync [FILE|URL]``: update the catalogue overlay from LiteLLM's list.

Reads a ``model_prices_and_context_window.json`` (default: LiteLLM's copy on GitHub; the
``litellm`` package ships one too) from a file or an http(s) URL, at most
:data:`MAX_LIST_BYTES`, and shows what would change for every catalogued model and every
configured model on a preset cloud backend: prices, context window, max output, features.
``--yes`` stores it in the overlay (the store's ``catalogue_overlay``), which the next
config load applies under anything the config sets. Without ``--yes`` nothing is written
and no database is created.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from llmswitch.cli.common import EXIT_FAILED, SubParsers, config_command, fail, offline
from llmswitch.config import Config
from llmswitch.providers.bounded import read_capped
from llmswitch.providers.catalogue import builtin
from llmswitch.providers.common import UpstreamOverLimit
from llmswitch.providers.pricelist import LITELLM_URL, Change, plan, wanted
from llmswitch.store.catalogue import read_overlay, save_overlay
from llmswitch.store.connect import open_store

#: LiteLLM's list is ~3.5 MB (2026); a source past this is refused.
MAX_LIST_BYTES = 32 * 1024 * 1024
FETCH_TIMEOUT_S = 30.0


class SourceError(Exception):
    """The list could not be read: no such file, a refused URL, too big, not JSON."""


async def fetch(url: str) -> bytes:
    try:
        async with (
            httpx.AsyncClient(timeout=FETCH_TIMEOUT_S) as client,
            client.stream("GET", url) as resp,
        ):
            if resp.status_code != 200:
                raise SourceError(f"{url}: HTTP {resp.status_code}")
            return await read_capped(resp, MAX_LIST_BYTES)
    except httpx.HTTPError as exc:
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from None
    except UpstreamOverLimit as exc:
        raise SourceError(f"{url}: {exc}") from None


def read_source(source: str) -> dict[str, Any]:
    """The list's JSON object, from an http(s) URL or a file, read within the size cap."""
    if "://" in source:
        if not source.startswith(("http://", "https://")):
            raise SourceError(f"{source}: only http:// and https:// URLs are read")
        raw = trio.run(fetch, source)
    else:
        try:
            with Path(source).open("rb") as f:
                raw = f.read(MAX_LIST_BYTES + 1)
        except OSError as exc:
            raise SourceError(f"{source}: {exc.strerror or exc}") from None
        if len(raw) > MAX_LIST_BYTES:
            raise SourceError(f"{source}: more than {MAX_LIST_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{source}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SourceError(f"{source}: not a JSON object of models")
    return data


def shown(source: str) -> str:
    """The source as stored beside the overlay: a URL without its credentials or query."""
    if "://" not in source:
        return source
    parts = urlsplit(source)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def configured(config: Config) -> list[tuple[str, str]]:
    """(upstream name, provider) of each model on a cloud backend with a preset."""
    presets = {b.name: b.preset for b in config.backends if b.locality == "cloud" and b.preset}
    return [(m.upstream_name, presets[m.backend]) for m in config.models if m.backend in presets]


def render(changes: list[Change], missing: list[str]) -> str:
    lines = []
    for c in changes:
        lines.append(f"{c.name}  (from {c.key})")
        lines += [f"  {field}: {old} -> {new}" for field, old, new in c.changes]
    lines.append(f"{len(changes)} model(s) to update; {len(missing)} not in the list")
    return "\n".join(lines)


@offline
def cmd_sync(config: Config, args: argparse.Namespace) -> int:
    try:
        items = read_source(args.source)
    except SourceError as exc:
        return fail(str(exc), EXIT_FAILED)
    catalogue = builtin().with_overlay(read_overlay(config.store.path, config.store.url))
    changes, missing = plan(items, catalogue, wanted(catalogue, configured(config)))
    if args.json:
        report = {
            "changes": [
                {"model": c.name, "key": c.key, "changes": [list(x) for x in c.changes]}
                for c in changes
            ],
            "missing": missing,
            "applied": bool(args.yes and changes),
        }
        print(json.dumps(report, indent=2))
    else:
        print(render(changes, missing))
    if args.yes and changes:
        trio.run(_save, config, changes, shown(args.source))
        if not args.json:
            print(f"stored in {config.store.where}; applied at the next start or reload")
    elif changes and not args.json:
        print("nothing written: run again with --yes to apply")
    return 0


async def _save(config: Config, changes: list[Change], source: str) -> None:
    async with open_store(config.store) as db:
        await save_overlay(db, {c.name: c.entry for c in changes}, source)


def register(sub: SubParsers) -> None:
    prices = sub.add_parser("prices", help="model prices: sync them from a maintained list")
    groups = prices.add_subparsers(dest="prices_command", metavar="COMMAND", required=True)
    p = config_command(
        groups, "sync", "update the catalogue overlay from LiteLLM's price list (network)"
    )
    p.add_argument(
        "source",
        nargs="?",
        default=LITELLM_URL,
        help="a model_prices_and_context_window.json file or http(s) URL (default: LiteLLM's)",
    )
    p.add_argument("--yes", action="store_true", help="store the changes (default: show them)")
    p.set_defaults(func=cmd_sync)
