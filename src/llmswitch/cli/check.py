"""``llmswitch check``: lint the config, then probe every backend live, with a hint each.

The config is validated as ``serve`` would (a bad one exits 2, its errors naming the
keys). Then every backend's model listing is fetched once (``health.timeout_s`` on each
connect and read, at most :data:`LIST_BYTES` read) and each enabled model gets a verdict:
served, or why not, with what to do about it. The verdicts and hints are pure functions
of the probe results (:func:`model_verdicts`, :func:`warnings`); only :func:`probe` does
I/O.

Exits 1 when a configured (enabled) model cannot be served: its backend failed, an
Ollama box does not have it, or it is an unpriced cloud model the routing will not use.
Warnings (a routing tier no model meets, a name a cloud provider does not list) do not
change the exit code.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from llmswitch.actors.health import probe_headers, probe_paths
from llmswitch.cli.common import EXIT_FAILED, SubParsers, config_command, offline
from llmswitch.cli.table import table
from llmswitch.config import BackendConfig, Config, ModelConfig
from llmswitch.providers.bounded import read_capped
from llmswitch.providers.common import UpstreamFormatError, UpstreamOverLimit, parse_json
from llmswitch.providers.scrub import Scrubber
from llmswitch.selfcheck import tiers_without_model

#: The most of a model listing read (OpenRouter lists hundreds of models).
LIST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Probe:
    """One backend's answer: the names it lists (None: unknown), or what failed and why."""

    backend: str
    url: str
    listed: frozenset[str] | None = None
    problem: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Verdict:
    model: str
    backend: str
    served: bool
    why: str


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is among the causes of ``exc`` (trio's connect wraps them in a group)."""
    todo: list[BaseException] = [exc]
    visited: set[int] = set()
    while todo:
        seen = todo.pop()
        if id(seen) in visited:
            continue
        visited.add(id(seen))
        if isinstance(seen, kind):
            return True
        if isinstance(seen, BaseExceptionGroup):
            todo += seen.exceptions
        todo += [e for e in (seen.__cause__, seen.__context__) if e is not None]
    return False


def error_hint(backend: BackendConfig, exc: httpx.HTTPError, timeout_s: float) -> tuple[str, str]:
    """(what failed, what to do) for a probe that got no answer."""
    where = _where(backend.base_url)
    server = "Ollama" if backend.kind == "ollama" else "the server"
    if isinstance(exc, httpx.TimeoutException):
        return (
            "timeout",
            f"no answer within {timeout_s:g} s (health.timeout_s): is {where} up and reachable?",
        )
    if _caused_by(exc, socket.gaierror):
        host = urlsplit(backend.base_url).hostname
        return "DNS failure", f"cannot resolve {host!r}: check base_url"
    if _caused_by(exc, ConnectionRefusedError):
        return "connection refused", f"is {server} running on {where}?"
    return type(exc).__name__, f"cannot reach {where}: check base_url"


def status_hint(backend: BackendConfig, status: int) -> str:
    """What to do about an HTTP error status from a backend's model listing."""
    env = backend.api_key_env
    if status in (401, 403) or (status == 400 and backend.kind == "gemini"):
        if env is None:
            return "the backend wants a key: set api_key_env to the variable holding it"
        if backend.api_key() is None:
            return f"is {env} set? it is not set in this environment"
        return f"the key in {env} was refused: is it the right one?"
    if status == 404:
        return f"nothing at {backend.base_url}: is base_url right (with its /v1)?"
    if status == 429:
        return "rate-limited right now: try again later"
    return "the backend is failing: see its logs"


def listed_names(kind: str, body: Any) -> frozenset[str] | None:
    """Model names in a listing: OpenAI/Anthropic ``data[].id``, Gemini ``models[].name``,
    Ollama ``models[].name``; None when the body is none of these."""
    if not isinstance(body, dict):
        return None
    items = body.get("data") if kind != "gemini" else body.get("models")
    if not isinstance(items, list):
        return None
    key = "name" if kind == "gemini" else "id"
    names = (i.get(key) for i in items if isinstance(i, dict))
    return frozenset(n.removeprefix("models/") for n in names if isinstance(n, str))


async def probe(client: httpx.AsyncClient, backend: BackendConfig) -> Probe:
    """Fetch ``backend``'s model listing once; never raises for what the backend does."""
    url = probe_paths(backend)[0]
    headers = backend.auth_headers() | probe_headers(backend)
    params = {"api-version": backend.api_version} if backend.api_version else None
    scrub = Scrubber(backend.api_key()).text
    try:
        async with client.stream("GET", url, headers=headers, params=params) as resp:
            if resp.status_code >= 300:
                problem = f"HTTP {resp.status_code}"
                return Probe(
                    backend.name, url, None, problem, status_hint(backend, resp.status_code)
                )
            raw = await read_capped(resp, LIST_BYTES)
    except httpx.HTTPError as exc:
        problem, hint = error_hint(backend, exc, client.timeout.read or 0.0)
        return Probe(backend.name, url, None, f"{problem}: {scrub(str(exc))}", hint)
    except UpstreamOverLimit:
        raw = b""  # it answers; the listing is too big to check names
    try:
        listed = listed_names(backend.kind, parse_json(raw))
    except UpstreamFormatError:
        listed = None
    env = backend.api_key_env
    if env is not None and backend.api_key() is None:  # a public listing, a private chat
        hint = f"{env} is named by api_key_env but not set: export it before `llmswitch serve`"
        return Probe(backend.name, url, listed, "key not set", hint)
    return Probe(backend.name, url, listed)


async def probe_all(backends: Sequence[BackendConfig], timeout_s: float) -> list[Probe]:
    """Every backend probed at once, each within ``timeout_s`` per connect and read."""
    found: dict[str, Probe] = {}
    async with httpx.AsyncClient(timeout=timeout_s) as client:

        async def one(b: BackendConfig) -> None:
            found[b.name] = await probe(client, b)

        async with trio.open_nursery() as nursery:
            for b in backends:
                nursery.start_soon(one, b)
    return [found[b.name] for b in backends]


def _listed(model: ModelConfig, listed: frozenset[str]) -> bool:
    """Listed as is, or as Ollama's ``:latest`` of it."""
    name = model.upstream_name
    return name in listed or (":" not in name and f"{name}:latest" in listed)


def _cloud_listed(model: ModelConfig, listed: frozenset[str]) -> bool:
    """Listed, or an alias of a dated version listed (``claude-sonnet-4-5`` for
    ``claude-sonnet-4-5-20250929``): providers list versions, not their aliases."""
    name = model.upstream_name
    return name in listed or any(n.startswith(f"{name}-") for n in listed)


def model_verdicts(config: Config, probes: Iterable[Probe]) -> list[Verdict]:
    """Every enabled model: served, or why not."""
    by_name = {p.backend: p for p in probes}
    verdicts = []
    for m in config.models:
        if not m.enabled:
            continue
        backend = config.backend(m.backend)
        p = by_name[m.backend]
        cloud = backend.locality == "cloud"
        if not p.ok:
            verdict = Verdict(m.id, m.backend, False, f"backend {m.backend}: {p.problem}")
        elif cloud and not m.priced and not config.routing.allow_unpriced:
            why = (
                "cloud model without a price is never routed: set cost_input_per_mtok and"
                " cost_output_per_mtok, run `llmswitch prices sync`, or routing.allow_unpriced"
            )
            verdict = Verdict(m.id, m.backend, False, why)
        elif p.listed is not None and not _listed(m, p.listed) and not cloud:
            pull = f" (`ollama pull {m.upstream_name}`?)" if backend.kind == "ollama" else ""
            why = f"{m.backend} does not serve {m.upstream_name!r}{pull}"
            verdict = Verdict(m.id, m.backend, False, why)
        else:
            verdict = Verdict(m.id, m.backend, True, "ok")
        verdicts.append(verdict)
    return verdicts


def warnings(config: Config, probes: Iterable[Probe], verdicts: Iterable[Verdict]) -> list[str]:
    """What works but may surprise: an unlisted cloud name, a tier no served model meets
    (cloud models count where ``auto`` may use them) when nothing falls back."""
    found = []
    by_name = {p.backend: p for p in probes}
    cloud = {b.name for b in config.backends if b.locality == "cloud"}
    for m in config.models:
        p = by_name[m.backend]
        unlisted = p.listed is not None and not _cloud_listed(m, p.listed)
        if m.enabled and m.backend in cloud and unlisted:
            found.append(f"{m.id}: {m.backend} does not list {m.upstream_name!r}; check the name")
    served = {v.model for v in verdicts if v.served}
    # Under `auto`, metered cloud models answer only the task types routing.metered_cloud names.
    metered = bool(config.routing.metered_cloud)
    usable = [m for m in config.models if m.id in served and (metered or m.backend not in cloud)]
    return found + tiers_without_model(config, usable)


def render(config: Config, probes: list[Probe], verdicts: list[Verdict], warns: list[str]) -> str:
    lines = [f"config: ok ({len(config.backends)} backends, {len(config.models)} models)", ""]
    rows = [[p.backend, p.url, "ok" if p.ok else str(p.problem), p.hint or "-"] for p in probes]
    lines.append(table(["BACKEND", "PROBED", "RESULT", "HINT"], rows, empty="no backends"))
    lines.append("")
    rows = [[v.model, v.backend, "served" if v.served else "NOT SERVED", v.why] for v in verdicts]
    lines.append(table(["MODEL", "BACKEND", "STATUS", "WHY"], rows, empty="no enabled models"))
    lines += [f"warning: {w}" for w in warns]
    return "\n".join(lines)


@offline
def cmd_check(config: Config, args: argparse.Namespace) -> int:
    probes = trio.run(probe_all, config.backends, config.health.timeout_s)
    verdicts = model_verdicts(config, probes)
    warns = warnings(config, probes, verdicts)
    if args.json:
        report = {
            "backends": [asdict(p) | {"listed": None, "ok": p.ok} for p in probes],
            "models": [asdict(v) for v in verdicts],
            "warnings": warns,
        }
        print(json.dumps(report, indent=2))
    else:
        print(render(config, probes, verdicts, warns))
    return 0 if all(v.served for v in verdicts) else EXIT_FAILED


def register(sub: SubParsers) -> None:
    p = config_command(sub, "check", "lint the config, then probe every backend (network)")
    p.set_defaults(func=cmd_check)
