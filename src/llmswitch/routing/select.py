"""Candidate selection: which models may serve a request, and in what order.

Pure functions over the config and a snapshot of availability; no I/O. Every model left
out is recorded with the reason, so a decision can always explain itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from llmswitch.config import BackendConfig, Config, ModelConfig
from llmswitch.routing.classify import QUALITY_FLOOR, Classification

LOCALITY_RANK = {"local": 0, "lan": 1, "cloud": 2}


@dataclass(frozen=True)
class Availability:
    """What the request path knows of the world right now, read from the actors' views."""

    down: frozenset[str] = frozenset()
    open_breakers: frozenset[str] = frozenset()
    limited: frozenset[str] = frozenset()
    budget_exceeded: bool = False


@dataclass(frozen=True)
class Candidate:
    model: ModelConfig
    backend: BackendConfig


@dataclass(frozen=True)
class Exclusion:
    model: str
    why: str


@dataclass(frozen=True)
class Decision:
    candidates: tuple[Candidate, ...]
    tier: str
    reason: str
    excluded: tuple[Exclusion, ...] = ()
    classification: Classification | None = None


@dataclass(frozen=True)
class Catalog:
    """The config's models indexed for lookup by id or alias."""

    config: Config
    by_name: dict[str, ModelConfig] = field(default_factory=dict)
    backends: dict[str, BackendConfig] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config) -> Catalog:
        by_name: dict[str, ModelConfig] = {}
        for m in config.models:
            by_name[m.id] = m
            by_name.update(dict.fromkeys(m.aliases, m))
        return cls(config, by_name, {b.name: b for b in config.backends})

    def candidate(self, model: ModelConfig) -> Candidate:
        return Candidate(model, self.backends[model.backend])


def unavailable_because(
    cand: Candidate, avail: Availability, prompt_tokens: int = 0, max_tokens: int = 0
) -> str | None:
    """Why this candidate cannot serve now, or None if it can."""
    model, backend = cand.model, cand.backend
    if not model.enabled:
        return "disabled"
    if backend.name in avail.down:
        return f"backend {backend.name} is down"
    if backend.name in avail.open_breakers:
        return f"backend {backend.name} circuit breaker is open"
    if backend.name in avail.limited:
        return f"backend {backend.name} is rate-limited"
    if avail.budget_exceeded and (model.priced or backend.locality == "cloud"):
        return "budget exceeded"
    if prompt_tokens + max_tokens > model.context_window:
        return f"context window {model.context_window} < {prompt_tokens + max_tokens} tokens"
    return None


def _filter(
    chain: Iterable[Candidate], avail: Availability, prompt_tokens: int, max_tokens: int
) -> tuple[list[Candidate], list[Exclusion]]:
    kept: list[Candidate] = []
    excluded: list[Exclusion] = []
    for cand in chain:
        why = unavailable_because(cand, avail, prompt_tokens, max_tokens)
        if why is None:
            kept.append(cand)
        else:
            excluded.append(Exclusion(cand.model.id, why))
    return kept, excluded


def decide_explicit(
    catalog: Catalog, model: ModelConfig, avail: Availability, max_tokens: int = 0
) -> Decision:
    """A model the client named (or an alias of it), then its configured fallbacks."""
    chain = [catalog.candidate(model)]
    chain += [catalog.candidate(catalog.by_name[fb]) for fb in model.fallbacks]
    kept, excluded = _filter(chain, avail, 0, max_tokens)
    return Decision(
        tuple(kept), "explicit", f"client asked for {model.id}", excluded=tuple(excluded)
    )


def rank_key(cand: Candidate) -> tuple[int, float, int]:
    """Prefer local, then lan, then cloud; then the cheaper; then the smaller.

    Among models of equal price (free local ones, typically) the least capable one that
    still meets the floor is the cheapest in compute and the fastest to answer.
    """
    m = cand.model
    cost = m.cost_input_per_mtok + m.cost_output_per_mtok
    return (LOCALITY_RANK[cand.backend.locality], cost, m.quality)


def decide_auto(
    catalog: Catalog, classification: Classification, avail: Availability, max_tokens: int = 0
) -> Decision:
    """The cheapest available model whose quality meets the classification's floor."""
    floor = QUALITY_FLOOR[classification.complexity]
    capable: list[Candidate] = []
    excluded: list[Exclusion] = []
    for model in catalog.config.models:
        if model.quality < floor:
            excluded.append(Exclusion(model.id, f"quality {model.quality} < floor {floor}"))
        else:
            capable.append(catalog.candidate(model))
    kept, unavailable = _filter(capable, avail, classification.token_estimate, max_tokens)
    kept.sort(key=rank_key)
    reason = (
        f"{classification.complexity} ({classification.task_type}, "
        f"confidence {classification.confidence:.2f}): quality floor {floor}"
    )
    return Decision(
        tuple(kept), "classifier", reason, tuple(excluded + unavailable), classification
    )
