"""The heuristic classifier: one behaviour per dimension, sensitive kinds, and the dev set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmswitch.routing.classify import (
    COMPLEXITIES,
    QUALITY_FLOOR,
    TASK_TYPES,
    Classification,
    classify,
    required_capability,
)
from llmswitch.routing.classify_eval import evaluate, load_devset

DEVSET = Path(__file__).resolve().parents[1] / "data" / "devset.jsonl"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def of(text: str, **kwargs: Any) -> Classification:
    return classify(user(text), **kwargs)


# --- complexity ---------------------------------------------------------------------------


CANNED = ["hi", "Thanks!", "ok cool", "HEARTBEAT_OK check", "/status", "👍", "你好", "¿Qué tal?"]


@pytest.mark.parametrize("text", CANNED)
def test_greetings_acks_and_commands_are_simple_with_high_confidence(text: str) -> None:
    c = of(text)
    assert c.complexity == "simple"
    assert c.confidence >= 0.9
    assert c.task_type == "conversation"


def test_quick_lookup_is_simple() -> None:
    assert of("What's the capital of Australia?").complexity == "simple"


@pytest.mark.parametrize(
    "text",
    [
        "Prove that there are infinitely many primes.",
        "Derive the gradient of the softmax cross-entropy loss with respect to the logits.",
        "Show that every finite integral domain is a field.",
    ],
)
def test_proof_and_derivation_requests_are_reasoning(text: str) -> None:
    c = of(text)
    assert c.complexity == "reasoning"
    assert c.task_type == "math"


@pytest.mark.parametrize(
    "text",
    [
        "Demuestra que la raíz cuadrada de 2 es irracional.",  # Spanish
        "Démontrez que toute suite convergente est bornée.",  # French
        "Beweise, dass es unendlich viele Primzahlen gibt.",  # German
        "Prove que a raiz quadrada de 3 é irracional.",  # Portuguese
        "证明根号2是无理数。",  # Chinese
        "√2が無理数であることを証明してください。",  # Japanese
    ],
)
def test_reasoning_markers_beyond_english(text: str) -> None:
    assert of(text).complexity == "reasoning"


def test_system_design_with_scale_and_constraints_is_complex() -> None:
    c = of(
        "Design a URL shortener that handles 100k writes/sec and 1M reads/sec: data model, "
        "storage, caching, ID generation, and how you'd shard it across regions. Compare the "
        "trade-offs of each option."
    )
    assert c.complexity == "complex"


def test_agentic_multi_step_task_is_complex_tool_use() -> None:
    c = of(
        "Go through my inbox, find every email from recruiters in the last month, draft a "
        "polite decline for each, and leave the drafts in my drafts folder. Don't send anything."
    )
    assert c.complexity in ("complex", "reasoning")
    assert c.task_type == "tool-use"


def test_long_pasted_log_with_a_simple_ask_is_not_reasoning() -> None:
    lines = [
        f"2024-05-14T14:{i // 60:02d}:{i % 60:02d}Z ERROR [db.pool] timeout acquiring connection "
        f"after 30000ms (size=20 in_use=20 waiting={i % 17})"
        for i in range(150)
    ]
    c = of("Summarize this log\n\n" + "\n".join(lines))
    assert c.token_estimate > 3000
    assert c.complexity in ("simple", "medium")
    assert c.task_type == "analysis"


# About 2,800 characters of plain prose, so a long ask is read through its head and tail.
FILLER = "The team met on Tuesday to look at the garden plans and the new fence colour. " * 36


@pytest.mark.parametrize(
    "text",
    [
        f"Prove that the square root of 2 is irrational.\n\n{FILLER}",
        f"{FILLER}\n\nProve that the square root of 2 is irrational.",
    ],
)
def test_long_ask_is_read_at_its_head_and_tail(text: str) -> None:
    assert of(text).complexity == "reasoning"


def test_system_prompt_words_do_not_count() -> None:
    system = (
        "You are a rigorous assistant. Prove every claim, derive results step by step, analyze "
        "trade-offs carefully and design distributed systems with concurrency in mind."
    )
    c = classify([{"role": "system", "content": system}, {"role": "user", "content": "hey there"}])
    assert c.complexity == "simple"
    assert c.task_type == "conversation"


def test_system_prompt_still_counts_towards_tokens() -> None:
    bare = of("hey there")
    with_system = classify(
        [{"role": "system", "content": "x" * 4000}, {"role": "user", "content": "hey there"}]
    )
    assert with_system.token_estimate >= bare.token_estimate + 1000


def test_last_user_message_weighs_most() -> None:
    c = classify(
        [
            {"role": "user", "content": "Prove that every tree with n vertices has n-1 edges."},
            {"role": "assistant", "content": "By induction on n..."},
            {"role": "user", "content": "thanks!"},
        ]
    )
    assert c.complexity == "simple"


def test_go_ahead_takes_its_weight_from_the_earlier_turns() -> None:
    plan = (
        "Design the migration of our billing database from MySQL to Postgres: schema mapping, "
        "dual writes, backfill, consistency checks, cut-over and a rollback plan."
    )
    c = classify(
        [
            {"role": "user", "content": plan},
            {"role": "assistant", "content": "Here is a five-step plan... Shall I start?"},
            {"role": "user", "content": "sounds good, go ahead"},
        ]
    )
    assert c.complexity != "simple"


def test_low_confidence_falls_back_to_medium() -> None:
    results = [classify(e["messages"]) for e in load_devset(DEVSET)]
    edge_cases = [c for c in results if "so medium" in c.reason]
    assert edge_cases
    assert all(c.complexity == "medium" and c.confidence < 0.6 for c in edge_cases)
    confident = [c for c in results if c.complexity in ("simple", "complex")]
    assert all(c.confidence >= 0.6 for c in confident)


def test_no_user_text_is_medium() -> None:
    c = classify([{"role": "system", "content": "You are helpful."}])
    assert c.complexity == "medium"
    assert c.reason == "no user text"


def test_scores_and_reason_explain_the_decision() -> None:
    c = of("Refactor this module to use dependency injection and write pytest tests for it.")
    assert "total" in c.scores
    assert c.reason
    assert all(-1.0 <= v <= 1.0 for k, v in c.scores.items() if k != "total")


# --- task type ----------------------------------------------------------------------------


def test_code_fix_is_a_code_task() -> None:
    c = of(
        "Fix the off-by-one error in this function:\n```js\nfunction lastN(arr, n) {\n"
        "  const out = [];\n"
        "  for (let i = arr.length - n; i <= arr.length; i++) out.push(arr[i]);\n"
        "  return out;\n}\n```"
    )
    assert c.task_type == "code"
    assert c.complexity in ("medium", "complex")


def test_image_part_makes_it_vision() -> None:
    c = classify(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in this picture?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    )
    assert c.task_type == "vision"
    assert c.token_estimate > 500  # the image is paid for too


def test_tools_are_a_capability_and_the_task_comes_from_the_ask() -> None:
    c = of("Write a limerick about a cat who learned to code", has_tools=True)
    assert (c.task_type, c.needs_tools) == ("creative", True)
    assert not of("Write a limerick about a cat").needs_tools


def test_tool_traffic_in_history_needs_tools() -> None:
    c = classify(
        [
            {"role": "user", "content": "What is BTC worth in EUR?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "1",
                        "type": "function",
                        "function": {"name": "price", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "1", "content": '{"price": 61234.5}'},
        ]
    )
    assert c.needs_tools


def test_creative_request_is_creative() -> None:
    assert of("Write a limerick about a cat who learned to code").task_type == "creative"


def test_cjk_text_is_counted_near_a_token_a_character() -> None:
    text = "近年来城市交通拥堵问题日益严重" * 20
    assert of(text).token_estimate >= len(text)


# --- sensitive ------------------------------------------------------------------------------

SECRETS = {
    "api_key": "why does client = OpenAI(api_key='sk-proj-Xk2v9QpL7mN4rT8wY1zA3bC5dE6fG0hJ') fail",
    "token": "curl -H 'Authorization: Bearer abcdef0123456789abcdef0123' https://api.acme.io",
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY",
    "secret": "webhook signing secret = 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b",
    "password": "my password: Hunter2-Secret! is rejected by the form",
    "email": "draft a reply to john.smith@acme-corp.com about the delay",
    "phone": "call me at +34 612 345 678 after five",
    "confidential": "CONFIDENTIAL: board notes, summarize the risks",
}


@pytest.mark.parametrize(("kind", "text"), SECRETS.items())
def test_each_sensitive_kind_is_detected(kind: str, text: str) -> None:
    c = of(text)
    assert c.sensitive
    assert kind in c.sensitive_kinds


@pytest.mark.parametrize(("kind", "text"), SECRETS.items())
def test_sensitive_kind_deep_in_a_long_prompt_is_detected(kind: str, text: str) -> None:
    """The classifier reads a window of a long message; the sensitive scan reads all of it."""
    padding = FILLER * 4
    c = of(f"{padding}{text}\n{padding}Summarize the notes above.")
    assert len(padding) > 10_000
    assert kind in c.sensitive_kinds


@pytest.mark.parametrize(
    "text",
    [
        "ghp_R4nd0mT0k3nV4lu3Abcdefghij1234567890",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLQ",
        "xoxb-2412345678-5123456789012-AbCdEfGhIjKlMnOpQrStUvWx",
        "STRIPE=sk_live_51HqLyjWDarjtT1zdp7dcXYZabc123",
    ],
)
def test_vendor_key_formats(text: str) -> None:
    assert "api_key" in of(f"is this right? {text}").sensitive_kinds


@pytest.mark.parametrize(
    "text",
    [
        "Vertraulich: bitte fasse das Protokoll zusammen.",
        "Documento confidencial: resume el acuerdo.",
        "Document confidentiel : relis ce paragraphe.",
    ],
)
def test_confidential_in_other_languages(text: str) -> None:
    assert of(text).sensitive_kinds == ("confidential",)


def test_email_after_a_leading_mention_is_found() -> None:
    assert of("@team: please loop in bob@acme.io").sensitive_kinds == ("email",)


def test_clean_prompt_is_not_sensitive() -> None:
    c = of(
        "Write a Python function that parses durations like '1h30m' into seconds; the commit "
        "a3f9c2e1d4b5a6978877665544332211aabbccdd touched the parser, version 2.14.0 on 2024-05-14."
    )
    assert not c.sensitive
    assert c.sensitive_kinds == ()


def test_confidential_in_the_system_prompt_alone_does_not_flag() -> None:
    c = classify(
        [
            {"role": "system", "content": "These instructions are confidential."},
            {"role": "user", "content": "hello"},
        ]
    )
    assert not c.sensitive


def test_secret_in_the_system_prompt_still_flags() -> None:
    c = classify(
        [
            {"role": "system", "content": "Use key sk-proj-Xk2v9QpL7mN4rT8wY1zA3bC5dE6fG0hJ."},
            {"role": "user", "content": "hello"},
        ]
    )
    assert c.sensitive_kinds == ("api_key",)


# --- contract -----------------------------------------------------------------------------


def test_quality_floor_and_capabilities() -> None:
    assert QUALITY_FLOOR == {"simple": 0, "medium": 40, "complex": 65, "reasoning": 80}
    assert required_capability("tool-use") == "tools"
    assert required_capability("conversation") == "chat"
    assert {required_capability(t) for t in TASK_TYPES} >= {"code", "math", "vision"}


def test_classification_is_frozen_and_hashable() -> None:
    c = of("hi")
    with pytest.raises(AttributeError):
        c.complexity = "complex"  # type: ignore[misc]
    assert hash(c) == hash(of("hi"))


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "user", "content": None}],
        [{"role": "user", "content": [{"type": "text", "text": 3}, "junk", {"type": "x"}]}],
        [{"role": "assistant", "tool_calls": "nonsense"}],
        [{"content": "no role at all"}],
    ],
)
def test_odd_input_never_raises(messages: list[dict[str, Any]]) -> None:
    assert classify(messages).complexity in COMPLEXITIES


# --- the labelled dev set -----------------------------------------------------------------


def test_devset_is_well_formed() -> None:
    entries = load_devset(DEVSET)
    assert len(entries) >= 220
    assert len({e["id"] for e in entries}) == len(entries)
    for e in entries:
        assert e["expected"] in COMPLEXITIES, e["id"]
        assert e["task_type"] in TASK_TYPES, e["id"]
        assert e["messages"] and e["note"], e["id"]


def test_devset_accuracy_and_gross_under_routing() -> None:
    report = evaluate(load_devset(DEVSET))
    assert report.accuracy >= 0.85, report.confusion_table()
    assert report.gross_under_routing <= 0.02, report.confusion_table()
    assert not report.sensitive_misses, [o.entry["id"] for o in report.sensitive_misses]
