"""Reading agent harnesses' requests: against what real harnesses sent (tests/data/harness)."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.routing.classify import classify
from llmswitch.routing.envelope import (
    HARNESSES,
    KNOWN,
    PLAIN,
    Harness,
    HarnessTable,
    read_envelope,
)
from llmswitch.routing.rules import DEFAULT_RULES, features_of, first_match
from tests.routing.harness_requests import all_captures, captured, chat_request

ASK = "Explain in two sentences why the sky is blue."
TOOL_ASK = "Please run echo captured in the shell and tell me what it printed."


def read(name: str) -> Any:
    headers, body = chat_request(name)
    return read_envelope(body, headers)


def rule_for(name: str) -> str:
    headers, body = chat_request(name)
    rule = first_match(DEFAULT_RULES, features_of(body, headers, 1000))
    assert rule is not None
    return rule.name


@pytest.mark.parametrize(
    ("name", "harness", "kind", "ask"),
    [
        ("openclaw/hello_00", "openclaw", "turn", "hi"),
        ("openclaw/ask_00", "openclaw", "turn", ASK),
        ("openclaw/channel_constructed", "openclaw", "turn", "hello"),
        ("openclaw/heartbeat_constructed", "openclaw", "heartbeat", None),
        ("claude-code/hello_00", "claude-code", "turn", "hi"),
        ("claude-code/ask_00", "claude-code", "turn", ASK),
        ("claude-code/tool_01", "claude-code", "turn", TOOL_ASK),
        ("claude-code/title_constructed", "claude-code", "side", None),
        ("codex/hello_00", "codex", "turn", "hi"),
        ("codex/ask_00", "codex", "turn", ASK),
        ("codex/tool_01", "codex", "turn", TOOL_ASK),
        ("opencode/hello_00", "opencode", "side", None),
        ("opencode/hello_01", "opencode", "turn", "hi"),
        ("opencode/tool_02", "opencode", "turn", f'"{TOOL_ASK}"'),
    ],
)
def test_each_harness_is_named_and_read_down_to_the_users_words(
    name: str, harness: str, kind: str, ask: str | None
) -> None:
    env = read(name)
    assert (env.harness, env.kind) == (harness, kind)
    if ask is not None:
        assert env.ask == ask


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("openclaw/hello_00", "greeting"),
        ("openclaw/channel_constructed", "greeting"),
        ("openclaw/heartbeat_constructed", "heartbeat"),
        ("claude-code/hello_00", "greeting"),
        ("claude-code/title_constructed", "side-request"),
        ("codex/hello_00", "greeting"),
        ("opencode/hello_00", "side-request"),
        ("opencode/hello_01", "greeting"),
        ("claude-code/ask_00", "catch-all"),
    ],
)
def test_rules_see_the_ask_and_the_kind_of_turn(name: str, rule: str) -> None:
    assert rule_for(name) == rule


@pytest.mark.parametrize("name", list(all_captures()))
def test_nothing_in_a_harness_envelope_counts_as_sensitive(name: str) -> None:
    headers, body = chat_request(name)
    env = read_envelope(body, headers)
    cls = classify(env.body["messages"], has_tools=bool(body.get("tools")))
    assert cls.sensitive_kinds == ()


@pytest.mark.parametrize("name", list(all_captures()))
def test_every_capture_belongs_to_a_conversation_named_by_its_harness(name: str) -> None:
    env = read(name)
    assert env.conversation is not None
    assert env.conversation.startswith(env.harness + ":")


def test_a_conversation_keeps_its_id_across_turns() -> None:
    for first, later in (
        ("claude-code/tool_00", "claude-code/tool_01"),
        ("codex/tool_00", "codex/tool_01"),
        ("opencode/tool_01", "opencode/tool_02"),
    ):
        assert read(first).conversation == read(later).conversation


def test_openclaw_session_id_comes_from_its_runtime_line() -> None:
    env = read("openclaw/hello_00")
    text = captured("openclaw/hello_00")["body"]["messages"][1]["content"]
    session = text.split("sessionId=")[1].split(" ")[0]
    assert env.conversation == f"openclaw:{session}"


def test_the_greeting_is_not_the_short_ask_in_its_envelope() -> None:
    """OpenClaw's "hi" reads as a bare greeting, not as the medium-sized envelope it is in."""
    headers, body = chat_request("openclaw/hello_00")
    bare = classify(body["messages"], has_tools=True)
    env = read_envelope(body, headers)
    enveloped = classify(env.body["messages"], has_tools=True)
    assert (bare.complexity, enveloped.complexity) == ("medium", "simple")


def test_a_plain_client_is_passed_through_untouched() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "<system-reminder>x"}]}
    env = read_envelope(body, {"User-Agent": "python-requests/2.32"})
    assert (env.harness, env.kind, env.body) == ("plain", "turn", body)
    assert env.ask == "<system-reminder>x"


def test_the_user_agent_wins_over_system_markers() -> None:
    head = "You are a personal assistant running inside OpenClaw."
    name = KNOWN.identify({"user-agent": "claude-cli/2.1 (external, cli)"}, head).harness.name
    assert name == "claude-code"
    assert KNOWN.identify({}, head).harness.name == "openclaw"
    assert KNOWN.identify({}, "You are a helpful assistant.").harness is PLAIN


def test_a_new_harness_is_a_row_of_data() -> None:
    row = Harness(name="acme", user_agents=("acme-agent/",), strip=(r"<acme-ctx>.*?</acme-ctx>",))
    body = {"messages": [{"role": "user", "content": "<acme-ctx>cwd=/x</acme-ctx>\nhi"}]}
    env = read_envelope(body, {"user-agent": "acme-agent/1.0"}, HarnessTable.of((*HARNESSES, row)))
    assert (env.harness, env.ask) == ("acme", "hi")
    assert read_envelope(body, {"user-agent": "acme-agent/1.0"}).harness == "plain"


def test_malformed_messages_are_passed_over() -> None:
    body: dict[str, Any] = {"messages": [None, {"role": "user", "content": 5}, "x"]}
    env = read_envelope(body, {"user-agent": "claude-cli/2"})
    assert env.ask == ""
    assert env.conversation is None
    assert read_envelope({"messages": "nope"}, {}).ask == ""


def test_parts_lists_keep_their_media_and_lose_only_harness_text() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<system-reminder>today</system-reminder>"},
                    image,
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ]
    }
    env = read_envelope(body, {"user-agent": "claude-cli/2.1"})
    assert env.body["messages"][0]["content"] == [image, {"type": "text", "text": "what is this?"}]
    assert env.ask == "what is this?"


def test_openclaw_lines_are_cut_only_where_a_line_starts() -> None:
    """The stamp and runtime patterns open with their literal text (fast over a long paste)
    and check the line start after it: the same cut as ``^``, nothing more."""
    paste = "\n".join(f"[INFO] worker {i}: Runtime: agent=x sessionId=abc" for i in range(400))
    text = (
        "[Wed 2026-12-02 01:15 UTC] why does this log repeat?\n"
        f"{paste}\n\n"
        "Runtime: agent=main | session=agent:main:explicit:1 | sessionId=0f3c9a1e-5b7d-4c2a"
    )
    body = {"messages": [{"role": "user", "content": text}]}
    env = read_envelope(body, {"user-agent": "openclaw/2026.9.6"})
    assert env.ask == f"why does this log repeat?\n{paste}"
    assert env.conversation == "openclaw:0f3c9a1e-5b7d-4c2a"
    mid = read_envelope(
        {"messages": [{"role": "user", "content": "see xsessionId=zzzzzzzzzz and [x]"}]},
        {"user-agent": "openclaw/2026.9.6"},
    )
    assert mid.ask == "see xsessionId=zzzzzzzzzz and [x]"
    assert mid.conversation is not None and ":h:" in mid.conversation
