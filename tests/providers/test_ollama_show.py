"""Ollama's /api/show: the facts read from it, the quality derived, and the sim's answer."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.providers.ollama import (
    ModelFacts,
    derived_quality,
    features,
    parameter_billions,
    parse_show,
)
from llmswitch.sim import ollama_wire
from tests.providers.samples import data_json


def test_the_facts_of_a_documented_answer() -> None:
    facts = parse_show(data_json("ollama", "show.json"))
    assert facts == ModelFacts(
        context_length=131072,
        billions=8.030261312,
        family="llama",
        capabilities=("completion", "tools"),
    )
    assert features(facts) == ["json", "tools"]
    assert derived_quality(facts) == 40


def test_a_modelfile_num_ctx_is_the_context_it_serves() -> None:
    body = data_json("ollama", "show.json") | {"parameters": 'num_ctx 8192\nstop "x"'}
    assert parse_show(body).context_length == 8192


@pytest.mark.parametrize(
    ("billions", "family", "caps", "quality"),
    [
        (0.5, "qwen2", (), 15),
        (1.5, "qwen2", (), 20),
        (3.2, "llama", (), 30),
        (8.0, "qwen3", ("thinking",), 50),
        (14.7, "phi3", (), 53),
        (32.0, "qwen2", (), 60),
        (70.6, "llama", (), 70),
        (235.0, "qwen3moe", ("thinking",), 85),  # capped: a guess never outranks a judgement
        (2.0, "gemma", (), 15),
    ],
)
def test_quality_follows_size_then_family_then_thinking(
    billions: float, family: str, caps: tuple[str, ...], quality: int
) -> None:
    assert derived_quality(ModelFacts(billions=billions, family=family, capabilities=caps)) == (
        quality
    )


def test_sizes_are_read_from_ollama_labels() -> None:
    assert parameter_billions("7.6B") == 7.6
    assert parameter_billions("135M") == 0.135
    assert parameter_billions("big") is None
    assert parse_show({"details": {"parameter_size": "3.2B"}}).billions == 3.2


@pytest.mark.parametrize(
    "body", [None, [], {"model_info": [], "details": "x", "capabilities": "tools"}, {"x": 1}]
)
def test_anything_malformed_is_unknown(body: Any) -> None:
    facts = parse_show(body)
    assert facts == ModelFacts()
    assert derived_quality(facts) is None and features(facts) is None


def test_an_embedding_model_cannot_chat() -> None:
    assert not ModelFacts(capabilities=("embedding",)).chat
    assert ModelFacts(capabilities=("completion", "embedding")).chat


def test_the_sim_answers_what_ollama_documents() -> None:
    real = data_json("ollama", "show.json")
    sim = ollama_wire.show("qwen2.5:1.5b", 0)
    assert set(real) <= set(sim) | {"license"}
    assert set(real["details"]) == set(sim["details"])
    assert parse_show(sim) == ModelFacts(
        context_length=32768, billions=1.5, family="qwen2", capabilities=("completion", "tools")
    )
    assert sim["details"]["parameter_size"] == "1.5B"
    assert parse_show(ollama_wire.show("llama3.2", 0)).billions == 3.2
