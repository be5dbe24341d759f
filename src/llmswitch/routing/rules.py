"""Tier 1 of the routing brain: rules that settle a request before anyone classifies it.

A rule is a :class:`~llmswitch.config.RuleConfig`: a set of conditions (source, channel,
requested model, a regex over the last user message, media, tools, a token range) and an
action. Every condition a rule gives must hold; the first enabled rule by priority (lower
first, then name) wins. Heartbeats, cron jobs, slash commands and bare greetings go
straight to the small local model; everything else is handed to the classifier.

Pure functions over plain data: :func:`features_of` reads what the rules look at from a
request once, :func:`first_match` picks the rule. Patterns are compiled once per pattern
string (by RE2, in linear time: see :mod:`routing.patterns`), so rules edited at run
time need no compile step of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from llmswitch.config import RuleConfig
from llmswitch.routing.envelope import Envelope, read_envelope
from llmswitch.routing.patterns import compile_pattern


@dataclass(frozen=True)
class Features:
    """What the rules look at in one request."""

    #: The model the client asked for (``"auto"``, an id or an alias; ``""`` if none).
    model: str
    source: str | None
    channel: str | None
    #: The last user message; a long one only by its head and tail (see RULE_WINDOW_CHARS).
    last_user_text: str
    has_media: bool
    has_tools: bool
    token_estimate: int
    #: The agent harness that sent the request (see routing.envelope); "plain" if none.
    harness: str = "plain"
    #: The conversation it belongs to, for model affinity; None without a user message.
    conversation: str | None = None


# --- reading the request -----------------------------------------------------------------

# Content parts that carry text; any other typed part (image_url, input_audio, file, ...)
# is media. "refusal" and "output_text" are text an assistant turn may carry.
_TEXT_PARTS: Final = frozenset({"text", "input_text", "output_text", "refusal"})
_USER_TEXT_PARTS: Final = frozenset({"text", "input_text"})


#: Rule patterns see at most this many characters from each end of the last user message:
#: commands and asks sit at the ends, and a pasted 100 KB log must not make every rule
#: pattern (configured ones included) scan it whole on the request path.
RULE_WINDOW_CHARS: Final = 2000


def rule_window(text: str) -> str:
    if len(text) <= 2 * RULE_WINDOW_CHARS:
        return text
    return text[:RULE_WINDOW_CHARS] + "\n" + text[-RULE_WINDOW_CHARS:]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value by case-insensitive name; blank counts as absent."""
    for key, value in headers.items():
        if key.lower() == name and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _meta(body: Mapping[str, Any], key: str) -> str | None:
    metadata = body.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    value = metadata.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if not isinstance(content, Sequence):
        return ""
    texts = [
        part["text"]
        for part in content
        if isinstance(part, Mapping)
        and part.get("type") in _USER_TEXT_PARTS
        and isinstance(part.get("text"), str)
    ]
    return "\n".join(texts)


def _has_media_part(content: Any) -> bool:
    if isinstance(content, str) or not isinstance(content, Sequence):
        return False
    return any(
        isinstance(part, Mapping)
        and isinstance(part.get("type"), str)
        and part["type"] not in _TEXT_PARTS
        for part in content
    )


#: The ``source`` a harness's own turn gets when no header or metadata names one: a
#: heartbeat read from its content matches the ``heartbeat`` rule, a side request (a
#: conversation title) the ``side-request`` rule.
TURN_SOURCES: Final[Mapping[str, str]] = {"heartbeat": "heartbeat", "side": "side-request"}


def features_of(
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    token_estimate: int,
    envelope: Envelope | None = None,
) -> Features:
    """Read the rule features of an OpenAI-style chat request.

    The request is read through its harness envelope (``envelope``, or read here): the
    text is the user's own words in the last ``user`` message that has any (text parts
    joined by newlines), not the harness's wrapping. ``source`` and ``channel`` come from
    the ``X-Source`` / ``X-Channel`` headers (any case), else from ``metadata.source`` /
    ``metadata.channel`` in the body, else (source only) from the kind of harness turn
    (:data:`TURN_SOURCES`). Any typed content part that is not text, in any message, makes
    the request carry media. Legacy ``functions`` count as tools. Malformed pieces of the
    body are ignored, never raised on.
    """
    env = envelope if envelope is not None else read_envelope(body, headers)
    messages = env.body.get("messages")
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        messages = ()
    last_user: Any = None
    has_media = False
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        if message.get("role") == "user":
            last_user = content
        has_media = has_media or _has_media_part(content)
    model = body.get("model")
    return Features(
        model=model if isinstance(model, str) else "",
        source=_header(headers, "x-source") or _meta(body, "source") or TURN_SOURCES.get(env.kind),
        channel=_header(headers, "x-channel") or _meta(body, "channel"),
        last_user_text=rule_window(_text_of(last_user)),
        has_media=has_media,
        has_tools=bool(body.get("tools") or body.get("functions")),
        token_estimate=token_estimate,
        harness=env.harness,
        conversation=env.conversation,
    )


# --- the shipped rules -------------------------------------------------------------------

# A bare greeting or thanks and nothing else: the whole trimmed message, so "hello, can you
# refactor my module" is not one.
GREETING_PATTERN: Final = (
    r"\A\s*(?:"
    r"(?:hi|hello|hey|hiya|howdy|yo)(?:\s+there)?"
    r"|(?:thanks|thank\s+you|thank\s*u|thx|ty)(?:\s+(?:a\s+lot|so\s+much|very\s+much))?|cheers"
    r"|good\s+(?:morning|afternoon|evening|night)"
    r"|hola|bonjour|salut|hallo|guten\s+(?:morgen|tag|abend)|ol[aá]|ciao|merci|gracias|danke"
    r"|你好|您好|谢谢|こんにちは|おはよう(?:ございます)?|こんばんは|ありがとう(?:ございます)?"
    r")[\s!.?~,;:)(\x{ff01}\x{3002}\x{ff1f}\x{ff5e}\x{3001}]*\z"  # and their full-width forms
)

# Seed 000 also had a "code keywords → classify" rule. Its action is the catch-all's, and
# its keyword regex cost about 2 ms on a 4,000-token prompt, so the catch-all covers it.
DEFAULT_RULES: Final[tuple[RuleConfig, ...]] = (
    RuleConfig(name="heartbeat", priority=10, source="heartbeat", action="route_self"),
    RuleConfig(name="side-request", priority=15, source="side-request", action="route_self"),
    RuleConfig(name="cron", priority=20, source="cron", action="route_self"),
    RuleConfig(name="status-command", priority=30, pattern=r"\A\s*/status\b", action="route_self"),
    RuleConfig(name="model-command", priority=31, pattern=r"\A\s*/model\b", action="route_self"),
    RuleConfig(
        name="session-command", priority=32, pattern=r"\A\s*/(?:new|reset)\b", action="route_self"
    ),
    RuleConfig(name="greeting", priority=40, pattern=GREETING_PATTERN, action="route_self"),
    RuleConfig(name="media", priority=50, has_media=True, action="classify"),
    RuleConfig(name="catch-all", priority=99, action="classify"),
)


# --- matching ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def compiled(pattern: str) -> Any:
    """A rule pattern compiled case-insensitively by RE2; cached per pattern string."""
    return compile_pattern(pattern)


def _same(wanted: str, got: str | None) -> bool:
    return got is not None and wanted.casefold() == got.strip().casefold()


def matches(rule: RuleConfig, f: Features) -> bool:
    """Whether an enabled rule's every condition holds; a disabled rule never matches.

    ``source`` and ``channel`` compare case-insensitively, ``model`` exactly; ``pattern``
    is searched (not anchored unless it anchors itself) in the last user message;
    ``token_min`` and ``token_max`` are inclusive.
    """
    if not rule.enabled:
        return False
    if rule.source is not None and not _same(rule.source, f.source):
        return False
    if rule.channel is not None and not _same(rule.channel, f.channel):
        return False
    if rule.model is not None and rule.model != f.model:
        return False
    if rule.has_media is not None and rule.has_media != f.has_media:
        return False
    if rule.has_tools is not None and rule.has_tools != f.has_tools:
        return False
    if rule.token_min is not None and f.token_estimate < rule.token_min:
        return False
    if rule.token_max is not None and f.token_estimate > rule.token_max:
        return False
    return rule.pattern is None or compiled(rule.pattern).search(f.last_user_text) is not None


def _order(rule: RuleConfig) -> tuple[int, str]:
    return rule.priority, rule.name


def first_match(rules: Iterable[RuleConfig], f: Features) -> RuleConfig | None:
    """The first rule that matches, by priority (lower first) then name; None if none does."""
    for rule in sorted(rules, key=_order):
        if matches(rule, f):
            return rule
    return None


def effective_rules(
    configured: Sequence[RuleConfig] | None, stored: Sequence[RuleConfig]
) -> tuple[RuleConfig, ...]:
    """The rules in force: the configured ones (or :data:`DEFAULT_RULES` when None), with
    the stored ones (edited at run time) replacing those of the same name and adding new
    ones; sorted by priority, then name.
    """
    base = DEFAULT_RULES if configured is None else configured
    overlay = {rule.name: rule for rule in stored}
    merged = [rule for rule in base if rule.name not in overlay]
    merged.extend(overlay.values())
    return tuple(sorted(merged, key=_order))
