"""Tier 2 of the routing brain: a fast heuristic guess at how hard a request is.

No model call and no I/O: the classifier weighs the user's words on a set of dimensions
(reasoning markers, code, multi-step structure, technical terms, ...) and maps the weighted
total onto a complexity tier, with a confidence that falls near the tier edges. It runs on
every request the rules tier does not settle, so it has to cost well under a millisecond
even for a long prompt; classify_signals does the counting with that budget in mind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from llmswitch.routing.classify_signals import MIN_MATERIAL, Signals, signals, wide_chars
from llmswitch.routing.sensitive import request_kinds

Complexity = Literal["simple", "medium", "complex", "reasoning"]
TaskType = Literal["code", "analysis", "creative", "math", "conversation", "vision", "tool-use"]

COMPLEXITIES: Final[tuple[Complexity, ...]] = ("simple", "medium", "complex", "reasoning")
TASK_TYPES: Final[tuple[TaskType, ...]] = (
    "code",
    "analysis",
    "creative",
    "math",
    "conversation",
    "vision",
    "tool-use",
)

# The minimum model quality (0-100) each tier needs; candidate selection filters on it.
QUALITY_FLOOR: Final[Mapping[str, int]] = {
    "simple": 0,
    "medium": 40,
    "complex": 65,
    "reasoning": 80,
}

_CAPABILITY: Final[Mapping[str, str]] = {
    "code": "code",
    "analysis": "analysis",
    "creative": "creative",
    "math": "math",
    "conversation": "chat",
    "vision": "vision",
    "tool-use": "tools",
}


def required_capability(task_type: str) -> str:
    """The model capability a task type needs; an unknown task type raises KeyError."""
    return _CAPABILITY[task_type]


@dataclass(frozen=True)
class Classification:
    """What the router needs to pick a model, plus enough detail to explain the pick."""

    complexity: Complexity
    confidence: float
    task_type: TaskType
    token_estimate: int
    sensitive: bool = False
    sensitive_kinds: tuple[str, ...] = ()
    scores: Mapping[str, float] = field(default_factory=dict, hash=False)
    reason: str = ""
    #: Tools are offered or already in use: a capability the model needs, whatever the
    #: task type (which comes from the ask).
    needs_tools: bool = False


# --- reading the request -----------------------------------------------------------------

_MEDIA_PARTS: Final = frozenset(
    {"image_url", "input_image", "image", "input_audio", "audio", "file", "input_file", "video"}
)
_TEXT_PARTS: Final = frozenset({"text", "input_text"})
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})
_MESSAGE_OVERHEAD_TOKENS: Final = 4
_MEDIA_TOKENS: Final = 765  # a 1024px image at high detail; audio and files are guesses too
_WINDOW_CHARS: Final = 2000
_EARLIER_WINDOW_CHARS: Final = 1200
_EARLIER_TURNS: Final = 3
_EARLIER_WEIGHT: Final = 0.3


@dataclass
class _Prompt:
    """The request flattened to the strings the classifier reads."""

    user: list[str] = field(default_factory=list)
    all_text: list[str] = field(default_factory=list)
    system: list[str] = field(default_factory=list)
    non_system: list[str] = field(default_factory=list)
    media: int = 0
    tool_traffic: bool = False


def content_text(content: Any) -> tuple[str, int]:
    """(text, media part count) of a message's content; the classifiers read both."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, Sequence):
        return "", 0
    texts: list[str] = []
    media = 0
    for part in content:
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in _MEDIA_PARTS:
            media += 1
    return "\n".join(texts), media


def _tool_call_text(message: Mapping[str, Any]) -> str:
    calls = message.get("tool_calls")
    if not isinstance(calls, Sequence):
        return ""
    out: list[str] = []
    for call in calls:
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            out.extend(str(fn.get(k) or "") for k in ("name", "arguments"))
    return "\n".join(out)


def _flatten(messages: Sequence[Mapping[str, Any]]) -> _Prompt:
    p = _Prompt()
    for message in messages:
        role = message.get("role")
        text, media = content_text(message.get("content"))
        calls = _tool_call_text(message)
        if calls or role in ("tool", "function"):
            p.tool_traffic = True
            text = f"{text}\n{calls}" if calls else text
        p.media += media
        p.all_text.append(text)
        (p.system if role in _SYSTEM_ROLES else p.non_system).append(text)
        if role == "user":
            p.user.append(text)
    return p


def _token_estimate(p: _Prompt, joined: str) -> int:
    """About four characters a token, except CJK text, which runs near one a character."""
    cjk = wide_chars(joined)
    text_tokens = math.ceil((len(joined) - cjk) / 4 + cjk)
    return text_tokens + len(p.all_text) * _MESSAGE_OVERHEAD_TOKENS + p.media * _MEDIA_TOKENS


# --- weighing ------------------------------------------------------------------------------

# How much each dimension moves the total. Dimension scores are in [-1, 1].
WEIGHTS: Final[Mapping[str, float]] = {
    "reasoning": 0.20,
    "code": 0.12,
    "multi_step": 0.12,
    "technical": 0.14,
    "length": 0.10,
    "creative": 0.12,
    "question": 0.06,
    "agentic": 0.18,
    "constraints": 0.12,
    "imperative": 0.04,
    "output_format": 0.03,
    "simple": 0.25,
    "references": 0.02,
    "domain": 0.12,
    "negation": 0.02,
    "math": 0.10,
    "breadth": 0.10,
}
# Lower edges of medium and complex on the weighted total; reasoning needs its own signal too.
_BOUNDARIES: Final = (0.0, 0.18)
_REASONING_TOTAL: Final = 0.45
_REASONING_SIGNAL: Final = 0.5
_CONFIDENCE_STEEPNESS: Final = 12.0
_MIN_CONFIDENCE: Final = 0.6
_CANNED_CONFIDENCE: Final = 0.95
_SHORT_ASK_WORDS: Final = 20
_GO_AHEAD_WORDS: Final = 8
_STRAY_CHARS: Final = 50


def _sat(n: float, full: float) -> float:
    return min(1.0, n / full)


def _length_score(s: Signals) -> float:
    """Longer asks and longer asked-for answers are harder; pasted material counts a quarter."""
    tokens = s.ask_tokens + s.pasted_chars / 16
    asked = 0.8 if s.output_words >= 1500 else 0.4 if s.output_words >= 600 else -1.0
    for limit, score in ((6, -1.0), (15, -0.6), (40, -0.2), (120, 0.1), (400, 0.4)):
        if tokens < limit:
            return max(score, asked)
    return max(0.6, asked)


def _simple_score(s: Signals, factoid: bool) -> float:
    c = s.counts
    if s.canned:
        return -1.0
    if c["simple_ask"]:
        short = s.words <= _SHORT_ASK_WORDS and s.pasted_chars < MIN_MATERIAL
        return -0.7 if short else -0.3
    return -0.6 if factoid else 0.0


def _dimensions(s: Signals) -> dict[str, float]:
    """Each dimension's score in [-1, 1] from the raw counts."""
    c = s.counts
    # "what's the capital of..." is a lookup; "what's a good way to..." or a question about
    # pasted code is not.
    factoid = bool(
        c["question_fact"]
        and s.words <= _SHORT_ASK_WORDS
        and not c["question_open"]
        and s.pasted_chars < _STRAY_CHARS
    )
    question = 0.4 * min(c["question_open"], 2) + (0.3 if s.questions >= 2 else 0.0)
    code = 0.5 * min(s.fences, 1) + 0.08 * s.code_lines + 0.4 * min(s.traces, 1)
    return {
        "reasoning": 1.0 if c["proof"] else _sat(c["reasoning"], 2.5),
        "code": max(min(1.0, code), _sat(c["code_words"], 3) * 0.6),
        "multi_step": min(1.0, 0.3 * max(0, c["multi_step"] - 1) + 0.25 * s.list_items),
        "technical": _sat(c["technical"] + s.scale, 4),
        "length": _length_score(s),
        "creative": _sat(c["creative"], 2),
        "question": max(-1.0, min(1.0, question - (0.5 if factoid else 0.0))),
        "agentic": _sat(c["agentic"], 3),
        "constraints": _sat(c["constraints"], 3),
        "imperative": _sat(c["imperative"], 3),
        "output_format": _sat(c["output_format"], 2),
        "simple": _simple_score(s, factoid),
        "references": _sat(c["references"], 2),
        "domain": _sat(s.domain, 3),
        "negation": _sat(c["negation"], 4),
        "math": _sat(c["math"] + s.math_symbols / 2, 2),
        "breadth": _sat(s.breadth, 8),
    }


def _blend(main: dict[str, float], light: dict[str, float] | None) -> dict[str, float]:
    if light is None:
        return main
    return {k: max(-1.0, min(1.0, v + _EARLIER_WEIGHT * light[k])) for k, v in main.items()}


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-_CONFIDENCE_STEEPNESS * x))


def _tier(total: float, reasoning: float) -> tuple[Complexity, float]:
    """The tier a total falls in, and a confidence that grows with distance from the edges.

    A high total alone means a big job, not a hard problem: the reasoning tier also needs
    reasoning markers among the signals.
    """
    if total >= _REASONING_TOTAL and reasoning >= _REASONING_SIGNAL:
        return "reasoning", _sigmoid(total - _REASONING_TOTAL)
    distance = min(abs(total - b) for b in _BOUNDARIES)
    return COMPLEXITIES[sum(total >= b for b in _BOUNDARIES)], _sigmoid(distance)


def _explain(dims: Mapping[str, float], total: float, complexity: Complexity) -> str:
    contributions = sorted(((WEIGHTS[k] * v, k) for k, v in dims.items()), reverse=True)
    if complexity == "simple":
        parts = [k for w, k in reversed(contributions) if w < 0][:3]
    else:
        parts = [k for w, k in contributions if w > 0][:3]
    return f"score {total:+.2f}: {', '.join(parts) or 'no strong signal'}"


@dataclass(frozen=True)
class _Verdict:
    dims: dict[str, float]
    total: float
    complexity: Complexity
    confidence: float
    reason: str


def _score(last: Signals, earlier: Signals | None) -> _Verdict:
    """Weigh the last user message, with earlier user turns counting lightly."""
    last_dims = _dimensions(last)
    if last.canned:
        return _Verdict(last_dims, -1.0, "simple", _CANNED_CONFIDENCE, last.canned)
    earlier_dims = _dimensions(earlier) if earlier else None
    why = ""
    if earlier_dims is not None and last.counts["go_ahead"] and last.words <= _GO_AHEAD_WORDS:
        # "sounds good, go ahead": the work is whatever the earlier turns asked for.
        dims = _blend(earlier_dims, last_dims)
        why = "go-ahead, scored on the earlier turns; "
    else:
        dims = _blend(last_dims, earlier_dims)
    total = sum(WEIGHTS[k] * v for k, v in dims.items())
    if last.counts["proof"]:
        confidence = min(_CANNED_CONFIDENCE, 0.8 + 0.05 * last.counts["proof"])
        return _Verdict(dims, total, "reasoning", confidence, "asks for a proof or derivation")
    complexity, confidence = _tier(total, dims["reasoning"])
    reason = why + _explain(dims, total, complexity)
    if confidence < _MIN_CONFIDENCE and complexity in ("simple", "complex"):
        reason += f"; near the {complexity} edge, so medium"
        complexity = "medium"
    return _Verdict(dims, total, complexity, confidence, reason)


def _task_type(s: Signals) -> TaskType:
    """The kind of work asked for; conversation unless some other kind clearly shows."""
    c = s.counts
    candidates: dict[TaskType, float] = {
        "code": 0.45 * c["code_words"] + 0.5 * min(s.fences, 1) + 0.03 * min(s.code_lines, 10),
        "math": 0.4 * (c["math"] + c["arithmetic"])
        + 0.45 * min(s.math_symbols, 2)
        + 0.2 * min(s.percents, 2)
        + (0.4 if c["proof"] else 0.0),
        "analysis": 0.45 * c["analysis"],
        "creative": 0.5 * c["creative"],  # a poem about code is still a poem
        "tool-use": 0.45 * c["agentic"] - 0.2,
        "conversation": 0.4,
    }
    return max(candidates, key=lambda k: candidates[k])


def classify(messages: Sequence[Mapping[str, Any]], *, has_tools: bool = False) -> Classification:
    """Guess complexity, task type and sensitivity of an OpenAI-style chat request.

    Only the user's own words are scored, the last message fully and earlier user turns
    lightly; the system prompt is the operator's and says nothing about this request. Every
    message, system prompt included, counts towards the token estimate and is checked for
    secrets, since all of it would be sent to the chosen model.
    """
    p = _flatten(messages)
    joined = "\n".join(p.all_text)
    kinds = request_kinds("\n".join(p.system), "\n".join(p.non_system))
    last = signals(p.user[-1], _WINDOW_CHARS) if p.user else None
    earlier_text = "\n".join(p.user[-1 - _EARLIER_TURNS : -1])
    earlier = signals(earlier_text, _EARLIER_WINDOW_CHARS) if earlier_text else None
    verdict = _score(last, earlier) if last else _Verdict({}, 0.0, "medium", 0.5, "no user text")
    task: TaskType = "vision" if p.media else _task_type(last) if last else "conversation"
    scores = {k: round(v, 2) for k, v in verdict.dims.items() if v}
    scores["total"] = round(verdict.total, 3)
    return Classification(
        complexity=verdict.complexity,
        confidence=verdict.confidence,
        task_type=task,
        token_estimate=_token_estimate(p, joined),
        sensitive=bool(kinds),
        sensitive_kinds=kinds,
        scores=scores,
        reason=verdict.reason + (f"; sensitive: {', '.join(kinds)}" if kinds else ""),
        needs_tools=has_tools or p.tool_traffic,
    )
