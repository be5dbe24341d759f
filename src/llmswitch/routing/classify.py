"""Tier 2 of the routing brain: a fast heuristic guess at how hard a request is.

No model call, no I/O: the classifier scores the user's words on a handful of weighted
dimensions (reasoning markers, code, multi-step structure, ...) and maps the total onto a
complexity tier. It runs on every request that the rules tier does not settle, so it has to
cost well under a millisecond even for a long prompt; every regex is compiled at import and
every scan is linear in the text, over a bounded window of it where the meaning allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from llmswitch.routing import classify_lexicon as lex
from llmswitch.routing.sensitive import sensitive_kinds

Complexity = Literal["simple", "medium", "complex", "reasoning"]
TaskType = Literal["code", "analysis", "creative", "math", "conversation", "vision", "tool-use"]

COMPLEXITIES: Final[tuple[Complexity, ...]] = ("simple", "medium", "complex", "reasoning")
TASK_TYPES: Final[tuple[TaskType, ...]] = (
    "code", "analysis", "creative", "math", "conversation", "vision", "tool-use",
)  # fmt: skip

# The minimum model quality (0-100) each tier needs; candidate selection filters on it.
QUALITY_FLOOR: Final[Mapping[str, int]] = {"simple": 0, "medium": 40, "complex": 65, "reasoning": 80}

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
    """The model capability a task type needs; unknown task types raise KeyError."""
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


# --- text extraction ---------------------------------------------------------------------

_MEDIA_PARTS: Final = frozenset(
    {"image_url", "input_image", "image", "input_audio", "audio", "file", "input_file", "video"}
)
_TEXT_PARTS: Final = frozenset({"text", "input_text"})
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})
_MESSAGE_OVERHEAD_TOKENS: Final = 4
_MEDIA_TOKENS: Final = 765  # a 1024px image at high detail; audio and files are guesses too
# The ask in a long message sits at its start or end; the middle is pasted material.
_WINDOW_CHARS: Final = 4000
_EARLIER_WINDOW_CHARS: Final = 1200
_EARLIER_TURNS: Final = 3
_EARLIER_WEIGHT: Final = 0.3


@dataclass
class _Prompt:
    """The request flattened to the strings the classifier scores."""

    user: list[str] = field(default_factory=list)
    all_text: list[str] = field(default_factory=list)
    non_system: list[str] = field(default_factory=list)
    media: int = 0
    messages: int = 0
    tool_traffic: bool = False


def _content_text(content: Any) -> tuple[str, int]:
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
    p = _Prompt(messages=len(messages))
    for message in messages:
        role = message.get("role")
        text, media = _content_text(message.get("content"))
        calls = _tool_call_text(message)
        if calls or role in ("tool", "function"):
            p.tool_traffic = True
            text = f"{text}\n{calls}" if calls else text
        p.media += media
        p.all_text.append(text)
        if role not in _SYSTEM_ROLES:
            p.non_system.append(text)
        if role == "user":
            p.user.append(text)
    return p


_CJK: Final = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]+")


def _token_estimate(p: _Prompt, joined: str) -> int:
    """About four characters a token, except CJK text, which runs near one a character."""
    chars = len(joined)
    cjk = sum(map(len, _CJK.findall(joined)))
    text_tokens = math.ceil((chars - cjk) / 4 + cjk)
    return text_tokens + p.messages * _MESSAGE_OVERHEAD_TOKENS + p.media * _MEDIA_TOKENS


def _window(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    # Cut at line ends so a half log line does not read as prose.
    return f"{text[:half].rpartition(chr(10))[0]}\n{text[-half:].partition(chr(10))[2]}"


# --- separating the ask from pasted material -------------------------------------------

_FENCE: Final = re.compile(r"```.*?(?:```|\Z)", re.S)
# Lines that are data rather than words to the assistant: log records, stack frames, tables,
# quoted mail, env files, indented code, long unbroken tokens.
_PASTED_LINE: Final = re.compile(
    r"^(?:[ \t]*(?:\d{4}-\d\d-\d\d|\d{1,3}(?:\.\d{1,3}){3}\b|\d\d:\d\d|\d+[smhd] {2,}|\[|\||>"
    r"|File \"|Traceback|E {2}|[=_*#~-]{4,}|[A-Z][A-Z0-9_]{2,}="
    r"|(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL|PASS|FAIL|FAILED)\b)"
    r"|\t| {4,}|[!-~]{40,}$).*(?:\n|\Z)",
    re.M,
)
_CODE_LINE: Final = re.compile(
    r"^[ \t]*(?:def |class |import |from \S+ import|function\b|return\b|const |let |var |fn "
    r"|func |public |private |#include|SELECT\b|INSERT\b|CREATE |if ?\(|for ?\(|while ?\(|\}"
    r"|@\w+)|[;{]$",
    re.M,
)
_TRACE: Final = re.compile(
    r"Traceback \(most recent call last\)|^\s+at [\w$.<>/]+\(|Exception in thread"
    r"|\b\w+(?:Error|Exception):|\bpanic:|Segmentation fault|DATA RACE|error\[E\d+\]",
    re.M,
)
_LIST_ITEM: Final = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+\S", re.M)
_MATH_SYMBOL: Final = re.compile(
    r"[√∑∫≤≥≠∞∧∨¬π]|\^\s*\d|\b\d+\s*[+*/×÷]\s*\d|\b\d*[a-z]\s*[=+-]\s*\d|\bd[xy]\b|\b[fgh]\([a-z0-9]"
)
# Load and size figures ("100k writes/sec", "10 TB", "200M-row") signal engineering at scale.
_SCALE: Final = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:k|m|b|million|billion|tb|gb|pb|rps|qps|tps)\b(?!\s*(?:words|km|miles))"
    r"|\b\d+\s*(?:\w+\s*)?(?:/s|/sec|per second|msgs?/s|req/s)\b"
)
# "about 2,000 words", "800 palabras": the size of the answer asked for.
_OUTPUT_SIZE: Final = re.compile(
    r"(\d[\d,.]*)\s*(?:words|palabras|mots|wörter|wörtern|palavras|字|語)"
)
# Separators between the things one request asks for: "schema, caching, and sharding".
_BREADTH_WORDS: Final = ("and", "or", "y", "et", "und", "e", "plus")
_SLASH_COMMAND: Final = re.compile(r"^/[a-z][\w-]*(?:\s+\S+){0,2}$")
_WORD: Final = re.compile(r"\w+")


def _normalise(phrases: Sequence[str]) -> frozenset[str]:
    return frozenset(" ".join(_WORD.findall(p.lower())) for p in phrases)


_LEX: Final[Mapping[str, frozenset[str]]] = {
    "proof": _normalise(lex.PROOF),
    "reasoning": _normalise(lex.REASONING),
    "multi_step": _normalise(lex.MULTI_STEP),
    "technical": _normalise(lex.TECHNICAL),
    "creative": _normalise(lex.CREATIVE),
    "question_open": _normalise(lex.QUESTION_OPEN),
    "question_fact": _normalise(lex.QUESTION_FACT),
    "agentic": _normalise(lex.AGENTIC),
    "constraints": _normalise(lex.CONSTRAINTS),
    "imperative": _normalise(lex.IMPERATIVE),
    "output_format": _normalise(lex.OUTPUT_FORMAT),
    "simple_ask": _normalise(lex.SIMPLE_ASK),
    "go_ahead": _normalise(lex.GO_AHEAD),
    "references": _normalise(lex.REFERENCES),
    "domain": _normalise(lex.DOMAIN),
    "negation": _normalise(lex.NEGATION),
    "math": _normalise(lex.MATH),
    "arithmetic": _normalise(lex.ARITHMETIC),
    "code_words": _normalise(lex.CODE_WORDS),
    "analysis": _normalise(lex.ANALYSIS),
}
_GREETING: Final = frozenset(lex.GREETING)
_MATERIAL_REF: Final = _LEX["references"] | {"this", "these"}
_MAX_GRAM: Final = max(p.count(" ") + 1 for words in _LEX.values() for p in words)


def _grams(words: list[str]) -> set[str]:
    """Every word n-gram up to the longest marker phrase, so phrase lookup is a set probe."""
    grams = set(words)
    for n in range(2, _MAX_GRAM + 1):
        grams.update(map(" ".join, zip(*(words[i:] for i in range(n)), strict=False)))
    return grams


# --- scoring -------------------------------------------------------------------------------

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
_BOUNDARIES: Final = (0.0, 0.21)
_REASONING_TOTAL: Final = 0.45
_REASONING_SIGNAL: Final = 0.5
_CONFIDENCE_STEEPNESS: Final = 12.0
_MIN_CONFIDENCE: Final = 0.6
_SHORT_WORDS: Final = 12
_SHORT_ASK_WORDS: Final = 20
_OPENING_WORDS: Final = 6
_MAX_ASK_HEAD: Final = 400
_MIN_MATERIAL: Final = 250
_CANNED_MAX_WORDS: Final = 60
_HEARTBEAT: Final = frozenset({"heartbeat", "heartbeat_ok"})


@dataclass
class _Signals:
    """Raw counts from one stretch of user text, before weighting."""

    counts: dict[str, int]
    words: int
    ask_tokens: float
    pasted_chars: int
    fences: int
    code_lines: int
    traces: int
    list_items: int
    questions: int
    math_symbols: int
    breadth: int
    scale: int
    output_words: int
    domain: int
    canned: str  # why the text needs no scoring at all, or ""


def _split_material(prose: str) -> tuple[str, int]:
    """The ask and the size of the material it introduces ("Summarize this article:\n\n...").

    A short first paragraph that ends in a colon or question mark, or points at "this" or
    "the following", introduces what comes next; a short last paragraph is still part of
    the ask ("...\n\nKeep it under 100 words.").
    """
    head, sep, rest = prose.strip().partition("\n\n")
    paragraphs = [p for p in rest.split("\n\n") if p.strip()]
    material = sum(map(len, paragraphs))
    if not sep or len(head) > _MAX_ASK_HEAD or material < _MIN_MATERIAL:
        return prose, 0
    introduces = head.endswith((":", "：", "?", "？")) or not _MATERIAL_REF.isdisjoint(
        _grams(_WORD.findall(head))
    )
    if not introduces:
        return prose, 0
    if len(paragraphs) > 1 and len(paragraphs[-1]) < _MIN_MATERIAL:
        return f"{head}\n\n{paragraphs[-1]}", material - len(paragraphs[-1])
    return head, material


def _signals(text: str, limit: int) -> _Signals:
    window = _window(text, limit)
    low = window.lower()
    prose, material = _split_material(_PASTED_LINE.sub("", _FENCE.sub("\n", low)))
    words = _WORD.findall(prose)
    grams = _grams(words)
    counts = {name: len(grams & markers) for name, markers in _LEX.items()}
    # A lookup announces itself in its first words ("what is", "how many").
    counts["question_fact"] = len(_grams(words[:_OPENING_WORDS]) & _LEX["question_fact"])
    counts["greeting"] = 0
    cjk = 0
    if _CJK.search(prose):
        cjk = sum(map(len, _CJK.findall(prose)))
        for name, markers in lex.CJK.items():
            counts[name] += sum(1 for m in markers if m in prose)
    # Material (pasted text, logs, code) is scaled up to the full message; the ask is not.
    scale = len(text) / len(window) if window else 1.0
    pasted = round((len(low) - len(prose)) * scale)
    return _Signals(
        counts=counts,
        words=len(words) + cjk // 2,
        ask_tokens=(len(prose) - cjk) / 4 + cjk * 0.8,
        pasted_chars=pasted,
        fences=low.count("```") // 2,
        code_lines=len(_CODE_LINE.findall(window)),
        traces=len(_TRACE.findall(window)),
        list_items=len(_LIST_ITEM.findall(prose)),
        questions=prose.count("?") + prose.count("？"),
        math_symbols=len(_MATH_SYMBOL.findall(prose)),
        breadth=sum(map(prose.count, ",;，、；")) + sum(map(words.count, _BREADTH_WORDS)),
        scale=len(_SCALE.findall(prose)),
        output_words=max((_number(m) for m in _OUTPUT_SIZE.findall(prose)), default=0),
        domain=len(_LEX["domain"] & _grams(_WORD.findall(low))) if material else counts["domain"],
        canned=_canned(low.strip(), words, counts["greeting"]),
    )


def _canned(low: str, words: list[str], cjk_greetings: int) -> str:
    """Messages a router answers from the cheapest model without weighing anything."""
    if not words:
        return "only symbols" if len(low) <= 20 else ""
    if _SLASH_COMMAND.match(low):
        return "slash command"
    if len(words) <= _CANNED_MAX_WORDS and not _HEARTBEAT.isdisjoint(words):
        return "heartbeat"
    if len(words) <= _SHORT_WORDS and _GREETING.issuperset(words):
        return "greeting or acknowledgement"
    if cjk_greetings and len(low) <= _SHORT_WORDS:
        return "greeting or acknowledgement"
    return ""


def _number(text: str) -> int:
    digits = text.replace(",", "").replace(".", "")
    return int(digits) if digits.isdigit() else 0


def _length_score(s: _Signals) -> float:
    """Longer asks and longer asked-for answers are harder; pasted material counts a quarter."""
    tokens = s.ask_tokens + s.pasted_chars / 16
    asked = 0.8 if s.output_words >= 1500 else 0.4 if s.output_words >= 600 else -1.0
    for limit, score in ((6, -1.0), (15, -0.6), (40, -0.2), (120, 0.1), (400, 0.4)):
        if tokens < limit:
            return max(score, asked)
    return max(0.6, asked)


def _sat(n: float, full: float) -> float:
    return min(1.0, n / full)


def _dimensions(s: _Signals) -> dict[str, float]:
    c = s.counts
    code = min(1.0, 0.5 * min(s.fences, 1) + 0.08 * s.code_lines + 0.4 * min(s.traces, 1))
    short = s.words <= _SHORT_ASK_WORDS
    # "what's the capital of..." is a lookup; "what's a good way to..." or a question about
    # pasted code is not.
    factoid = c["question_fact"] and short and not c["question_open"] and not s.pasted_chars
    simple = 0.0
    if s.canned:
        simple = -1.0
    elif c["simple_ask"]:
        simple = -0.7 if short and s.pasted_chars < _MIN_MATERIAL else -0.3
    elif factoid:
        simple = -0.6
    question = 0.4 * min(c["question_open"], 2) + (0.3 if s.questions >= 2 else 0.0)
    if factoid:
        question -= 0.5
    return {
        "reasoning": 1.0 if c["proof"] else _sat(c["reasoning"], 2.5),
        "code": max(code, _sat(c["code_words"], 3) * 0.6),
        "multi_step": min(1.0, 0.3 * max(0, c["multi_step"] - 1) + 0.25 * s.list_items),
        "technical": _sat(c["technical"] + s.scale, 4),
        "length": _length_score(s),
        "creative": _sat(c["creative"], 2),
        "question": max(-1.0, min(1.0, question)),
        "agentic": _sat(c["agentic"], 3),
        "constraints": _sat(c["constraints"], 3),
        "imperative": _sat(c["imperative"], 3),
        "output_format": _sat(c["output_format"], 2),
        "simple": simple,
        "references": _sat(c["references"], 2),
        "domain": _sat(s.domain, 3),
        "breadth": _sat(s.breadth, 8),
        "negation": _sat(c["negation"], 4),
        "math": _sat(c["math"] + s.math_symbols / 2, 2),
    }


def _blend(last: dict[str, float], earlier: dict[str, float] | None) -> dict[str, float]:
    if earlier is None:
        return last
    return {k: max(-1.0, min(1.0, v + _EARLIER_WEIGHT * earlier[k])) for k, v in last.items()}


def _tier(total: float, reasoning: float) -> tuple[Complexity, float]:
    """The tier a total falls in, and a confidence that grows with distance from the edges.

    A high total alone means a big job, not a hard problem: reasoning also needs reasoning
    markers among the signals.
    """
    distance = min(abs(total - b) for b in _BOUNDARIES)
    confidence = 1 / (1 + math.exp(-_CONFIDENCE_STEEPNESS * distance))
    if total >= _REASONING_TOTAL and reasoning >= _REASONING_SIGNAL:
        margin = total - _REASONING_TOTAL
        return "reasoning", 1 / (1 + math.exp(-_CONFIDENCE_STEEPNESS * margin))
    return COMPLEXITIES[sum(total >= b for b in _BOUNDARIES)], confidence


def _task_type(s: _Signals) -> TaskType:
    """The kind of work asked for; conversation unless some other kind clearly shows."""
    c = s.counts
    candidates: dict[TaskType, float] = {
        "code": 0.45 * c["code_words"] + 0.5 * min(s.fences, 1) + 0.03 * min(s.code_lines, 10),
        "math": 0.35 * (c["math"] + c["arithmetic"])
        + 0.2 * min(s.math_symbols, 3)
        + (0.4 if c["proof"] else 0.0),
        "analysis": 0.45 * c["analysis"],
        "creative": 0.45 * c["creative"],
        "tool-use": 0.45 * c["agentic"] - 0.2,
        "conversation": 0.4,
    }
    return max(candidates, key=lambda k: candidates[k])


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


def _score(last: _Signals, earlier: _Signals | None) -> _Verdict:
    c = last.counts
    last_dims = _dimensions(last)
    if last.canned:
        return _Verdict(last_dims, -1.0, "simple", 0.95, last.canned)
    earlier_dims = _dimensions(earlier) if earlier else None
    why = ""
    if earlier_dims is not None and c["go_ahead"] and last.words <= 8:
        dims = _blend(earlier_dims, last_dims)
        why = "go-ahead, scored on the earlier turns; "
    else:
        dims = _blend(last_dims, earlier_dims)
    total = sum(WEIGHTS[k] * v for k, v in dims.items())
    if c["proof"]:
        confidence = min(0.95, 0.8 + 0.05 * c["proof"])
        return _Verdict(dims, total, "reasoning", confidence, "asks for a proof or derivation")
    complexity, confidence = _tier(total, dims["reasoning"])
    reason = why + _explain(dims, total, complexity)
    if confidence < _MIN_CONFIDENCE and complexity in ("simple", "complex"):
        reason += f"; near the {complexity} edge, so medium"
        complexity = "medium"
    return _Verdict(dims, total, complexity, confidence, reason)


def classify(messages: Sequence[Mapping[str, Any]], *, has_tools: bool = False) -> Classification:
    """Guess complexity, task type and sensitivity of an OpenAI-style chat request.

    Only the user's own words are scored, the last message fully and earlier user turns
    lightly; the system prompt is the operator's and says nothing about this request.
    """
    p = _flatten(messages)
    joined = "\n".join(p.all_text)
    tokens = _token_estimate(p, joined)
    kinds = sensitive_kinds(joined, "\n".join(p.non_system))
    last = _signals(p.user[-1], _WINDOW_CHARS) if p.user else None
    earlier_text = "\n".join(p.user[-1 - _EARLIER_TURNS : -1])
    earlier = _signals(earlier_text, _EARLIER_WINDOW_CHARS) if earlier_text else None
    verdict = _score(last, earlier) if last else _Verdict({}, 0.0, "medium", 0.5, "no user text")
    task: TaskType
    if p.media:
        task = "vision"
    elif has_tools or p.tool_traffic:
        task = "tool-use"
    elif last is None:
        task = "conversation"
    else:
        task = _task_type(last)
    scores = {k: round(v, 2) for k, v in verdict.dims.items() if v}
    scores["total"] = round(verdict.total, 3)
    reason = verdict.reason + (f"; sensitive: {', '.join(kinds)}" if kinds else "")
    return Classification(
        complexity=verdict.complexity,
        confidence=round(verdict.confidence, 3),
        task_type=task,
        token_estimate=tokens,
        sensitive=bool(kinds),
        sensitive_kinds=kinds,
        scores=scores,
        reason=reason,
    )
