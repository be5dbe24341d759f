"""Candidate selection: pure functions over the config and an availability snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.config import Config, parse_config
from llmswitch.routing.classify import Classification, classify
from llmswitch.routing.select import Availability, Catalog, decide_auto, decide_explicit


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
            {"id": "cheap-cloud", "backend": "cloud", "quality": 85,
             "cost_input_per_mtok": 0.1, "cost_output_per_mtok": 0.4},
            {"id": "dear-cloud", "backend": "cloud", "quality": 95,
             "cost_input_per_mtok": 3.0, "cost_output_per_mtok": 15.0, "aliases": ["smart"]},
        ],
    }  # fmt: skip
    data.update(overrides)
    return parse_config(data)


CATALOG = Catalog.build(config())


def of(text: str) -> Classification:
    return classify([{"role": "user", "content": text}])


def with_complexity(complexity: str, tokens: int = 10) -> Classification:
    base = of("hello")
    return Classification(**{**vars(base), "complexity": complexity, "token_estimate": tokens})


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
    decision = decide_auto(CATALOG, with_complexity(complexity), Availability())
    assert chosen(decision) == expected
    assert decision.tier == "classifier"


def test_every_excluded_model_says_why() -> None:
    decision = decide_auto(
        CATALOG, with_complexity("complex"), Availability(down=frozenset({"box"}))
    )
    why = {e.model: e.why for e in decision.excluded}
    assert why["tiny"] == "quality 20 < floor 65"
    assert why["big-lan"] == "backend box is down"


def test_budget_exceeded_skips_cloud() -> None:
    decision = decide_auto(CATALOG, with_complexity("complex"), Availability(budget_exceeded=True))
    assert chosen(decision) == ["big-lan"]
    assert {e.model: e.why for e in decision.excluded}["cheap-cloud"] == "budget exceeded"


def test_open_breaker_and_rate_limit_exclude() -> None:
    avail = Availability(open_breakers=frozenset({"box"}), limited=frozenset({"cloud"}))
    assert chosen(decide_auto(CATALOG, with_complexity("complex"), avail)) == []


def test_context_window_excludes_models_too_small() -> None:
    decision = decide_auto(CATALOG, with_complexity("complex", tokens=900), Availability(), 200)
    assert "big-lan" not in chosen(decision)


def test_explicit_model_then_its_fallbacks_skipping_unavailable() -> None:
    tiny = CATALOG.by_name["tiny"]
    assert chosen(decide_explicit(CATALOG, tiny, Availability())) == ["tiny", "mid"]
    down = Availability(down=frozenset({"laptop"}))
    decision = decide_explicit(CATALOG, tiny, down)
    assert chosen(decision) == []
    assert [e.model for e in decision.excluded] == ["tiny", "mid"]


def test_aliases_resolve_to_their_model() -> None:
    assert CATALOG.by_name["smart"].id == "dear-cloud"
