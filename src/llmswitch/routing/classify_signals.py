"""Raw counts from user text, cheap enough to run on every request.

This is the classifier's hot path, so it sticks to operations that run at C speed in
CPython: byte-table translation and str.split for tokenising, one set intersection for all
single-word markers, str.count and `in` for code and stack-trace markers, and regexes that
either open with a literal or run only over the (short) ask. A long message is read through
a window of its head and tail, where the instructions are; the middle is pasted material
that only counts towards length. A long ask is likewise scored on a narrower window of its
own head and tail, since the word-level counts cost the most per character.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from llmswitch.routing import classify_lexicon as lex

# --- tokenising --------------------------------------------------------------------------

_ASCII_PUNCT: Final = frozenset(b"!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~")
_PUNCT_TABLE: Final = bytes(0x20 if b in _ASCII_PUNCT else b for b in range(256))
_WIDE_PUNCT: Final = "’‘“”«»¿¡…—–，。？！、：；（）「」『』【】・"


def wide_chars(text: str) -> int:
    """About how many CJK characters text holds, from its UTF-8 size (they take 3 bytes).

    Far cheaper than a character-class scan; an accented Latin letter counts as half.
    """
    return 0 if text.isascii() else (len(text.encode()) - len(text)) // 2


def tokens(low: str) -> list[str]:
    """Words of lowercased text; punctuation splits words ("trade-offs" → trade, offs)."""
    text = low.encode().translate(_PUNCT_TABLE).decode()
    if not text.isascii():
        for ch in _WIDE_PUNCT:
            if ch in text:
                text = text.replace(ch, " ")
    return text.split()


# --- marker lexicon ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Lexicon:
    """Markers by dimension, laid out so one text costs one intersection plus a few probes."""

    unigrams: Mapping[str, tuple[str, ...]]
    unigram_keys: frozenset[str]
    # head word → (" the phrase ", its words, dimension)
    phrases: Mapping[str, tuple[tuple[str, frozenset[str], str], ...]]
    heads: frozenset[str]

    @classmethod
    def build(cls, dims: Mapping[str, Sequence[str]]) -> _Lexicon:
        unigrams: dict[str, list[str]] = {}
        phrases: dict[str, list[tuple[str, frozenset[str], str]]] = {}
        for dim, markers in dims.items():
            for marker in markers:
                words = tokens(marker.lower())
                if len(words) == 1:
                    unigrams.setdefault(words[0], []).append(dim)
                elif words:
                    entry = (f" {' '.join(words)} ", frozenset(words), dim)
                    phrases.setdefault(words[0], []).append(entry)
        return cls(
            {w: tuple(dict.fromkeys(d)) for w, d in unigrams.items()},
            frozenset(unigrams),
            {h: tuple(dict.fromkeys(e)) for h, e in phrases.items()},
            frozenset(phrases),
        )

    def count(self, words: list[str], uniq: set[str], counts: dict[str, int]) -> None:
        """Add the number of distinct markers of each dimension found in words."""
        for word in uniq & self.unigram_keys:
            for dim in self.unigrams[word]:
                counts[dim] += 1
        heads = uniq & self.heads
        if not heads:
            return
        joined = f" {' '.join(words)} "
        for head in heads:
            for phrase, needed, dim in self.phrases[head]:
                if needed <= uniq and phrase in joined:
                    counts[dim] += 1


_DIMENSIONS: Final[Mapping[str, Sequence[str]]] = {
    "proof": lex.PROOF,
    "reasoning": lex.REASONING,
    "multi_step": lex.MULTI_STEP,
    "technical": lex.TECHNICAL,
    "creative": lex.CREATIVE,
    "question_open": lex.QUESTION_OPEN,
    "agentic": lex.AGENTIC,
    "constraints": lex.CONSTRAINTS,
    "imperative": lex.IMPERATIVE,
    "output_format": lex.OUTPUT_FORMAT,
    "simple_ask": lex.SIMPLE_ASK,
    "go_ahead": lex.GO_AHEAD,
    "references": lex.REFERENCES,
    "domain": lex.DOMAIN,
    "negation": lex.NEGATION,
    "math": lex.MATH,
    "arithmetic": lex.ARITHMETIC,
    "code_words": lex.CODE_WORDS,
    "analysis": lex.ANALYSIS,
}
_LEXICON: Final = _Lexicon.build(_DIMENSIONS)
# A lookup announces itself in its first words ("what is", "how many"), so it has its own.
_FACT_LEXICON: Final = _Lexicon.build({"question_fact": lex.QUESTION_FACT})
_DOMAIN_LEXICON: Final = _Lexicon.build({"domain": lex.DOMAIN})
COUNTED: Final = (*_DIMENSIONS, "question_fact", "greeting")

# CJK has no spaces to split words on, so its markers are found by one alternation.
_CJK_DIMS: Final[Mapping[str, tuple[str, ...]]] = {
    m: tuple(d for d, markers in lex.CJK.items() if m in markers)
    for markers in lex.CJK.values()
    for m in markers
}
_CJK_MARKER: Final = re.compile("|".join(map(re.escape, sorted(_CJK_DIMS, key=len, reverse=True))))
_GREETING: Final = frozenset(lex.GREETING)
_HEARTBEAT: Final = frozenset({"heartbeat", "heartbeat_ok"})
_MATERIAL_REF: Final = frozenset(lex.MATERIAL_REF)

# --- structure ---------------------------------------------------------------------------

_FENCE: Final = re.compile(r"```.*?(?:```|\Z)", re.S)
# Lines that are data rather than words to the assistant: log records, stack frames, tables,
# quoted mail, env files, indented code, long unbroken ASCII tokens.
_PASTED_LINE: Final = re.compile(
    r"\n(?:[ \t]*(?:\d{4}-\d\d-\d\d|\d{1,3}(?:\.\d{1,3}){3}\b|\d\d:\d\d|\d+[smhd] {2,}|\[|\||>"
    r"|File \"|Traceback|E {2}|[=_*#~-]{4,}|[A-Z][A-Z0-9_]{2,}="
    r"|(?:INFO|WARN|WARNING|ERROR|DEBUG|TRACE|FATAL|PASS|FAIL|FAILED)\b)"
    r"|\t| {4,}|[!-~]{40,}(?=\n|\Z)).*"
)
# Several open with a character prose rarely has (; { } = #): a probe for that one character
# runs at memchr speed and skips counting a mark that cannot be there.
_CODE_MARKS: Final = (";\n", "{\n", "}\n", "):\n", "def ", "import ", "return ", "=> ", "#include")
_TRACE_MARKS: Final = (
    "traceback (most recent call last)",
    "\tat ",
    "    at ",
    "exception",
    "error:",
    "panic:",
    "segmentation fault",
    "data race",
    "error[e",
)
_LIST_ITEM: Final = re.compile(r"\n[ \t]*(?:\d+[.)]|[-*•])[ \t]+\S")
# Every number-led signal in one scan: load figures ("100k writes/sec", "10 TB"), the size
# of the answer asked for ("about 2,000 words") and arithmetic ("17 * 23", "15% of"). The
# leading digit sits outside the groups so the engine can skip straight between digits, and
# the number is possessive: no unit needs digits given back, so a long figure fails at once.
_NUMERIC: Final = re.compile(
    r"(\d[\d,.]*+)\s*(?:"
    r"(?P<scale>(?:k|m|b|million|billion|tb|gb|pb|rps|qps|tps)\b"
    r"|(?:\w+\s*)?(?:/s|/sec|per second)\b)"
    r"|[\s-]*(?P<size>words?\b|palabras|mots|wörter|palavras|字|語)"
    r"|(?P<arith>[+*×÷]\s*\d|% of\b))"
)
# " = " rather than "=": KEY=value in a pasted config line is not an equation.
_MATH_MARKS: Final = ("^", " = ", "√", "∑", "∫", "≤", "≥", "≠", "∞", "∧", "∨", "¬", "π")
# Separators between the things one request asks for: "schema, caching, and sharding".
_BREADTH: Final = (
    ",",
    ";",
    "，",
    "、",
    "；",
    " and ",
    " or ",
    " y ",
    " et ",
    " und ",
    " e ",
    " plus ",
)
_SLASH_COMMAND: Final = re.compile(r"/[a-z][\w-]*(?:\s+\S+){0,2}")
_MAX_ASK_HEAD: Final = 400
_ASK_CHARS: Final = 1000
MIN_MATERIAL: Final = 250  # characters of pasted text that count as material
_MATERIAL_SAMPLE: Final = 1500
_SHORT_WORDS: Final = 12
_CANNED_MAX_WORDS: Final = 60
_OPENING_WORDS: Final = 6


@dataclass(frozen=True)
class Signals:
    """Raw counts from one stretch of user text, before any weighting."""

    counts: Mapping[str, int]
    words: int
    ask_tokens: float
    pasted_chars: int
    fences: int
    code_lines: int
    traces: int
    list_items: int
    questions: int
    math_symbols: int
    percents: int
    breadth: int
    scale: int
    output_words: int
    domain: int
    canned: str  # why the text needs no scoring at all, or ""


def window(text: str, limit: int) -> str:
    """Head and tail of a long text, cut at line ends so half a log line never reads as prose."""
    if len(text) <= limit:
        return text
    half = limit // 2
    head, tail = text[:half], text[-half:]
    cut = head.rfind("\n")
    head = head[:cut] if cut > half // 2 else head
    cut = tail.find("\n")
    tail = tail[cut + 1 :] if 0 <= cut < half // 2 else tail
    return f"{head}\n{tail}"


def _split_material(prose: str) -> tuple[str, str]:
    """The ask, and the material it introduces ("Summarize this article:" then the article).

    A short first paragraph that ends in a colon or question mark, or points at "this" or
    "the following", introduces what comes next; a short last paragraph is still part of
    the ask ("Keep it under 100 words.").
    """
    head, sep, rest = prose.strip().partition("\n\n")
    if not sep or len(head) > _MAX_ASK_HEAD:
        return prose, ""
    if not head.endswith((":", "：", "?", "？")) and _MATERIAL_REF.isdisjoint(tokens(head)):
        return prose, ""
    paragraphs = [p for p in rest.split("\n\n") if p.strip()]
    if sum(map(len, paragraphs)) < MIN_MATERIAL:
        return prose, ""
    if len(paragraphs) > 1 and len(paragraphs[-1]) < MIN_MATERIAL:
        return f"{head}\n\n{paragraphs[-1]}", "\n\n".join(paragraphs[:-1])
    return head, rest


def _canned(low: str, words: list[str], cjk_greetings: int) -> str:
    """Messages a router answers from the cheapest model without weighing anything."""
    if len(low) <= _SHORT_WORDS * 2 and not any(ch.isalnum() for ch in low):
        return "only symbols"
    if not words:
        return ""
    if low.startswith("/") and _SLASH_COMMAND.fullmatch(low):
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


def signals(text: str, limit: int) -> Signals:
    """Count what the classifier weighs in `text`, reading at most `limit` characters of it."""
    win = window(text, limit)
    low = win.lower()
    unfenced = _FENCE.sub("\n", win) if "```" in win else win
    # The leading newline lets line patterns open with a literal instead of a ^ anchor.
    prose, material = _split_material(_PASTED_LINE.sub("", "\n" + unfenced)[1:].lower())
    # A long ask is scored from its head and tail too, where it puts its instructions; its
    # whole length still counts towards length and away from pasted material.
    ask = window(prose, _ASK_CHARS)
    words = tokens(ask)
    uniq = set(words)
    counts = dict.fromkeys(COUNTED, 0)
    _LEXICON.count(words, uniq, counts)
    opening = words[:_OPENING_WORDS]
    _FACT_LEXICON.count(opening, set(opening), counts)
    math_symbols = sum(map(ask.count, _MATH_MARKS))
    cjk = wide_chars(prose)
    if cjk:
        for marker in set(_CJK_MARKER.findall(ask)):
            for dim in _CJK_DIMS[marker]:
                counts[dim] += 1
    scale = output_words = 0
    for m in _NUMERIC.finditer(ask):
        if m.lastgroup == "scale":
            scale += 1
        elif m.lastgroup == "size":
            output_words = max(output_words, _number(m.group(1)))
        else:
            math_symbols += 1
    domain = counts["domain"]
    if material:  # legal or medical terms in a pasted clause still make it specialist work
        found = {"domain": 0}
        material_words = tokens(material[:_MATERIAL_SAMPLE])
        _DOMAIN_LEXICON.count(material_words, set(material_words), found)
        domain = max(domain, found["domain"])
    # Material (pasted text, logs, code) is scaled up to the full message; the ask is not.
    scale_up = len(text) / len(win) if win else 1.0
    return Signals(
        counts=counts,
        words=len(words) + cjk // 2,
        ask_tokens=(len(prose) - cjk) / 4 + cjk * 0.8,
        pasted_chars=max(0, round((len(low) - len(prose)) * scale_up)),
        fences=low.count("```") // 2,
        code_lines=sum(low.count(mark) for mark in _CODE_MARKS if mark[0] in low),
        traces=sum(1 for mark in _TRACE_MARKS if mark in low),
        list_items=len(_LIST_ITEM.findall("\n" + ask)),
        questions=ask.count("?") + ask.count("？"),
        math_symbols=math_symbols,
        percents=ask.count("%"),
        breadth=sum(map(ask.count, _BREADTH)),
        scale=scale,
        output_words=output_words,
        domain=domain,
        canned=_canned(low.strip(), words, counts["greeting"]),
    )
