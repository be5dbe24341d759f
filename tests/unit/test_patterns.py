"""Rule patterns run by RE2 and names as tokens: what the config and the admin API refuse."""

from __future__ import annotations

import pytest

from llmswitch.config import ConfigError, parse_config
from llmswitch.routing.patterns import (
    MAX_PATTERN_CHARS,
    MAX_RULES,
    MAX_TOKEN_CHARS,
    compile_pattern,
    token_problem,
)
from llmswitch.routing.rules import compiled


def test_a_catastrophic_pattern_for_backtracking_runs_in_linear_time() -> None:
    # Python's re takes hours on this; RE2 answers at once (no timing asserted: it returns).
    assert compiled(r"^(a+)+$").search("a" * 100_000 + "b") is None
    assert compiled(r"^(a+)+$").search("a" * 100_000) is not None


def test_patterns_match_case_insensitively() -> None:
    assert compiled(r"\burgent\b").search("This is URGENT now") is not None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(?=x)", "look-around"),
        (r"(a)\1", "RE2"),
        ("(unclosed", "RE2"),
        ("a" * (MAX_PATTERN_CHARS + 1), f"longer than {MAX_PATTERN_CHARS}"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_saying_why(pattern: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        compile_pattern(pattern)


@pytest.mark.parametrize(
    "name",
    ["", "two words", "line\r\nbreak", "tab\there", "lone\ud800surrogate", "x" * 129],
)
def test_names_that_are_not_tokens_are_refused(name: str) -> None:
    assert token_problem(name) is not None


@pytest.mark.parametrize("name", ["qwen2.5:7b", "library/llama3:latest", "x" * MAX_TOKEN_CHARS])
def test_model_names_as_ollama_writes_them_are_tokens(name: str) -> None:
    assert token_problem(name) is None


def _config(**extra: object) -> dict[str, object]:
    return {
        "backends": [{"name": "b", "base_url": "http://127.0.0.1:1/v1"}],
        "models": [{"id": "m", "backend": "b"}],
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"rules": [{"name": "bad", "pattern": r"(?<=a)b"}]}, "rules.bad.pattern"),
        ({"rules": [{"name": "a\nb"}]}, "rules.0.name"),
        ({"rules": [{"name": f"r{i}"} for i in range(MAX_RULES + 1)]}, "rules"),
        ({"models": [{"id": "has space", "backend": "b"}]}, "models.0.id"),
        ({"models": [{"id": "m", "backend": "b", "aliases": ["x\r\n"]}]}, "aliases"),
        ({"clients": [{"name": "me\n", "key_env": "K"}]}, "clients.0.name"),
    ],
)
def test_config_refuses_bad_rules_and_names_naming_the_key(
    extra: dict[str, object], where: str
) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        parse_config(_config(**extra))
