"""Candidate selection: pure functions over the config and an availability snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.config import Config, ProfileConfig, parse_config
from llmswitch.routing.classify import Classification, classify
from llmswitch.routing.select import (
    Availability,
    Catalog,
    Policy,
    Refused,
    decide_auto,
    decide_explicit,
    output_cap,
    with_fallback,
)


def config(**overrides: Any) -> Config:
    data: dict[str, Any] = {
        "backends": [
            {"name": "laptop", "base_url": "http://127.0.0.1:1/v1", "locality": "local"},
            {"name": "box", "base_url": "http://127.0.0.1:2/v1", "locality": "lan"},
            {"name": "cloud", "base_url": "http://127.0.0.1:3/v1", "locality": "cloud"},
        ],
        "models": [
            {"id": "tiny", "backend": "laptop", "quality": 20, "fallbacks": ["mid"]},
            {"id": "mid", "backend": "laptop", "quality": 50},
            {"id": "big-lan", "backend": "box", "quality": 70, "context_window": 1000},
            {
                "id": "cheap-cloud",
                "backend": "cloud",
                "quality": 85,
                "cost_input_per_mtok": 0.1,
                "cost_output_per_mtok": 0.4,
            },
            {
                "id": "dear-cloud",
                "backend": "cloud",
                "quality": 95,
                "cost_input_per_mtok": 3.0,
                "cost_output_per_mtok": 15.0,
                "aliases": ["smart"],
            },
        ],
    }
    data.update(overrides)
    return parse_config(data)


CATALOG = Catalog.build(config())
# Metered cloud allowed for everything and no tolerance: the plain floor-and-price order.
OPEN = Policy(profile=ProfileConfig(quality_tolerance=0), metered_cloud=("*",))


def of(text: str) -> Classification:
    return classify([{"role": "user", "content": text}])


def with_complexity(
    complexity: str, tokens: int = 10, task_type: str = "conversation", sensitive: bool = False
) -> Classification:
    base = of("hello")
    changes = {
        "complexity": complexity,
        "token_estimate": tokens,
        "task_type": task_type,
        "sensitive": sensitive,
    }
    return Classification(**{**vars(base), **changes})


def chosen(decision: Any) -> list[str]:
    return [c.model.id for c in decision.candidates]


@pytest.mark.parametrize(
    ("complexity", "expected"),
    [
        ("simple", ["tiny", "mid", "big-lan", "cheap-cloud", "dear-cloud"]),
        ("medium", ["mid", "big-lan", "cheap-cloud", "dear-cloud"]),
        ("complex", ["big-lan", "cheap-cloud", "dear-cloud"]),
        ("reasoning", ["cheap-cloud", "dear-cloud"]),
    ],
)
def test_floor_then_local_lan_cloud_then_cheaper(complexity: str, expected: list[str]) -> None:
    decision = decide_auto(CATALOG, with_complexity(complexity), Availability(), policy=OPEN)
    assert chosen(decision) == expected
    assert decision.tier == "classifier"


def test_every_excluded_model_says_why() -> None:
    decision = decide_auto(
        CATALOG, with_complexity("complex"), Availability(down=frozenset({"box"})), policy=OPEN
    )
    why = {e.model: e.why for e in decision.excluded}
    assert why["tiny"] == "quality 20 < floor 65"
    assert why["big-lan"] == "backend box is down"


def test_budget_exceeded_skips_cloud() -> None:
    decision = decide_auto(
        CATALOG, with_complexity("complex"), Availability(budget_exceeded=True), policy=OPEN
    )
    assert chosen(decision) == ["big-lan"]
    assert {e.model: e.why for e in decision.excluded}["cheap-cloud"] == "budget exceeded"


def test_open_breaker_and_rate_limit_exclude() -> None:
    avail = Availability(open_breakers=frozenset({"box"}), limited=frozenset({"cloud"}))
    assert chosen(decide_auto(CATALOG, with_complexity("complex"), avail, policy=OPEN)) == []


def test_only_a_prompt_that_does_not_fit_excludes_a_model() -> None:
    decision = decide_auto(
        CATALOG, with_complexity("complex", tokens=1000), Availability(), 200, OPEN
    )
    assert "big-lan" not in chosen(decision)
    assert "context window 1000 <= 1000 prompt tokens" in [e.why for e in decision.excluded]


def test_max_tokens_is_a_ceiling_clamped_to_the_room_left() -> None:
    """opencode asks for 32k on every request: that must not rule out a 1k-context model."""
    decision = decide_auto(
        CATALOG, with_complexity("complex", tokens=900), Availability(), 32_000, OPEN
    )
    big = CATALOG.by_name["big-lan"]
    assert "big-lan" in chosen(decision)
    assert output_cap(big, 900, 32_000) == 100
    assert output_cap(big, 900, 100) is None
    assert output_cap(big, 900, 0) is None


def test_explicit_model_then_its_fallbacks_skipping_unavailable() -> None:
    tiny = CATALOG.by_name["tiny"]
    assert chosen(decide_explicit(CATALOG, tiny, Availability())) == ["tiny", "mid"]
    down = Availability(down=frozenset({"laptop"}))
    decision = decide_explicit(CATALOG, tiny, down)
    assert chosen(decision) == []
    assert [e.model for e in decision.excluded] == ["tiny", "mid"]


def test_aliases_resolve_to_their_model() -> None:
    assert CATALOG.by_name["smart"].id == "dear-cloud"


def test_quality_tolerance_admits_a_model_just_under_the_floor() -> None:
    near = Catalog.build(
        config(
            models=[
                {"id": "lan-78", "backend": "box", "quality": 78},
                {"id": "cloud-90", "backend": "cloud", "quality": 90, "cost_input_per_mtok": 1.0},
            ]
        )
    )
    tolerant = Policy(profile=ProfileConfig(quality_tolerance=5), metered_cloud=("*",))
    strict = Policy(profile=ProfileConfig(quality_tolerance=0), metered_cloud=("*",))
    reasoning = with_complexity("reasoning")
    assert chosen(decide_auto(near, reasoning, Availability(), policy=tolerant)) == [
        "lan-78",
        "cloud-90",
    ]
    assert chosen(decide_auto(near, reasoning, Availability(), policy=strict)) == ["cloud-90"]


def test_metered_cloud_is_opt_in_per_task_type() -> None:
    complex_code = with_complexity("complex", task_type="code")
    default = decide_auto(CATALOG, complex_code, Availability(), policy=Policy())
    assert all(not c.metered for c in default.candidates)
    why = {e.model: e.why for e in default.excluded}
    assert why["cheap-cloud"] == "metered cloud not enabled for code (routing.metered_cloud)"
    code_only = Policy(metered_cloud=("code",))
    assert "cheap-cloud" in chosen(
        decide_auto(CATALOG, complex_code, Availability(), policy=code_only)
    )
    chat = with_complexity("complex", task_type="conversation")
    assert "cheap-cloud" not in chosen(decide_auto(CATALOG, chat, Availability(), policy=code_only))


def test_sensitive_requests_never_get_a_cloud_candidate() -> None:
    secret = with_complexity("reasoning", sensitive=True)
    decision = decide_auto(CATALOG, secret, Availability(), policy=OPEN)
    assert all(c.backend.locality != "cloud" for c in decision.candidates)
    assert {e.model: e.why for e in decision.excluded}["dear-cloud"] == (
        "sensitive request stays off cloud models"
    )


def test_capabilities_filter_by_task_type() -> None:
    cat = Catalog.build(
        config(
            models=[
                {
                    "id": "chatty",
                    "backend": "laptop",
                    "quality": 50,
                    "capabilities": ["conversation"],
                },
                {"id": "coder", "backend": "laptop", "quality": 50, "capabilities": ["code"]},
                {"id": "any", "backend": "box", "quality": 50},
            ]
        )
    )
    code = with_complexity("medium", task_type="code")
    decision = decide_auto(cat, code, Availability(), policy=OPEN)
    assert chosen(decision) == ["coder", "any"]
    assert {e.model: e.why for e in decision.excluded} == {"chatty": "not capable of code"}


def test_allow_and_block_lists() -> None:
    blocked = Policy(
        profile=ProfileConfig(quality_tolerance=0), metered_cloud=("*",), block=("tiny",)
    )
    assert "tiny" not in chosen(
        decide_auto(CATALOG, with_complexity("simple"), Availability(), policy=blocked)
    )
    allowed = Policy(
        profile=ProfileConfig(quality_tolerance=0), metered_cloud=("*",), allow=("mid",)
    )
    assert chosen(
        decide_auto(CATALOG, with_complexity("simple"), Availability(), policy=allowed)
    ) == ["mid"]


def test_profile_cost_cap_excludes_expensive_models() -> None:
    capped = Policy(
        profile_name="eco",
        profile=ProfileConfig(quality_tolerance=0, max_cost_per_request=0.001),
        metered_cloud=("*",),
    )
    decision = decide_auto(
        CATALOG,
        with_complexity("reasoning", tokens=1000),
        Availability(),
        max_tokens=100,
        policy=capped,
    )
    assert chosen(decision) == ["cheap-cloud"]
    assert "eco profile's $0.001" in {e.model: e.why for e in decision.excluded}["dear-cloud"]


def test_premium_orders_by_quality_and_shifts_the_floor() -> None:
    premium = Policy(
        profile_name="premium",
        profile=ProfileConfig(quality_tolerance=0, floor_shift=10, ordering="quality"),
        metered_cloud=("*",),
    )
    decision = decide_auto(CATALOG, with_complexity("medium"), Availability(), policy=premium)
    assert chosen(decision) == ["dear-cloud", "cheap-cloud", "big-lan", "mid"]


def test_override_puts_its_model_first() -> None:
    policy = Policy(
        profile=ProfileConfig(quality_tolerance=0),
        metered_cloud=("*",),
        overrides={"code": "big-lan"},
    )
    decision = decide_auto(
        CATALOG, with_complexity("simple", task_type="code"), Availability(), policy=policy
    )
    assert chosen(decision)[0] == "big-lan"
    assert "override code → big-lan" in decision.reason


def test_tier3_fallback_model_when_nothing_is_left() -> None:
    cat = Catalog.build(config(routing={"fallback_model": "mid"}))
    empty = decide_auto(cat, with_complexity("reasoning"), Availability(), policy=Policy())
    assert chosen(empty) == []
    decision = with_fallback(cat, empty, Availability())
    assert (chosen(decision), decision.tier) == (["mid"], "fallback")
    still_empty = with_fallback(cat, empty, Availability(down=frozenset({"laptop"})))
    assert chosen(still_empty) == []
    assert still_empty.excluded[-1].why == "fallback model: backend laptop is down"


def test_best_local_answers_auto_when_no_model_meets_the_floor() -> None:
    empty = decide_auto(CATALOG, with_complexity("reasoning"), Availability(), policy=Policy())
    assert chosen(empty) == []
    decision = with_fallback(CATALOG, empty, Availability())
    assert (chosen(decision), decision.tier) == (["big-lan"], "fallback")
    assert "the best local model, big-lan, answers" in decision.reason
    box_down = with_fallback(CATALOG, empty, Availability(down=frozenset({"box"})))
    assert chosen(box_down) == ["mid"]
    all_down = with_fallback(CATALOG, empty, Availability(down=frozenset({"box", "laptop"})))
    assert chosen(all_down) == []
    assert all_down.excluded[-1].model == "best-local"


def test_best_local_obeys_the_guards() -> None:
    cat = Catalog.build(
        config(routing={"block": ["big-lan"]}),
    )
    code = with_complexity("reasoning", task_type="code")
    empty = decide_auto(cat, code, Availability(), policy=Policy.of(cat.config, "balanced", {}))
    decision = with_fallback(cat, empty, Availability(), Policy.of(cat.config, "balanced", {}))
    assert chosen(decision) == ["mid"]  # big-lan is blocked


def test_best_local_does_not_replace_a_model_the_client_named() -> None:
    named = decide_explicit(
        CATALOG, CATALOG.by_name["tiny"], Availability(down=frozenset({"laptop"}))
    )
    assert with_fallback(CATALOG, named, Availability(down=frozenset({"laptop"}))) == named


def test_fallback_none_leaves_nothing() -> None:
    cat = Catalog.build(config(routing={"fallback_model": "none"}))
    empty = decide_auto(cat, with_complexity("reasoning"), Availability(), policy=Policy())
    assert with_fallback(cat, empty, Availability()) == empty


def test_a_model_with_a_poor_record_is_demoted_and_promoted_when_it_recovers() -> None:
    simple = with_complexity("simple")
    poor = Availability(success={"tiny": 0.3})
    assert chosen(decide_auto(CATALOG, simple, poor, policy=OPEN))[-1] == "tiny"
    recovered = Availability(success={"tiny": 0.8})
    assert chosen(decide_auto(CATALOG, simple, recovered, policy=OPEN))[0] == "tiny"


def test_a_faster_model_goes_first_among_equals() -> None:
    simple = with_complexity("simple")
    slow_tiny = Availability(ttfb_ms={"tiny": 900.0, "mid": 120.0})
    assert chosen(decide_auto(CATALOG, simple, slow_tiny, policy=OPEN))[:2] == ["mid", "tiny"]
    noise = Availability(ttfb_ms={"tiny": 130.0, "mid": 120.0})  # same 100 ms step
    assert chosen(decide_auto(CATALOG, simple, noise, policy=OPEN))[:2] == ["tiny", "mid"]


def test_an_open_model_breaker_excludes_only_that_model() -> None:
    decision = decide_auto(
        CATALOG,
        with_complexity("simple"),
        Availability(open_models=frozenset({"tiny"})),
        policy=OPEN,
    )
    assert "tiny" not in chosen(decision) and "mid" in chosen(decision)
    assert {e.model: e.why for e in decision.excluded}["tiny"] == (
        "model tiny circuit breaker is open"
    )


def test_an_override_cannot_bring_back_a_guarded_model() -> None:
    policy = Policy(
        profile=ProfileConfig(quality_tolerance=0),
        metered_cloud=("*",),
        block=("big-lan",),
        overrides={"conversation": "big-lan"},
    )
    decision = decide_auto(CATALOG, with_complexity("simple"), Availability(), policy=policy)
    assert "big-lan" not in chosen(decision)
    assert {e.model: e.why for e in decision.excluded}["big-lan"] == "blocked by routing.block"


def test_an_explicit_metered_model_over_budget_is_refused_not_swapped() -> None:
    over = Availability(budget_exceeded=True)
    with pytest.raises(Refused) as err:
        decide_explicit(
            CATALOG,
            CATALOG.by_name["smart"],
            over,
            policy=OPEN,
            cls=with_complexity("simple"),
        )
    assert err.value.refusal.code == "budget_exceeded"
    # A local model named while over budget is served as usual.
    assert chosen(decide_explicit(CATALOG, CATALOG.by_name["tiny"], over)) == ["tiny", "mid"]
