"""The Anthropic door's ``thinking``, shaped for each candidate's wire."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.providers.anthropic import messages_request
from llmswitch.providers.thinking import thinking_for

ENABLED = {"type": "enabled", "budget_tokens": 8000}


def body(thinking: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "prove it"}], "thinking": thinking} | extra


def test_an_anthropic_backend_gets_thinking_and_no_temperature() -> None:
    shaped = thinking_for(body(ENABLED, max_tokens=16000, temperature=0.3), "anthropic", False)
    sent = messages_request(shaped, "claude")
    assert sent["thinking"] == ENABLED and "temperature" not in sent


@pytest.mark.parametrize(
    ("max_tokens", "budget"), [(16000, 8000), (4000, 3999), (1025, 1024), (1024, None)]
)
def test_a_budget_is_cut_below_the_capped_output_or_dropped(
    max_tokens: int, budget: int | None
) -> None:
    shaped = thinking_for(body(ENABLED, max_tokens=max_tokens), "anthropic", False)
    assert shaped.get("thinking", {}).get("budget_tokens") == budget


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "low"),
        ({"type": "enabled", "budget_tokens": 10000}, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, "high"),
        ({"type": "adaptive"}, "medium"),
    ],
)
def test_a_reasoning_openai_model_gets_an_effort(thinking: Any, effort: str) -> None:
    for kind in ("openai", "ollama"):
        shaped = thinking_for(body(thinking, max_tokens=64000), kind, True)
        assert shaped["reasoning_effort"] == effort and "thinking" not in shaped


def test_an_effort_the_client_set_is_kept() -> None:
    shaped = thinking_for(body(ENABLED, reasoning_effort="minimal"), "openai", True)
    assert shaped["reasoning_effort"] == "minimal"


@pytest.mark.parametrize(("kind", "reasoning"), [("openai", False), ("gemini", True)])
def test_other_models_get_neither(kind: str, reasoning: bool) -> None:
    shaped = thinking_for(body(ENABLED, max_tokens=64000), kind, reasoning)
    assert "thinking" not in shaped and "reasoning_effort" not in shaped


def test_a_malformed_thinking_from_another_door_is_dropped_for_openai() -> None:
    shaped = thinking_for(body({"type": "enabled", "budget_tokens": "lots"}), "openai", True)
    assert "thinking" not in shaped and "reasoning_effort" not in shaped
    assert thinking_for({"model": "x"}, "openai", True) == {"model": "x"}
