"""Candidate selection: which models may serve a request, and in what order.

Pure functions over the config, a routing policy and a snapshot of availability; no
I/O. Every model left out is recorded with the reason, so a decision can always explain
itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from llmswitch.config import (
    BEST_LOCAL,
    FALLBACK_KEYWORDS,
    BackendConfig,
    Config,
    KeyPolicy,
    ModelConfig,
    ProfileConfig,
)
from llmswitch.routing.classify import QUALITY_FLOOR, Classification

LOCALITY_RANK = {"local": 0, "lan": 1, "cloud": 2}
#: Below this recent success rate a model is demoted behind every healthier candidate.
POOR_SUCCESS = 0.5
#: Times to first byte within the same step count as equally fast, so noise does not
#: reorder candidates on every request.
TTFB_STEP_MS = 100.0
#: Output tokens assumed when estimating a request's cost and the client set no limit.
DEFAULT_OUTPUT_TOKENS = 512


def model_scope(model_id: str) -> str:
    """The rate-limit scope of one model (a backend's scope is its bare name)."""
    return f"model:{model_id}"


def client_scope(name: str) -> str:
    """The rate-limit scope of one ``[[clients]]`` entry."""
    return f"client:{name}"


@dataclass(frozen=True)
class Availability:
    """What the request path knows of the world right now, read from the actors' views."""

    down: frozenset[str] = frozenset()
    open_breakers: frozenset[str] = frozenset()
    open_models: frozenset[str] = frozenset()
    limited: frozenset[str] = frozenset()
    budget_exceeded: bool = False
    #: Recent performance per model id, from the pool: time to first byte (ms) and the
    #: success rate; models not used yet are absent.
    ttfb_ms: Mapping[str, float] = field(default_factory=dict)
    success: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientKey:
    """A known client: its name and what its key may do."""

    name: str
    policy: KeyPolicy


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The operator's choices that shape ``auto`` (profile, overrides) and guard every path
    to a model (lists, metering, the client key's rights)."""

    profile_name: str = "balanced"
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    metered_cloud: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)
    allow_unpriced: bool = False
    client: ClientKey | None = None

    @classmethod
    def of(
        cls,
        config: Config,
        profile: str,
        overrides: dict[str, str],
        client: ClientKey | None = None,
        *,
        allow: tuple[str, ...] | None = None,
        block: tuple[str, ...] | None = None,
    ) -> Policy:
        """The policy for one request; ``allow`` and ``block`` replace the config's lists
        (with the values stored at run time)."""
        r = config.routing
        metered = r.metered_cloud
        if client is not None and client.policy.metered_cloud is not None:
            metered = client.policy.metered_cloud
        return cls(
            profile_name=profile,
            profile=config.all_profiles[profile],
            metered_cloud=metered,
            allow=r.allow if allow is None else allow,
            block=r.block if block is None else block,
            overrides=overrides,
            allow_unpriced=r.allow_unpriced,
            client=client,
        )

    def meters(self, task_type: str) -> bool:
        return "*" in self.metered_cloud or task_type in self.metered_cloud


@dataclass(frozen=True)
class Candidate:
    model: ModelConfig
    backend: BackendConfig

    @property
    def cloud(self) -> bool:
        return self.backend.locality == "cloud"

    @property
    def metered(self) -> bool:
        """Costs money per token: a priced model, or any cloud model (unpriced: at an
        unknown price, never free)."""
        return self.model.priced or self.cloud

    @property
    def unpriced(self) -> bool:
        return self.cloud and not self.model.priced


@dataclass(frozen=True)
class Refusal:
    """A guard's no: the error code an explicit request gets, and why."""

    code: str
    why: str


class Refused(Exception):
    """The model a client named is refused by a guard: 403, never swapped for another."""

    def __init__(self, model: str, refusal: Refusal) -> None:
        super().__init__(f"{model}: {refusal.why}")
        self.model = model
        self.refusal = refusal


def refused_because(cand: Candidate, policy: Policy, cls: Classification | None) -> Refusal | None:
    """The guards every path to a model obeys (explicit, alias, fallback, rule, override).

    ``cls`` may be None only when ``cand`` is neither cloud nor metered; otherwise the
    sensitive and metered checks need it (see :func:`needs_classification`).
    """
    model = cand.model
    if model.id in policy.block:
        return Refusal("model_blocked", "blocked by routing.block")
    if policy.allow and model.id not in policy.allow:
        return Refusal("model_blocked", "not in routing.allow")
    client = policy.client
    globs = client.policy.models if client is not None else ()
    if client is not None and globs and not any(fnmatchcase(model.id, g) for g in globs):
        return Refusal("key_not_allowed", f"not among the models of key {client.name}")
    if cand.cloud and (cls is None or cls.sensitive):
        return Refusal("sensitive_content", "sensitive request stays off cloud models")
    if cand.unpriced and not policy.allow_unpriced:
        return Refusal(
            "metered_cloud_not_allowed",
            "cloud model without a price (set its cost or routing.allow_unpriced)",
        )
    task = cls.task_type if cls is not None else "*"
    if cand.metered and not policy.meters(task):
        where = (
            f"key {client.name}"
            if client and client.policy.metered_cloud is not None
            else ("routing.metered_cloud")
        )
        return Refusal(
            "metered_cloud_not_allowed", f"metered cloud not enabled for {task} ({where})"
        )
    return None


def needs_classification(cands: Iterable[Candidate]) -> bool:
    """Whether guarding these takes the request's classification (sensitive, task type)."""
    return any(c.cloud or c.metered for c in cands)


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
    rule: str | None = None
    profile: str | None = None
    #: The profile's cap on ``max_tokens``, applied to the body sent upstream.
    max_tokens_cap: int | None = None
    #: A ``queue`` rule matched: wait this long for a candidate before failing.
    queue_s: float = 0.0
    #: The agent harness that sent the request and its conversation (routing.envelope).
    harness: str = "plain"
    conversation: str | None = None
    #: What conversation affinity did to an ``auto`` decision (routing.affinity); None
    #: when it did not apply (rules, explicit models, no conversation).
    affinity: str | None = None


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


def unavailable_because(cand: Candidate, avail: Availability, prompt_tokens: int = 0) -> str | None:
    """Why this candidate cannot serve now, or None if it can."""
    model, backend = cand.model, cand.backend
    if not model.enabled:
        return "disabled"
    if backend.name in avail.down:
        return f"backend {backend.name} is down"
    if backend.name in avail.open_breakers:
        return f"backend {backend.name} circuit breaker is open"
    if model.id in avail.open_models:
        return f"model {model.id} circuit breaker is open"
    if backend.name in avail.limited:
        return f"backend {backend.name} is rate-limited"
    if model_scope(model.id) in avail.limited:
        return f"model {model.id} is rate-limited"
    if avail.budget_exceeded and cand.metered:
        return "budget exceeded"
    # max_tokens is a ceiling, not a reservation: only a prompt that does not fit rules a
    # model out; the answer is capped to the room left (output_cap).
    if prompt_tokens >= model.context_window:
        return f"context window {model.context_window} <= {prompt_tokens} prompt tokens"
    return None


def output_cap(model: ModelConfig, prompt_tokens: int, max_tokens: int) -> int | None:
    """The ``max_tokens`` this model can give after the prompt, when less than asked.

    A harness's default (32k for opencode, 32k to 128k for Claude Code) would otherwise
    push a one-line ask off every small model. None when the ask fits (or set no limit).
    """
    room = max(1, model.context_window - prompt_tokens)
    return room if max_tokens > room else None


def estimated_cost(model: ModelConfig, prompt_tokens: int, max_tokens: int) -> float:
    return model.cost_usd(prompt_tokens, max_tokens or DEFAULT_OUTPUT_TOKENS)


def unfit_because(
    cand: Candidate, cls: Classification, policy: Policy, floor: int, max_tokens: int
) -> str | None:
    """Why ``auto`` must not pick this candidate for this request, or None."""
    model = cand.model
    refusal = refused_because(cand, policy, cls)
    if refusal is not None:
        return refusal.why
    if model.quality < floor:
        return f"quality {model.quality} < floor {floor}"
    if not model.can(cls.task_type):
        return f"not capable of {cls.task_type}"
    if cls.needs_tools and not model.can("tool-use"):
        return "not capable of tool-use (the request offers tools)"
    cap = policy.profile.max_cost_per_request
    output = output_cap(model, cls.token_estimate, max_tokens) or max_tokens
    if cap is not None and estimated_cost(model, cls.token_estimate, output) > cap:
        return f"estimated cost over the {policy.profile_name} profile's ${cap:g} per request"
    return None


def _filter(
    chain: Iterable[Candidate], avail: Availability, prompt_tokens: int
) -> tuple[list[Candidate], list[Exclusion]]:
    kept: list[Candidate] = []
    excluded: list[Exclusion] = []
    for cand in chain:
        why = unavailable_because(cand, avail, prompt_tokens)
        if why is None:
            kept.append(cand)
        else:
            excluded.append(Exclusion(cand.model.id, why))
    return kept, excluded


def unpriced_cloud_models(config: Config) -> list[str]:
    """Cloud models with no price: metered at an unknown cost (see ``allow_unpriced``)."""
    cloud = {b.name for b in config.backends if b.locality == "cloud"}
    return [m.id for m in config.models if m.backend in cloud and not m.priced]


def explicit_chain(catalog: Catalog, model: ModelConfig) -> list[Candidate]:
    """A named model, then its configured fallbacks."""
    chain = [catalog.candidate(model)]
    return chain + [catalog.candidate(catalog.by_name[fb]) for fb in model.fallbacks]


def decide_explicit(
    catalog: Catalog,
    model: ModelConfig,
    avail: Availability,
    tier: str = "explicit",
    reason: str | None = None,
    *,
    policy: Policy | None = None,
    cls: Classification | None = None,
) -> Decision:
    """A model the client (or a rule) named, then its configured fallbacks, all guarded.

    Raises Refused when the client named the model (tier ``explicit``) and a guard
    refuses it: its fallbacks do not stand in for a refusal, only for unavailability.
    """
    policy = policy or Policy()
    guarded: list[Candidate] = []
    excluded: list[Exclusion] = []
    for cand in explicit_chain(catalog, model):
        refusal = refused_because(cand, policy, cls)
        if refusal is None and avail.budget_exceeded and cand.metered:
            refusal = Refusal("budget_exceeded", "budget exceeded")
        if refusal is None:
            guarded.append(cand)
        elif tier == "explicit" and cand.model is model:
            raise Refused(model.id, refusal)
        else:
            excluded.append(Exclusion(cand.model.id, refusal.why))
    kept, unavailable = _filter(guarded, avail, 0)
    return Decision(
        tuple(kept),
        tier,
        reason or f"client asked for {model.id}",
        excluded=tuple(excluded + unavailable),
        classification=cls,
    )


def tier_floor(complexity: str, profile: ProfileConfig) -> int:
    """The quality a model needs for a complexity tier under ``profile``."""
    return max(0, QUALITY_FLOOR[complexity] + profile.floor_shift - profile.quality_tolerance)


def rank_key(
    cand: Candidate, ordering: str = "cost", avail: Availability | None = None
) -> tuple[float, ...]:
    """``cost``: local, then lan, then cloud; then the cheaper; then the faster to answer
    lately; then the smaller. Among models of equal price (free local ones, typically)
    the least capable one that still meets the floor is the cheapest in compute.
    ``quality``: the best model first, then the same order.

    Either way a model whose recent success rate fell below POOR_SUCCESS goes behind the
    healthy ones, and comes back as soon as its record recovers (seed 003's tracker).
    """
    m = cand.model
    avail = avail or Availability()
    demoted = float(avail.success.get(m.id, 1.0) < POOR_SUCCESS)
    speed = avail.ttfb_ms.get(m.id, 0.0) // TTFB_STEP_MS
    cost = m.cost_input_per_mtok + m.cost_output_per_mtok
    locality = LOCALITY_RANK[cand.backend.locality]
    if ordering == "quality":
        return (demoted, -m.quality, locality, cost, speed)
    return (demoted, locality, cost, speed, m.quality)


def decide_auto(
    catalog: Catalog,
    classification: Classification,
    avail: Availability,
    max_tokens: int = 0,
    policy: Policy | None = None,
) -> Decision:
    """The cheapest available model fit for the request under the policy's profile."""
    policy = policy or Policy()
    profile = policy.profile
    cls = classification
    floor = tier_floor(cls.complexity, profile)
    if profile.max_tokens is not None:
        max_tokens = min(max_tokens or profile.max_tokens, profile.max_tokens)
    fit: list[Candidate] = []
    excluded: list[Exclusion] = []
    for model in catalog.config.models:
        cand = catalog.candidate(model)
        why = unfit_because(cand, cls, policy, floor, max_tokens)
        if why is None:
            fit.append(cand)
        else:
            excluded.append(Exclusion(model.id, why))
    kept, unavailable = _filter(fit, avail, cls.token_estimate)
    kept.sort(key=lambda c: rank_key(c, profile.ordering, avail))
    override = policy.overrides.get(cls.task_type)
    if override is not None:
        kept.sort(key=lambda c: c.model.id != override)
    reason = (
        f"{cls.complexity} {cls.task_type} (confidence {cls.confidence:.2f}), "
        f"profile {policy.profile_name}: quality floor {floor}"
    )
    if override is not None and kept and kept[0].model.id == override:
        reason += f", override {cls.task_type} → {override}"
    return Decision(
        tuple(kept),
        "classifier",
        reason,
        tuple(excluded + unavailable),
        cls,
        profile=policy.profile_name,
        max_tokens_cap=profile.max_tokens,
    )


def fallback_candidate(catalog: Catalog) -> Candidate | None:
    """``routing.fallback_model`` when it names a model (not ``best-local`` or ``none``)."""
    name = catalog.config.routing.fallback_model
    return None if name in FALLBACK_KEYWORDS else catalog.candidate(catalog.by_name[name])


def best_local(
    catalog: Catalog, avail: Availability, policy: Policy, cls: Classification | None
) -> Candidate | None:
    """The most capable self-hosted (local or lan) model that can serve now and the guards
    let through; one fit for the task type first."""
    usable = [
        cand
        for cand in map(catalog.candidate, catalog.config.models)
        if cand.backend.locality != "cloud"
        and refused_because(cand, policy, cls) is None
        and unavailable_because(cand, avail, cls.token_estimate if cls else 0) is None
    ]
    return max(
        usable,
        key=lambda c: (cls is None or c.model.can(cls.task_type), c.model.quality),
        default=None,
    )


def with_fallback(
    catalog: Catalog, decision: Decision, avail: Availability, policy: Policy | None = None
) -> Decision:
    """Tier 3: when nothing is left, ``routing.fallback_model`` if it can serve and the
    guards let it. ``best-local`` stands in for ``auto`` only (a model the client named
    is not swapped for a weaker one); a named fallback model serves either."""
    policy = policy or Policy()
    setting = catalog.config.routing.fallback_model
    if decision.candidates or (setting == BEST_LOCAL and decision.tier != "classifier"):
        return decision
    if setting == BEST_LOCAL:
        cand = best_local(catalog, avail, policy, decision.classification)
        if cand is None:
            none_left = Exclusion(BEST_LOCAL, "fallback: no local model can serve now")
            return replace(decision, excluded=(*decision.excluded, none_left))
        reason = f"no model meets the floor; the best local model, {cand.model.id}, answers"
        return replace(
            decision, candidates=(cand,), tier="fallback", reason=f"{decision.reason}; {reason}"
        )
    cand = fallback_candidate(catalog)
    if cand is None:
        return decision
    name = cand.model.id
    refusal = refused_because(cand, policy, decision.classification)
    why = refusal.why if refusal is not None else unavailable_because(cand, avail)
    if why is not None:
        excluded = (*decision.excluded, Exclusion(name, f"fallback model: {why}"))
        return replace(decision, excluded=excluded)
    return replace(
        decision,
        candidates=(cand,),
        tier="fallback",
        reason=f"{decision.reason}; no candidate left, fallback model {name}",
    )
