"""Read an agent harness's request for what the user actually asked.

Agent harnesses (OpenClaw, Claude Code, Codex, opencode) wrap the user's words in their
own text: timestamps, runtime lines, reminder blocks, environment context, side requests
that title a conversation. Routing that reads the wrapping routes blindly: every turn
looks alike, session ids look like keys, and "hi" no longer starts with "hi".

:func:`read_envelope` names the harness (from the User-Agent, then from markers in the
system prompt) and returns the request's *routing view*: the same OpenAI-shaped body with
each user message cut down to the user's own words, and messages that were only harness
text dropped. Rules, classification and the sensitive scan read that view; the body sent
upstream is untouched. It also says what kind of turn this is (an ordinary turn, a
heartbeat, a side request) and the conversation it belongs to.

Each harness is one :class:`Harness` row of data in :data:`HARNESSES`; supporting a new
one is adding a row. Pure functions, no I/O; patterns run on user messages only (never
on a harness's 20 kB system prompt), so reading costs well under a millisecond.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

TurnKind = Literal["turn", "heartbeat", "side"]


@dataclass(frozen=True)
class Harness:
    """What tells one harness's requests apart, and what of them is not the user's words."""

    name: str
    #: Lower-case substrings of the User-Agent header.
    user_agents: tuple[str, ...] = ()
    #: Substrings of the system prompt (system and developer messages, first 4 kB each).
    system_markers: tuple[str, ...] = ()
    #: Headers that carry the harness's conversation id, in order of preference.
    session_headers: tuple[str, ...] = ()
    #: A regex whose group 1 is the conversation id, searched in the raw user text.
    session_pattern: str | None = None
    #: Regexes removed from every user message (blocks, prefixes, runtime lines), in order.
    #: Each opens with literal text: Python's re then skips to that text at memchr speed,
    #: where a pattern that opens with ``^``, ``\b`` or an alternation tries every position
    #: (over a 16 kB paste, about 1 ms each). A line start is therefore checked after the
    #: literal, by a lookbehind: ``Runtime: (?<![^\n]Runtime: )``.
    strip: tuple[str, ...] = ()
    #: Substrings of the system prompt that make the request a side request (a title).
    side_markers: tuple[str, ...] = ()
    #: Prefixes of the ask that make the turn a heartbeat.
    heartbeat_prefixes: tuple[str, ...] = ()


#: Where harness markers are looked for in a system prompt: its head.
SYSTEM_HEAD_CHARS: Final = 4096

_OPENCLAW_STAMP = (
    r"\w{3} \d{4}-\d{2}-\d{2} \d{1,2}:\d{2}(?::\d{2})?(?: [A-Z]{2,5}|[+-]\d{2}:?\d{2})?"
)

HARNESSES: Final[tuple[Harness, ...]] = (
    Harness(
        name="openclaw",
        user_agents=("openclaw",),
        system_markers=("running inside OpenClaw", "OpenClaw"),
        session_pattern=r"sessionId(?<!\wsessionId)=([0-9A-Za-z-]{8,64})",
        strip=(
            r"<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>.*?(?:<<<END_OPENCLAW_INTERNAL_CONTEXT>>>|\Z)",
            # "[Wed 2026-12-02 01:15 UTC] " and "[WhatsApp +1555 Sun 2026-01-18 09:00] ".
            r"\[(?<![^\n]\[)[^\]\n]{0,80}?" + _OPENCLAW_STAMP + r"[^\]\n]{0,40}\]\s*",
            r"Runtime: agent=(?<![^\n]Runtime: agent=)[^\n]*$",
        ),
        heartbeat_prefixes=(
            "Follow the heartbeat monitor scratch context when provided.",
            "Read HEARTBEAT.md if it exists",
        ),
    ),
    Harness(
        name="claude-code",
        user_agents=("claude-cli/", "claude-code/"),
        system_markers=("You are Claude Code", "Claude Agent SDK"),
        session_headers=("x-claude-code-session-id",),
        strip=(r"<system-reminder>.*?(?:</system-reminder>|\Z)",),
        side_markers=(
            "Generate a concise, sentence-case title",
            "Analyze if this message indicates a new conversation topic",
            "Summarize this coding conversation",
            "isNewTopic",
        ),
    ),
    Harness(
        name="codex",
        user_agents=("codex_", "codex-", "codex/"),
        system_markers=("You are Codex", "You are a coding agent running in the Codex CLI"),
        session_headers=("session-id", "session_id", "x-session-id"),
        strip=(
            r"<environment_context>.*?(?:</environment_context>|\Z)",
            r"<user_instructions>.*?(?:</user_instructions>|\Z)",
            r"# AGENTS\.md instructions for [^\n]*\n+<INSTRUCTIONS>.*?(?:</INSTRUCTIONS>|\Z)",
            r"<turn_aborted>.*?(?:</turn_aborted>|\Z)",
        ),
    ),
    Harness(
        name="opencode",
        user_agents=("opencode/", "opencode "),
        system_markers=("You are opencode", "You are OpenCode"),
        session_headers=("x-session-id", "x-session-affinity"),
        strip=(r"<system-reminder>.*?(?:</system-reminder>|\Z)",),
        side_markers=("You are a title generator",),
    ),
)

#: A client that is none of the above: its messages are its own words.
PLAIN: Final = Harness(name="plain", session_headers=("x-session-id",))


@dataclass(frozen=True)
class _Compiled:
    harness: Harness
    strip: tuple[re.Pattern[str], ...]
    session: re.Pattern[str] | None


def _compile(h: Harness) -> _Compiled:
    # Apart, not as one alternation: an alternation has no literal to skip to.
    strip = tuple(re.compile(p, re.S | re.M) for p in h.strip)
    session = re.compile(h.session_pattern) if h.session_pattern else None
    return _Compiled(h, strip, session)


@dataclass(frozen=True)
class HarnessTable:
    """Harness rows with their patterns compiled once; the plain client's row last."""

    rows: tuple[_Compiled, ...]
    plain: _Compiled

    @classmethod
    def of(cls, harnesses: Sequence[Harness]) -> HarnessTable:
        return cls(tuple(_compile(h) for h in harnesses), _compile(PLAIN))

    def identify(self, headers: Mapping[str, str], system_head: str) -> _Compiled:
        """The harness by its User-Agent, else by its system prompt (a side request's own
        prompt, such as a title generator's, names its harness too); the plain row if
        neither."""
        agent = (_header(headers, "user-agent") or "").lower()
        if agent:
            for c in self.rows:
                if any(ua in agent for ua in c.harness.user_agents):
                    return c
        for c in self.rows:
            h = c.harness
            if any(marker in system_head for marker in (*h.system_markers, *h.side_markers)):
                return c
        return self.plain


KNOWN: Final = HarnessTable.of(HARNESSES)
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})
_TEXT_PARTS: Final = frozenset({"text", "input_text"})
# Three literal newlines first: `\n{3,}` has no literal to skip to and tries every position
# (0.4 ms over a 16 kB paste).
_BLANK_LINES: Final = re.compile(r"\n\n\n+")


@dataclass(frozen=True)
class Envelope:
    """A request as its harness sent it, read for routing."""

    harness: str
    kind: TurnKind
    #: The user's own words in the last user message that has any.
    ask: str
    #: The conversation's id: the harness's session id, an ``X-Session-Id`` header, or a
    #: hash of the system prompt and first user message; None without any user message.
    conversation: str | None
    #: The body rules and classification read: user messages cut to the user's words.
    body: Mapping[str, Any]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name and isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "\n".join(
            p["text"]
            for p in content
            if isinstance(p, Mapping)
            and p.get("type") in _TEXT_PARTS
            and isinstance(p.get("text"), str)
        )
    return ""


def _system_head(messages: Sequence[Any]) -> str:
    heads = [
        _text(m.get("content"))[:SYSTEM_HEAD_CHARS]
        for m in messages
        if isinstance(m, Mapping) and m.get("role") in _SYSTEM_ROLES
    ]
    return "\n".join(heads)


def _clean(text: str, strip: Sequence[re.Pattern[str]]) -> str:
    cut = text
    for pattern in strip:
        cut = pattern.sub("", cut) if cut else cut
    return _BLANK_LINES.sub("\n\n", cut).strip() if cut != text else text


def _clean_content(content: Any, strip: Sequence[re.Pattern[str]]) -> Any:
    """The content with harness text removed; None when nothing of the user's is left."""
    if isinstance(content, str):
        cleaned = _clean(content, strip)
        return cleaned or None
    if not isinstance(content, Sequence):
        return content
    parts: list[Any] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") in _TEXT_PARTS:
            cleaned = _clean(str(part.get("text") or ""), strip)
            if cleaned:
                parts.append({**part, "text": cleaned})
        else:
            parts.append(part)
    return parts or None


def _conversation(
    c: _Compiled,
    headers: Mapping[str, str],
    raw_user: Sequence[str],
    system_head: str,
    first_user: str,
) -> str | None:
    for name in (*c.harness.session_headers, "x-session-id"):
        value = _header(headers, name)
        if value:
            return f"{c.harness.name}:{value[:128]}"
    if c.session is not None:
        for text in reversed(raw_user):
            m = c.session.search(text)
            if m:
                return f"{c.harness.name}:{m.group(1)}"
    if not first_user:
        return None
    digest = hashlib.blake2b(f"{system_head}\0{first_user}".encode(), digest_size=12)
    return f"{c.harness.name}:h:{digest.hexdigest()}"


def read_envelope(
    body: Mapping[str, Any], headers: Mapping[str, str], table: HarnessTable = KNOWN
) -> Envelope:
    """Name the harness and cut its requests down to the user's words (see the module doc).

    Malformed pieces are passed through untouched, never raised on: validation is the
    door's job, and a body it let through must route.
    """
    raw = body.get("messages")
    messages: Sequence[Any] = raw if isinstance(raw, Sequence) and not isinstance(raw, str) else ()
    system_head = _system_head(messages)
    c = table.identify(headers, system_head)
    h = c.harness
    out: list[Any] = []
    first_user = ""
    raw_user: list[str] = []
    ask = ""
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role") != "user":
            out.append(m)
            continue
        raw_user.append(_text(m.get("content")))
        content = _clean_content(m.get("content"), c.strip)
        if content is None:
            continue
        text = _text(content)
        first_user = first_user or text
        ask = text or ask
        out.append({**m, "content": content})
    kind: TurnKind = "turn"
    if any(marker in system_head for marker in h.side_markers):
        kind = "side"
    elif any(ask.startswith(p) for p in h.heartbeat_prefixes):
        kind = "heartbeat"
    conversation = _conversation(c, headers, raw_user, system_head, first_user)
    view = body if c is table.plain else {**body, "messages": out}
    return Envelope(h.name, kind, ask, conversation, view)
