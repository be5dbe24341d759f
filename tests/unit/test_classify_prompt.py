"""The model classifier's prompt and the reading of its answer (pure, no model)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmswitch.routing.classify import Classification, classify
from llmswitch.routing.classify_prompt import (
    MAX_PROMPT_CHARS,
    build_messages,
    cache_key,
    parse_answer,
    parse_verdict,
    structural_task,
)


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def answer(**fields: Any) -> str:
    base: dict[str, Any] = {
        "complexity": "complex",
        "task_type": "code",
        "sensitive": False,
        "confidence": 0.8,
    }
    return json.dumps(base | fields)


HEURISTIC = Classification("simple", 0.7, "conversation", 42, scores={"total": -0.3})
SENSITIVE = Classification(
    "medium", 0.7, "conversation", 42, sensitive=True, sensitive_kinds=("api_key",)
)


# --- build_messages ---------------------------------------------------------------------------


def test_build_messages_sends_the_user_words_only_under_a_system_prompt() -> None:
    messages = [
        {"role": "system", "content": "You are OPERATOR-SECRET-PROMPT."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "ASSISTANT-REPLY"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    built = build_messages(messages)
    assert [m["role"] for m in built] == ["system", "user"]
    system, body = built[0]["content"], built[1]["content"]
    assert "ONLY one JSON object" in system
    for word in ("simple", "reasoning", "tool-use", "sensitive", "confidence"):
        assert word in system
    assert "first question" in body and "second question" in body
    assert body.index("first question") < body.index("second question")
    assert "OPERATOR-SECRET-PROMPT" not in body and "ASSISTANT-REPLY" not in body
    assert "<request>" in body and "</request>" in body


def test_build_messages_keeps_the_most_recent_text_within_bounds() -> None:
    long = "old " * 5000 + "THE ACTUAL ASK"
    body = build_messages(user(long))[1]["content"]
    assert "THE ACTUAL ASK" in body
    assert len(body) < MAX_PROMPT_CHARS + 200


def test_build_messages_mentions_attachments_and_tools() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]
    body = build_messages(messages, has_tools=True)[1]["content"]
    assert "attached 1 image" in body and "tools" in body
    assert "base64" not in body


def test_cache_key_depends_on_user_words_and_tools_only() -> None:
    a = [{"role": "system", "content": "one"}, *user("hello there")]
    b = [{"role": "system", "content": "two"}, *user("hello there")]
    assert cache_key(a, False) == cache_key(b, False)
    assert cache_key(a, False) != cache_key(a, True)
    assert cache_key(a, False) != cache_key(user("hello there!"), False)
    assert len(cache_key(a, False)) == 64


def test_structural_task() -> None:
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]
    assert structural_task(image) == "vision"
    assert structural_task([*user("hi"), {"role": "tool", "content": "42"}]) is None
    assert structural_task(user("hi")) is None


# --- parse_answer -----------------------------------------------------------------------------


def test_valid_json_becomes_the_classification() -> None:
    got = parse_answer(answer(confidence=0.9), HEURISTIC)
    assert got is not None
    assert (got.complexity, got.task_type, got.confidence) == ("complex", "code", 0.9)
    assert got.token_estimate == 42  # the heuristic's count, not the model's guess
    assert got.sensitive is False
    assert got.reason.startswith("model")
    assert "heuristic said simple conversation" in got.reason


@pytest.mark.parametrize(
    "text",
    [
        "```json\n" + answer() + "\n```",
        "```\n" + answer() + "\n```",
        "Sure! Here is the classification:\n" + answer() + "\nHope that helps.",
        "<think>the user wants {code}</think>" + answer(),
        json.dumps({"result": json.loads(answer())}),
        answer(complexity=" Complex ", task_type="CODE"),
        answer(sensitive="false"),
    ],
)
def test_tolerant_extraction(text: str) -> None:
    got = parse_answer(text, HEURISTIC)
    assert got is not None
    assert (got.complexity, got.task_type, got.sensitive) == ("complex", "code", False)


def test_tool_use_spellings_and_missing_optional_keys() -> None:
    got = parse_verdict('{"complexity": "medium", "task_type": "tool_use"}')
    assert got is not None
    assert (got.task_type, got.sensitive, got.confidence) == ("tool-use", False, 0.5)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "medium",
        "I think this is a complex coding task.",
        "{not json at all}",
        '{"complexity": "complex", "task_type": "code"',  # cut off by max_tokens
        "[1, 2, 3]",
        '{"answer": "complex"}',
        "<think>still thinking " + answer(),  # never finished thinking
    ],
)
def test_garbage_is_none(text: str) -> None:
    assert parse_answer(text, HEURISTIC) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"complexity": "hard"},
        {"complexity": None},
        {"complexity": 3},
        {"task_type": "poetry"},
        {"task_type": None},
        {"sensitive": "maybe"},
        {"sensitive": 1},
        {"confidence": 1.5},
        {"confidence": -0.1},
        {"confidence": "high"},
        {"confidence": True},
    ],
)
def test_invalid_values_are_none(fields: dict[str, Any]) -> None:
    assert parse_answer(answer(**fields), HEURISTIC) is None


def test_first_classification_object_decides() -> None:
    text = answer(complexity="wrong") + "\n" + answer()
    assert parse_answer(text, HEURISTIC) is None


def test_nan_confidence_is_none() -> None:
    assert parse_answer(answer().replace("0.8", "NaN"), HEURISTIC) is None


def test_sensitive_is_never_downgraded() -> None:
    got = parse_answer(answer(sensitive=False), SENSITIVE)
    assert got is not None
    assert got.sensitive is True and got.sensitive_kinds == ("api_key",)
    assert "sensitive: api_key" in got.reason


def test_the_model_may_add_caution() -> None:
    got = parse_answer(answer(sensitive=True), HEURISTIC)
    assert got is not None
    assert got.sensitive is True and got.sensitive_kinds == ("model",)


def test_forced_task_type_wins_over_the_model() -> None:
    got = parse_answer(answer(task_type="conversation"), HEURISTIC, forced_task="vision")
    assert got is not None and got.task_type == "vision"


def test_merge_keeps_the_heuristic_sensitivity_of_a_real_prompt() -> None:
    heuristic = classify(user("my key is sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 fix it"))
    assert heuristic.sensitive
    got = parse_answer(answer(sensitive=False), heuristic)
    assert got is not None and got.sensitive
    assert got.token_estimate == heuristic.token_estimate
