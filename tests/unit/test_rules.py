"""Tier-1 rules: reading features from a request, the shipped rules, matching, overlays."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from llmswitch.config import RuleConfig
from llmswitch.routing.rules import (
    DEFAULT_RULES,
    RULE_WINDOW_CHARS,
    Features,
    compiled,
    effective_rules,
    features_of,
    first_match,
    matches,
)


def feat(text: str = "", **kw: Any) -> Features:
    base = Features(
        model="auto",
        source=None,
        channel=None,
        last_user_text=text,
        has_media=False,
        has_tools=False,
        token_estimate=10,
    )
    return dataclasses.replace(base, **kw)


def pick(f: Features, rules: tuple[RuleConfig, ...] = DEFAULT_RULES) -> RuleConfig:
    rule = first_match(rules, f)
    assert rule is not None
    return rule


# --- the shipped rules -------------------------------------------------------------------


def test_default_rules_priorities_and_actions() -> None:
    table = {r.name: (r.priority, r.action) for r in DEFAULT_RULES}
    assert table == {
        "heartbeat": (10, "route_self"),
        "side-request": (15, "route_self"),
        "cron": (20, "route_self"),
        "status-command": (30, "route_self"),
        "model-command": (31, "route_self"),
        "session-command": (32, "route_self"),
        "greeting": (40, "route_self"),
        "media": (50, "classify"),
        "catch-all": (99, "classify"),
    }
    assert all(r.enabled and r.target is None for r in DEFAULT_RULES)
    assert list(DEFAULT_RULES) == sorted(DEFAULT_RULES, key=lambda r: r.priority)


def test_heartbeat_source_routes_to_self() -> None:
    rule = pick(feat("write me a long essay about trio", source="heartbeat"))
    assert (rule.name, rule.priority, rule.action) == ("heartbeat", 10, "route_self")


def test_source_compares_case_insensitively() -> None:
    assert pick(feat("ping", source="Heartbeat")).name == "heartbeat"
    assert pick(feat("ping", source="heartbeats")).name == "catch-all"


def test_cron_source_routes_to_self() -> None:
    rule = pick(feat("summarise the inbox", source="cron"))
    assert (rule.name, rule.priority, rule.action) == ("cron", 20, "route_self")


@pytest.mark.parametrize(
    ("text", "name", "priority"),
    [
        ("/status", "status-command", 30),
        ("  /status now", "status-command", 30),
        ("/STATUS", "status-command", 30),
        ("/model", "model-command", 31),
        ("/model coder-14b", "model-command", 31),
        ("/new", "session-command", 32),
        ("/reset", "session-command", 32),
        ("/reset please", "session-command", 32),
    ],
)
def test_commands_route_to_self(text: str, name: str, priority: int) -> None:
    rule = pick(feat(text))
    assert (rule.name, rule.priority, rule.action) == (name, priority, "route_self")


@pytest.mark.parametrize("text", ["/statusbar", "/models", "/newer", "what does /reset do?"])
def test_not_quite_commands_are_not_commands(text: str) -> None:
    assert pick(feat(text)).name not in {"status-command", "model-command", "session-command"}


@pytest.mark.parametrize(
    "text",
    [
        "hello",
        "Hello!",
        "  hi  ",
        "hey there",
        "HEY",
        "thanks",
        "Thank you!",
        "thanks a lot!!",
        "good morning",
        "Good evening.",
        "hola",
        "bonjour",
        "hallo",
        "olá",
        "你好",
        "你好\uff01",  # full-width !
        "こんにちは",
        "こんにちは。",
    ],
)
def test_plain_greetings_route_to_self(text: str) -> None:
    rule = pick(feat(text))
    assert (rule.name, rule.priority, rule.action) == ("greeting", 40, "route_self")


@pytest.mark.parametrize(
    "text",
    [
        "hello, please refactor this function",
        "hello, can you refactor my module",
        "hi, what is the capital of France?",
        "thanks, now do the same for the other file",
        "good morning! plan my day",
        "hello\nwrite a poem",
        "say hello",
        "hey there, what's up with this traceback",
        "history",  # starts with "hi"
    ],
)
def test_greeting_with_more_is_not_a_greeting(text: str) -> None:
    assert pick(feat(text)).name != "greeting"


def test_greeting_followed_by_code_is_classified() -> None:
    rule = pick(feat("hello, please refactor this function"))
    assert (rule.name, rule.action) == ("catch-all", "classify")


def test_media_classifies_via_media_rule() -> None:
    rule = pick(feat("what is in this picture?", has_media=True))
    assert (rule.name, rule.priority, rule.action) == ("media", 50, "classify")
    # a greeting with an image attached is still a greeting: it comes first
    assert pick(feat("hi", has_media=True)).name == "greeting"


@pytest.mark.parametrize(
    "text",
    [
        "write a function that parses dates",
        "import numpy as np\nwhat does this do",
        "from collections import deque -- why is it slow?",
        "def add(a, b):\n    return a + b",
        "```\nx = 1\n```",
        "Traceback (most recent call last): ...",
        "SELECT name FROM users WHERE id = 1 is slow",
        "how do I debug a segfault in C++",
        "explain this regex",
        "please refactor my module",
    ],
)
def test_code_is_classified(text: str) -> None:
    # Seed 000 had a "code" rule whose action was the catch-all's; matching its keyword
    # regex cost ~2 ms on a long prompt for no change in outcome, so the catch-all does it.
    rule = pick(feat(text))
    assert (rule.name, rule.action) == ("catch-all", "classify")


@pytest.mark.parametrize(
    "text",
    [
        "what is the capital of France?",
        "write a poem about autumn",
        "select the best option from the list",  # lower-case prose, not SQL
        "",
    ],
)
def test_generic_message_goes_to_catch_all(text: str) -> None:
    rule = pick(feat(text))
    assert (rule.name, rule.priority, rule.action) == ("catch-all", 99, "classify")


def test_every_default_pattern_compiles() -> None:
    for rule in DEFAULT_RULES:
        if rule.pattern is not None:
            compiled(rule.pattern)


# --- matching ------------------------------------------------------------------------------


def test_disabled_rules_are_skipped() -> None:
    rules = tuple(
        r.model_copy(update={"enabled": False}) if r.name == "heartbeat" else r
        for r in DEFAULT_RULES
    )
    f = feat("hello", source="heartbeat")
    assert not matches(rules[0], f)
    assert pick(f, rules).name == "greeting"
    off = RuleConfig(name="off", priority=0, enabled=False)
    assert first_match((off,), f) is None


def test_priority_ordering_lower_first_regardless_of_list_order() -> None:
    late = RuleConfig(name="late", priority=50, action="reject", message="no")
    early = RuleConfig(name="early", priority=5, action="route", target="big")
    assert pick(feat("x"), (late, early)).name == "early"
    assert pick(feat("x"), (early, late)).name == "early"


def test_same_priority_breaks_ties_by_name() -> None:
    b = RuleConfig(name="b", priority=1)
    a = RuleConfig(name="a", priority=1)
    assert pick(feat("x"), (b, a)).name == "a"


def test_no_rule_matches_returns_none() -> None:
    only = RuleConfig(name="cron-only", source="cron")
    assert first_match((only,), feat("hi")) is None
    assert first_match((), feat("hi")) is None


def test_rule_without_conditions_matches_everything() -> None:
    assert matches(RuleConfig(name="any"), feat("anything", has_media=True, has_tools=True))


def test_channel_condition() -> None:
    rule = RuleConfig(name="slack", channel="slack", action="route", target="m")
    assert matches(rule, feat("x", channel="slack"))
    assert matches(rule, feat("x", channel="Slack"))
    assert not matches(rule, feat("x", channel="discord"))
    assert not matches(rule, feat("x"))


def test_model_condition_is_exact() -> None:
    rule = RuleConfig(name="auto-only", model="auto")
    assert matches(rule, feat("x", model="auto"))
    assert not matches(rule, feat("x", model="coder-14b"))
    assert not matches(rule, feat("x", model=""))


def test_has_tools_and_has_media_conditions_both_ways() -> None:
    tools = RuleConfig(name="tools", has_tools=True)
    no_tools = RuleConfig(name="no-tools", has_tools=False)
    assert matches(tools, feat(has_tools=True)) and not matches(tools, feat())
    assert matches(no_tools, feat()) and not matches(no_tools, feat(has_tools=True))
    text_only = RuleConfig(name="text-only", has_media=False)
    assert matches(text_only, feat()) and not matches(text_only, feat(has_media=True))


def test_token_range_is_inclusive() -> None:
    rule = RuleConfig(name="mid", token_min=100, token_max=200)
    assert not matches(rule, feat(token_estimate=99))
    assert matches(rule, feat(token_estimate=100))
    assert matches(rule, feat(token_estimate=200))
    assert not matches(rule, feat(token_estimate=201))
    assert matches(RuleConfig(name="small", token_max=5), feat(token_estimate=0))
    assert matches(RuleConfig(name="big", token_min=5), feat(token_estimate=10**6))


def test_all_conditions_must_hold() -> None:
    rule = RuleConfig(
        name="bot-code", source="bot", channel="ci", pattern="deploy", has_tools=True, token_max=50
    )
    good = feat("please deploy", source="bot", channel="ci", has_tools=True, token_estimate=50)
    assert matches(rule, good)
    for change in (
        {"source": "human"},
        {"channel": "chat"},
        {"last_user_text": "please wait"},
        {"has_tools": False},
        {"token_estimate": 51},
    ):
        assert not matches(rule, dataclasses.replace(good, **change)), change


def test_pattern_is_searched_case_insensitively_and_compiled_once() -> None:
    rule = RuleConfig(name="kw", pattern=r"\burgent\b")
    assert matches(rule, feat("this is URGENT, please"))
    assert not matches(rule, feat("insurgent"))
    assert compiled(r"\burgent\b") is compiled(r"\burgent\b")


# --- effective rules -----------------------------------------------------------------------


def test_effective_rules_default_when_not_configured() -> None:
    assert effective_rules(None, ()) == DEFAULT_RULES


def test_effective_rules_configured_replaces_defaults() -> None:
    mine = (RuleConfig(name="mine", priority=7),)
    assert effective_rules(mine, ()) == mine
    assert effective_rules((), ()) == ()


def test_effective_rules_stored_overlay_replaces_and_adds() -> None:
    greeting_off = RuleConfig(name="greeting", priority=40, enabled=False)
    vip = RuleConfig(name="vip", priority=1, channel="vip", action="route", target="big")
    rules = effective_rules(None, [greeting_off, vip])
    names = [r.name for r in rules]
    assert names[0] == "vip"
    assert names.count("greeting") == 1
    assert next(r for r in rules if r.name == "greeting") is greeting_off
    assert len(rules) == len(DEFAULT_RULES) + 1
    assert [r.priority for r in rules] == sorted(r.priority for r in rules)
    # the overlay takes effect in matching
    assert pick(feat("hello"), rules).name == "catch-all"
    assert pick(feat("hello", channel="vip"), rules).name == "vip"


def test_effective_rules_stored_can_move_a_rule() -> None:
    configured = (RuleConfig(name="a", priority=1), RuleConfig(name="b", priority=2))
    rules = effective_rules(configured, [RuleConfig(name="a", priority=3)])
    assert [(r.name, r.priority) for r in rules] == [("b", 2), ("a", 3)]


# --- features_of -----------------------------------------------------------------------------


def body(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": list(messages), **extra}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_features_plain_request() -> None:
    f = features_of(body(user("hi")), {}, 12)
    assert f == Features(
        model="auto",
        source=None,
        channel=None,
        last_user_text="hi",
        has_media=False,
        has_tools=False,
        token_estimate=12,
        conversation=f.conversation,
    )
    assert f.harness == "plain"
    assert f.conversation is not None and f.conversation.startswith("plain:h:")


def test_features_source_and_channel_from_headers_any_case() -> None:
    for headers in (
        {"X-Source": "heartbeat", "X-Channel": "telegram"},
        {"x-source": "heartbeat", "x-channel": "telegram"},
        {"X-SOURCE": " heartbeat ", "x-Channel": "telegram"},
    ):
        f = features_of(body(user("x")), headers, 1)
        assert (f.source, f.channel) == ("heartbeat", "telegram"), headers


def test_features_source_and_channel_from_metadata() -> None:
    b = body(user("x"), metadata={"source": "cron", "channel": "discord"})
    f = features_of(b, {"Content-Type": "application/json"}, 1)
    assert (f.source, f.channel) == ("cron", "discord")


def test_features_headers_win_over_metadata() -> None:
    b = body(user("x"), metadata={"source": "cron", "channel": "discord"})
    f = features_of(b, {"x-source": "heartbeat"}, 1)
    assert (f.source, f.channel) == ("heartbeat", "discord")
    # a blank header does not hide the metadata
    assert features_of(b, {"X-Source": "  "}, 1).source == "cron"


def test_features_ignore_malformed_metadata() -> None:
    for metadata in ("cron", ["cron"], {"source": 3}, {"source": ""}, None):
        assert features_of(body(user("x"), metadata=metadata), {}, 1).source is None


def test_features_last_user_message_text() -> None:
    b = body(
        {"role": "system", "content": "be brief"},
        user("first question"),
        {"role": "assistant", "content": "an answer"},
        user("second question"),
        {"role": "tool", "content": "tool output", "tool_call_id": "1"},
    )
    assert features_of(b, {}, 1).last_user_text == "second question"


def test_features_text_parts_are_joined() -> None:
    parts = [
        {"type": "text", "text": "line one"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "text", "text": "line two"},
    ]
    f = features_of(body(user(parts)), {}, 1)
    assert f.last_user_text == "line one\nline two"
    assert f.has_media


@pytest.mark.parametrize(
    "part",
    [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ],
)
def test_features_media_parts(part: dict[str, Any]) -> None:
    assert features_of(body(user([part])), {}, 1).has_media


def test_features_media_in_an_earlier_message_counts() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    b = body(user([image]), {"role": "assistant", "content": "a cat"}, user("and now?"))
    f = features_of(b, {}, 1)
    assert f.has_media and f.last_user_text == "and now?"


def test_features_text_only_parts_are_not_media() -> None:
    b = body(
        user([{"type": "text", "text": "hi"}]),
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    )
    assert not features_of(b, {}, 1).has_media


def test_features_tools() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert features_of(body(user("x"), tools=[tool]), {}, 1).has_tools
    assert not features_of(body(user("x"), tools=[]), {}, 1).has_tools
    assert features_of(body(user("x"), functions=[{"name": "f"}]), {}, 1).has_tools


def test_features_tolerate_malformed_bodies() -> None:
    for b in (
        {},
        {"model": 3, "messages": "hello"},
        {"messages": [None, "x", {"role": "user", "content": None}]},
        {"messages": [{"role": "user", "content": [None, {"type": "text", "text": 5}]}]},
    ):
        f = features_of(b, {}, 0)
        assert (f.model, f.last_user_text, f.has_media) == ("", "", False), b


def test_features_feed_the_default_rules() -> None:
    b = body(user("/status"))
    assert pick(features_of(b, {}, 3)).name == "status-command"
    assert pick(features_of(b, {"X-Source": "heartbeat"}, 3)).name == "heartbeat"


def test_rule_patterns_see_only_the_ends_of_a_very_long_message() -> None:
    middle = "x" * 10_000 + " SECRET-WORD " + "y" * 10_000
    body = {"model": "auto", "messages": [{"role": "user", "content": f"/status {middle} bye"}]}
    f = features_of(body, {}, 5_000)
    assert f.last_user_text.startswith("/status") and f.last_user_text.endswith("bye")
    assert "SECRET-WORD" not in f.last_user_text
    assert len(f.last_user_text) == 2 * RULE_WINDOW_CHARS + 1
