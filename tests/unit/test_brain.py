"""The routing brain end to end, without trio: rules → classification → selection → fallback."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.config import RuleConfig, parse_config
from llmswitch.routing.brain import (
    NeedsClassification,
    Rejected,
    RouteRequest,
    RoutingSettings,
    UnknownModel,
    finish,
    plan,
)
from llmswitch.routing.classify import classify
from llmswitch.routing.live import merged
from llmswitch.routing.profiles import UnknownProfile
from llmswitch.routing.rules import features_of
from llmswitch.routing.select import Availability, Catalog, Decision

CONFIG = parse_config(
    {
        "routing": {"fallback_model": "mid", "metered_cloud": ["code", "math"]},
        "backends": [
            {"name": "laptop", "base_url": "http://127.0.0.1:1/v1", "locality": "local"},
            {"name": "box", "base_url": "http://127.0.0.1:2/v1", "locality": "lan"},
            {"name": "cloud", "base_url": "http://127.0.0.1:3/v1", "locality": "cloud"},
        ],
        "models": [
            {"id": "tiny", "backend": "laptop", "quality": 15},
            {"id": "mid", "backend": "laptop", "quality": 45},
            {"id": "coder", "backend": "box", "quality": 68},
            {
                "id": "sonnet",
                "backend": "cloud",
                "quality": 90,
                "cost_input_per_mtok": 3.0,
                "cost_output_per_mtok": 15.0,
                "aliases": ["smart"],
            },
        ],
    }
)
CATALOG = Catalog.build(CONFIG)
UP = Availability()


def settings(*extra_rules: RuleConfig, profile: str = "balanced") -> RoutingSettings:
    return merged(CONFIG, {"profile": profile}, extra_rules)


def request(text: str, model: str = "auto", **headers: str) -> RouteRequest:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
    return RouteRequest(
        model, features_of(body, headers, len(text) // 4), 0, headers.get("x-router-profile")
    )


def route(
    req: RouteRequest, s: RoutingSettings | None = None, avail: Availability = UP
) -> Decision:
    s = s or settings()
    step = plan(CATALOG, s, req, avail)
    if isinstance(step, NeedsClassification):
        text = req.features.last_user_text
        return finish(CATALOG, s, req, step, classify([{"role": "user", "content": text}]), avail)
    return step


def test_heartbeat_goes_to_the_self_model_without_classifying() -> None:
    step = plan(CATALOG, settings(), request("ping", **{"x-source": "heartbeat"}), UP)
    assert isinstance(step, Decision)
    assert (step.tier, step.rule, step.candidates[0].model.id) == ("rules", "heartbeat", "tiny")
    assert step.classification is None


@pytest.mark.parametrize("text", ["hello", "/status", "/reset", "thanks!"])
def test_commands_and_greetings_are_tier_1(text: str) -> None:
    decision = route(request(text))
    assert decision.tier == "rules" and decision.candidates[0].model.id == "tiny"


def test_code_request_is_classified_and_selected() -> None:
    req = request(
        "Refactor this Python function to use a generator and add type hints:\n"
        "def f(xs):\n    out = []\n    for x in xs:\n        out.append(x*2)\n"
        "    return out"
    )
    assert isinstance(plan(CATALOG, settings(), req, UP), NeedsClassification)
    decision = route(req)
    assert decision.tier == "classifier" and decision.rule == "catch-all"
    assert decision.classification is not None and decision.classification.task_type == "code"
    assert decision.candidates


def test_no_candidate_after_classification_falls_back_to_tier_3() -> None:
    proof = request("Prove rigorously that there are infinitely many primes, step by step.")
    down = Availability(down=frozenset({"box", "cloud"}))
    decision = route(proof, avail=down)
    assert decision.tier == "fallback" and [c.model.id for c in decision.candidates] == ["mid"]


def test_every_tier_failing_leaves_no_candidates_and_every_reason() -> None:
    proof = request("Prove rigorously that there are infinitely many primes, step by step.")
    decision = route(proof, avail=Availability(down=frozenset({"laptop", "box", "cloud"})))
    assert decision.candidates == ()
    assert {e.model for e in decision.excluded} >= {"tiny", "mid", "coder", "sonnet"}


def test_explicit_model_ignores_auto_rules_but_honours_rules_naming_it() -> None:
    req = request("write a python function that reverses a linked list, hello", model="smart")
    decision = route(req)
    assert (decision.tier, decision.candidates[0].model.id) == ("explicit", "sonnet")
    pin = RuleConfig(
        name="no-sonnet-greetings",
        priority=1,
        model="smart",
        pattern="hello",
        action="route",
        target="mid",
    )
    decision = route(req, settings(pin))
    assert (decision.rule, decision.candidates[0].model.id) == ("no-sonnet-greetings", "mid")


def test_reject_rule_refuses_with_its_status_and_message() -> None:
    block = RuleConfig(
        name="no-crypto",
        priority=1,
        pattern="bitcoin",
        action="reject",
        status=403,
        message="not here",
    )
    with pytest.raises(Rejected) as err:
        route(request("price of bitcoin"), settings(block))
    assert (err.value.rule, err.value.status, err.value.message) == ("no-crypto", 403, "not here")


def test_disabled_rules_are_skipped() -> None:
    off = RuleConfig(
        name="greeting", priority=40, pattern="hello", action="route_self", enabled=False
    )
    assert route(request("hello"), settings(off)).tier == "classifier"


def test_profiles_by_model_name_prefix_and_header() -> None:
    proof = "Prove rigorously that there are infinitely many primes, step by step."
    assert route(request(proof, model="auto:premium")).profile == "premium"
    assert route(request(proof, model="eco")).profile == "eco"
    assert route(request(proof, **{"x-router-profile": "eco"})).profile == "eco"
    assert route(request(proof), settings(profile="premium")).profile == "premium"
    with pytest.raises(UnknownProfile):
        route(request(proof, model="auto:turbo"))


def test_unknown_model_is_refused() -> None:
    with pytest.raises(UnknownModel):
        route(request("hi", model="gpt-9"))


def test_metered_cloud_only_for_listed_task_types() -> None:
    chat = route(
        request(
            "Write a long, moving poem about the sea and the people who love it, "
            "in the style of a sea shanty, with a chorus and five verses."
        )
    )
    assert all(c.model.id != "sonnet" for c in chat.candidates)


def test_queue_rule_classifies_and_carries_its_wait() -> None:
    wait = RuleConfig(name="batch", priority=1, source="batch", action="queue", queue_s=7)
    decision = route(request("summarise the report", **{"x-source": "batch"}), settings(wait))
    assert (decision.rule, decision.queue_s, decision.tier) == ("batch", 7, "classifier")
