"""The routing brain: rules → classification → selection → fallback, as pure steps.

Classification may need a round trip to the classifier actor, so the brain is split in
two: :func:`plan` runs tier 1 and says whether a classification is needed; :func:`finish`
completes the decision with it. The router actor awaits the classifier between the two;
the offline CLI classifies inline. Both get the same answer for the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from llmswitch.config import BudgetConfig, Config, ModelConfig, RuleConfig
from llmswitch.routing.classify import Classification
from llmswitch.routing.profiles import requested_profile
from llmswitch.routing.rules import Features, first_match
from llmswitch.routing.select import (
    Availability,
    Catalog,
    ClientKey,
    Decision,
    Policy,
    Refusal,
    Refused,
    decide_auto,
    decide_explicit,
    explicit_chain,
    fallback_candidate,
    needs_classification,
    with_fallback,
)


class UnknownModel(LookupError):
    """The client named a model that is neither configured, an alias, nor ``auto``."""


@dataclass
class Rejected(Exception):
    """A ``reject`` rule matched."""

    rule: str
    status: int
    message: str


@dataclass(frozen=True)
class RoutingSettings:
    """The run-time routing state: the active profile, overrides, rules, allow and block
    lists and global budgets in force (built by :func:`llmswitch.routing.live.merged`)."""

    profile: str
    overrides: dict[str, str]
    rules: tuple[RuleConfig, ...]
    stored_rules: tuple[str, ...] = ()
    # Required, so no caller can leave the config's lists and budgets out by mistake.
    allow: tuple[str, ...] = field(kw_only=True)
    block: tuple[str, ...] = field(kw_only=True)
    budget: BudgetConfig = field(kw_only=True)
    #: The keys whose value in force is stored at run time rather than the file's.
    stored: frozenset[str] = field(default=frozenset(), kw_only=True)

    def policy(self, config: Config, profile: str, client: ClientKey | None) -> Policy:
        return Policy.of(
            config, profile, self.overrides, client, allow=self.allow, block=self.block
        )


@dataclass(frozen=True)
class Signals:
    """Hints a caller of /v1/route may give instead of letting the router infer them."""

    task_type: str | None = None
    token_estimate: int | None = None


@dataclass(frozen=True)
class RouteRequest:
    model: str
    features: Features
    max_tokens: int = 0
    profile_header: str | None = None
    signals: Signals = field(default_factory=Signals)
    #: The client key the request came with, whose rights guard every candidate.
    client: ClientKey | None = None


@dataclass(frozen=True)
class Named:
    """A model named by the client or by a rule, to be guarded once classified."""

    model: ModelConfig
    tier: str
    reason: str | None


@dataclass(frozen=True)
class NeedsClassification:
    """Tier 1 sent the request on to tier 2 under this profile (or, with ``named``, needs
    the classification to guard a named model that may be cloud or metered)."""

    profile: str
    rule: str | None
    queue_s: float
    named: Named | None = None
    #: The profile the request asked for (None: an explicit model).
    asked_profile: str | None = None


Plan = Decision | NeedsClassification


def self_model(config: Config) -> ModelConfig | None:
    """``routing.self_model``, or else the least capable enabled local model."""
    if config.routing.self_model is not None:
        return next(m for m in config.models if m.id == config.routing.self_model)
    local = {b.name for b in config.backends if b.locality == "local"}
    enabled = [m for m in config.models if m.enabled]
    pool = [m for m in enabled if m.backend in local] or enabled
    return min(pool, key=lambda m: m.quality, default=None)


def _tagged(decision: Decision, req: RouteRequest) -> Decision:
    """The decision with the harness and conversation it was made for, for the ledger."""
    f = req.features
    return replace(decision, harness=f.harness, conversation=f.conversation)


def plan(
    catalog: Catalog, settings: RoutingSettings, req: RouteRequest, avail: Availability
) -> Plan:
    """Tier 1. Raises UnknownModel, UnknownProfile or Rejected when the request is refused."""
    config = catalog.config
    profile = requested_profile(
        req.model, req.profile_header, settings.profile, config.all_profiles, catalog.by_name
    )
    if profile is None and req.model not in catalog.by_name:
        raise UnknownModel(req.model)
    profile = client_profile(req.client, profile)
    # Rules without a `model` condition shape `auto` only; an explicit request is
    # honoured unless a rule names its model.
    rules = settings.rules if profile else [r for r in settings.rules if r.model]
    rule = first_match(rules, req.features)
    name = rule.name if rule else None
    if rule is not None and rule.action == "reject":
        raise Rejected(rule.name, rule.status, rule.message or f"rejected by rule {rule.name}")
    if rule is not None and rule.action in ("route_self", "route"):
        target = catalog.by_name[rule.target] if rule.target else self_model(config)
        if target is not None:
            why = f"rule {rule.name}: {rule.action} → {target.id}"
            named = Named(target, "rules", why)
            step = NeedsClassification(settings.profile, name, 0.0, named, profile)
            return _named(catalog, settings, req, step, None, avail)
    queue_s = rule.queue_s if rule is not None and rule.action == "queue" else 0.0
    if profile is None:
        named = Named(catalog.by_name[req.model], "explicit", None)
        step = NeedsClassification(settings.profile, name, queue_s, named)
        return _named(catalog, settings, req, step, None, avail)
    return NeedsClassification(profile, name, queue_s)


def client_profile(client: ClientKey | None, profile: str | None) -> str | None:
    """The profile an ``auto`` request runs under for this key (forced, or allowed)."""
    if client is None or profile is None:
        return profile
    if client.policy.force_profile is not None:
        return client.policy.force_profile
    if client.policy.profiles and profile not in client.policy.profiles:
        raise Refused(
            f"auto:{profile}",
            Refusal("key_not_allowed", f"key {client.name} may not use profile {profile}"),
        )
    return profile


def _named(
    catalog: Catalog,
    settings: RoutingSettings,
    req: RouteRequest,
    step: NeedsClassification,
    cls: Classification | None,
    avail: Availability,
) -> Plan:
    """A named model and its fallbacks, guarded; first asks for the classification when a
    guard needs it."""
    assert step.named is not None
    named = step.named
    chain = explicit_chain(catalog, named.model)
    fallback = fallback_candidate(catalog)
    if cls is None and needs_classification([*chain, *([fallback] if fallback else [])]):
        return step
    policy = settings.policy(catalog.config, step.profile, req.client)
    d = decide_explicit(
        catalog,
        named.model,
        avail,
        named.tier,
        named.reason,
        policy=policy,
        cls=cls,
    )
    d = replace(d, rule=step.rule, queue_s=step.queue_s, profile=step.asked_profile)
    return _tagged(with_fallback(catalog, d, avail, policy), req)


def finish(
    catalog: Catalog,
    settings: RoutingSettings,
    req: RouteRequest,
    step: NeedsClassification,
    cls: Classification,
    avail: Availability,
) -> Decision:
    """Tiers 2 and 3, given the request's classification."""
    if req.signals.task_type is not None:
        cls = replace(cls, task_type=req.signals.task_type)  # type: ignore[arg-type]
    if req.signals.token_estimate is not None:
        cls = replace(cls, token_estimate=req.signals.token_estimate)
    if step.named is not None:
        named = _named(catalog, settings, req, step, cls, avail)
        assert isinstance(named, Decision)
        return named
    policy = settings.policy(catalog.config, step.profile, req.client)
    d = decide_auto(catalog, cls, avail, req.max_tokens, policy)
    d = with_fallback(catalog, replace(d, rule=step.rule, queue_s=step.queue_s), avail, policy)
    return _tagged(d, req)


def decide_now(
    catalog: Catalog,
    settings: RoutingSettings,
    req: RouteRequest,
    avail: Availability,
    classify: Callable[[], Classification],
) -> Decision:
    """The whole decision in one call, classifying (only if needed) with ``classify``."""
    step = plan(catalog, settings, req, avail)
    if isinstance(step, Decision):
        return step
    return finish(catalog, settings, req, step, classify(), avail)


def describe_decision(decision: Decision) -> dict[str, Any]:
    """A decision as /v1/route (and ``llmswitch route --json``) answers it."""
    first = decision.candidates[0] if decision.candidates else None
    cls = decision.classification
    return {
        "model": first.model.id if first else None,
        "backend": first.backend.name if first else None,
        "locality": first.backend.locality if first else None,
        "tier": decision.tier,
        "rule": decision.rule,
        "profile": decision.profile,
        "classification": None
        if cls is None
        else {
            "complexity": cls.complexity,
            "task_type": cls.task_type,
            "token_estimate": cls.token_estimate,
            "sensitive": cls.sensitive,
        },
        "confidence": None if cls is None else cls.confidence,
        "reason": decision.reason,
        "candidates": [
            {"model": c.model.id, "backend": c.backend.name, "locality": c.backend.locality}
            for c in decision.candidates
        ],
        "excluded": [{"model": e.model, "why": e.why} for e in decision.excluded],
    }
