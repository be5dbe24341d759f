"""``llmswitch models``: the configured models, and what an Ollama box on the LAN offers.

``--discover`` asks each Ollama backend's ``/api/tags``, then ``/api/show`` for every
model not configured yet: its context length, capabilities, and a quality derived from
its size and family (:mod:`llmswitch.providers.ollama`; for the user to judge).
``--write`` appends a ``[[models]]`` entry for each to the config file; embedding models
are skipped. What a backend names its models is untrusted text: a name that is not a
string, or not a token (see :mod:`routing.patterns`), is skipped, and entries are
written by a TOML encoder, never by string formatting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx
import tomli_w
import trio

from llmswitch.cli.common import EXIT_CONFIG, SubParsers, config_command, fail, offline
from llmswitch.cli.routing import print_json, refuse
from llmswitch.cli.table import table
from llmswitch.config import (
    DEFAULT_UPSTREAM_LIMITS,
    TASK_TYPES,
    BackendConfig,
    Config,
    ModelConfig,
)
from llmswitch.providers.bounded import read_capped
from llmswitch.providers.catalogue import capabilities
from llmswitch.providers.common import UpstreamFormatError, parse_json
from llmswitch.providers.ollama import ModelFacts, derived_quality, features, parse_show
from llmswitch.routing.patterns import token_problem

DISCOVER_TIMEOUT_S = 5.0
DISCOVERED_QUALITY = 30


def _root(backend: BackendConfig) -> str:
    return backend.base_url.rstrip("/").removesuffix("/v1")


def tags_url(backend: BackendConfig) -> str:
    return _root(backend) + "/api/tags"


def show_url(backend: BackendConfig) -> str:
    return _root(backend) + "/api/show"


async def fetch_tags(backends: list[BackendConfig]) -> dict[str, list[str] | str]:
    """Model names per backend, or the error text for a backend that did not answer."""
    found: dict[str, list[str] | str] = {}
    async with httpx.AsyncClient(timeout=DISCOVER_TIMEOUT_S) as client:

        async def one(b: BackendConfig) -> None:
            try:
                async with client.stream("GET", tags_url(b), headers=b.auth_headers()) as resp:
                    resp.raise_for_status()
                    raw = await read_capped(resp, DEFAULT_UPSTREAM_LIMITS.answer_bytes)
                listed = parse_json(raw).get("models", [])
                found[b.name] = [m["name"] for m in listed if isinstance(m.get("name"), str)]
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
                found[b.name] = f"{type(exc).__name__}: {exc}"

        async with trio.open_nursery() as nursery:
            for b in backends:
                nursery.start_soon(one, b)
    return found


Facts = dict[tuple[str, str], ModelFacts | str]


async def fetch_facts(backends: list[BackendConfig], entries: list[dict[str, Any]]) -> Facts:
    """/api/show for each entry, one at a time per backend; the error text for a failure."""
    by_name = {b.name: b for b in backends}
    facts: Facts = {}
    async with httpx.AsyncClient(timeout=DISCOVER_TIMEOUT_S) as client:

        async def one(b: BackendConfig) -> None:
            for name in (e["upstream"] for e in entries if e["backend"] == b.name):
                try:
                    body = {"model": name}
                    async with client.stream(
                        "POST", show_url(b), json=body, headers=b.auth_headers()
                    ) as resp:
                        resp.raise_for_status()
                        raw = await read_capped(resp, DEFAULT_UPSTREAM_LIMITS.answer_bytes)
                    facts[b.name, name] = parse_show(parse_json(raw))
                except (httpx.HTTPError, UpstreamFormatError) as exc:
                    facts[b.name, name] = f"{type(exc).__name__}: {exc}"

        async with trio.open_nursery() as nursery:
            for name in {e["backend"] for e in entries}:
                nursery.start_soon(one, by_name[name])
    return facts


def described(entry: dict[str, Any], facts: ModelFacts) -> dict[str, Any]:
    """A discovered entry with what /api/show told: quality, context, capabilities."""
    fields: dict[str, Any] = {}
    quality = derived_quality(facts)
    if quality is not None:
        fields["quality"] = quality
    if facts.context_length is not None:
        fields["context_window"] = facts.context_length
    has = features(facts)
    fit = capabilities(has, TASK_TYPES) if has is not None else []
    if fit:
        fields["capabilities"] = fit
    return entry | fields


def with_facts(entries: list[dict[str, Any]], facts: Facts) -> list[dict[str, Any]]:
    """Entries described by their facts; embedding models (they cannot chat) left out."""
    out = []
    for entry in entries:
        known = facts.get((entry["backend"], entry["upstream"]))
        if isinstance(known, ModelFacts):
            if not known.chat:
                continue
            entry = described(entry, known)
        out.append(entry)
    return out


def new_models(config: Config, found: dict[str, list[str] | str]) -> list[dict[str, Any]]:
    """Entries for discovered models no configured model already points at."""
    taken = {m.id for m in config.models} | {a for m in config.models for a in m.aliases}
    known = {(m.backend, m.upstream_name) for m in config.models}
    known |= {(b, n.removesuffix(":latest")) for b, n in known}
    entries = []
    for backend, names in found.items():
        if isinstance(names, str):
            continue
        for name in names:
            if (backend, name) in known or (backend, name.removesuffix(":latest")) in known:
                continue
            model_id = name.removesuffix(":latest")
            if model_id in taken:
                model_id = f"{backend}-{model_id}"
            if token_problem(name) or token_problem(model_id):
                continue
            taken.add(model_id)
            entries.append(
                {
                    "id": model_id,
                    "backend": backend,
                    "upstream": name,
                    "quality": DISCOVERED_QUALITY,
                }
            )
    return entries


def toml_entries(entries: list[dict[str, Any]]) -> str:
    """``[[models]]`` tables to append; keys and values (flat) encoded by tomli-w, which
    would write an array of tables inline, hence the header by hand."""
    return "".join(
        "\n[[models]]  # discovered by `llmswitch models --discover`; judge its quality\n"
        + tomli_w.dumps(entry)
        for entry in entries
    )


def _status(backend: str, name: str, new: dict[tuple[str, str], Any], facts: Facts) -> str:
    entry = new.get((backend, name))
    if entry is not None:
        return f"new: quality {entry['quality']}, context {entry.get('context_window', '?')}"
    known = facts.get((backend, name))
    if isinstance(known, ModelFacts) and not known.chat:
        return "skipped: embedding model"
    problem = token_problem(name)
    return f"skipped: {problem}" if problem else "configured"


def discover(
    config: Config, config_path: Path, backend: str | None, write: bool, as_json: bool
) -> int:
    chosen = [b for b in config.backends if b.kind == "ollama" and backend in (None, b.name)]
    if not chosen:
        print('llmswitch: no Ollama backend to ask (kind = "ollama")')
        return 1
    found = trio.run(fetch_tags, chosen)
    entries = new_models(config, found)
    facts = trio.run(fetch_facts, chosen, entries)
    entries = with_facts(entries, facts)
    if as_json:
        print(json.dumps({"found": found, "new": entries}, indent=2))
    else:
        new = {(e["backend"], e["upstream"]): e for e in entries}
        rows: list[list[str]] = []
        for name, names in found.items():
            if isinstance(names, str):
                rows.append([name, "-", f"unreachable: {names}"])
                continue
            # A lone surrogate cannot be printed: show it escaped.
            shown = [n.encode("utf-8", "backslashreplace").decode() for n in names]
            rows += [
                [name, m, _status(name, n, new, facts)] for n, m in zip(names, shown, strict=True)
            ]
        print(table(["backend", "model", "status"], rows))
    if write and entries:
        with config_path.open("a", encoding="utf-8") as f:
            f.write(toml_entries(entries))
        if not as_json:
            print(f"added {len(entries)} model(s) to {config_path}")
    return 0 if all(not isinstance(v, str) for v in found.values()) else 1


def model_row(config: Config, m: ModelConfig) -> dict[str, Any]:
    return {
        "id": m.id,
        "backend": m.backend,
        "locality": config.backend(m.backend).locality,
        "upstream": m.upstream_name,
        "quality": m.quality,
        "context_window": m.context_window,
        "cost_input_per_mtok": m.cost_input_per_mtok,
        "cost_output_per_mtok": m.cost_output_per_mtok,
        "aliases": list(m.aliases),
        "capabilities": list(m.capabilities),
        "enabled": m.enabled,
    }


def models(config: Config, backend: str | None = None, as_json: bool = False) -> int:
    if backend is not None and backend not in {b.name for b in config.backends}:
        names = ", ".join(b.name for b in config.backends) or "none configured"
        return refuse(f"no backend named {backend!r}; one of {names}", as_json, "bad_backend")
    rows = [model_row(config, m) for m in config.models if backend in (None, m.backend)]
    if as_json:
        print_json(rows)
        return 0
    headers = ["ID", "BACKEND", "LOCALITY", "UPSTREAM", "QUALITY", "CONTEXT"]
    headers += ["$IN/MTOK", "$OUT/MTOK", "ALIASES", "CAPABILITIES", "ENABLED"]
    cells = [
        (
            r["id"],
            r["backend"],
            r["locality"],
            r["upstream"],
            r["quality"],
            r["context_window"],
            r["cost_input_per_mtok"],
            r["cost_output_per_mtok"],
            ", ".join(r["aliases"]) or "-",
            ", ".join(r["capabilities"]) or "all",
            r["enabled"],
        )
        for r in rows
    ]
    print(table(headers, cells, empty="no models configured"))
    return 0


def _models(config: Config, args: argparse.Namespace) -> int:
    if args.write and not args.discover:
        return fail("--write goes with --discover: it writes the models discovered", EXIT_CONFIG)
    if args.discover:
        return discover(config, Path(args.config), args.backend, args.write, args.json)
    return models(config, args.backend, args.json)


#: A config with backends and no model yet is where discovery starts.
cmd_models = offline(_models, need_models=False)


def register(sub: SubParsers) -> None:
    p = config_command(sub, "models", "the configured models")
    p.add_argument("--backend", help="only this backend's models")
    p.add_argument(
        "--discover", action="store_true", help="ask Ollama backends what they serve (network)"
    )
    p.add_argument(
        "--write", action="store_true", help="with --discover: add new models to the config"
    )
    p.set_defaults(func=cmd_models)
