"""What the learned classifier reads: hashed character n-grams of the ask and of its context.

Character n-grams need no tokenizer and no word list, so the same features serve English,
Chinese and Hindi alike: the model is multilingual by construction. Hashing them into a fixed
number of buckets keeps the model one size whatever text it meets. The hashing runs in numpy
over a whole window at once (a rolling polynomial over the code points, then a multiplicative
mix), so a 4,000-token prompt costs tens of microseconds rather than a Python step per n-gram.

Only bounded windows are read. The ask's head and tail: a long paste usually carries its
question before or after it, and "what language is this?" above a 1,500-character article is
as trivial as it is without the article. The tail of the few turns before the ask: that is
what "now do it rigorously" or "thanks!" refers to. Length and turn counts go in as dense
features, and the heuristic classifier's dimension scores can join them (the ensemble).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from llmswitch.routing.classify import COMPLEXITIES, WEIGHTS, Classification, content_text

BUCKET_BITS: Final = 16
BUCKETS: Final = 1 << BUCKET_BITS
# An ask longer than this (in UTF-8 bytes, see size) is a paste with a question around it:
# only its edges are read.
LONG_ASK: Final = 600
# The ask's own first and last words, read apart from the body: in a long paste they are
# where the question is, and the paste's n-grams must not drown them.
EDGE_BLOCK: Final = 600
EDGE_CHARS: Final = 200
_PARAGRAPH: Final = re.compile(r"\n\s*\n")
CONTEXT_TURNS: Final = 3
CONTEXT_CHARS: Final = 400
ASK_ORDERS: Final = (1, 2, 3, 4, 5)
CONTEXT_ORDERS: Final = (2, 3, 4)
_ASK_SALT: Final = 0x9E3779B97F4A7C15
_EDGE_SALT: Final = 0x94D049BB133111EB
_CONTEXT_SALT: Final = 0xC2B2AE3D27D4EB4F
_MIX: Final = np.uint64(0xFF51AFD7ED558CCD)
_PRIME: Final = np.uint64(1_000_003)
_SHIFT: Final = np.uint64(64 - BUCKET_BITS)

DENSE_TEXT: Final = ("log_length", "long_paste", "multi_turn", "turns", "questions", "wide")
DENSE_HEURISTIC: Final = (*(f"h_{c}" for c in COMPLEXITIES), "h_total", *WEIGHTS)

Buckets = npt.NDArray[np.int64]
Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Conversation:
    """The ask (last user message) and the turns before it that it may depend on."""

    ask: str
    context: str
    turns: int


def conversation(messages: Sequence[Mapping[str, Any]]) -> Conversation:
    """The last user message, and the tails of up to CONTEXT_TURNS messages before it.

    System and developer messages are the operator's, not the user's, and are left out, as
    the heuristic does. Tool results and assistant turns count as context: "go ahead" after
    an assistant's offer means whatever was offered.
    """
    texts: list[tuple[str, str]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        text, _ = content_text(message.get("content"))
        texts.append((str(role), text))
    last = max((i for i, (role, _) in enumerate(texts) if role == "user"), default=-1)
    if last < 0:
        return Conversation("", "", 0)
    before = texts[max(0, last - CONTEXT_TURNS) : last]
    context = "\n".join(text[-CONTEXT_CHARS:] for _, text in before)
    return Conversation(texts[last][1], context, last + 1)


def size(text: str) -> int:
    """UTF-8 bytes: about one per Latin character, three per CJK or Devanagari one, which
    carries roughly as much meaning as three Latin characters."""
    return len(text.encode("utf-8"))


def edges(ask: str) -> str:
    """Where the question sits in a long message: its first and last paragraphs.

    A pasted article, log or file has the ask in a paragraph of its own before or after it.
    Outer paragraphs longer than EDGE_BLOCK are taken for the paste and skipped, so "what
    language is this?" stays simple whatever was pasted above it; with no short outer
    paragraph, the message's first and last EDGE_CHARS characters stand in.
    """
    if size(ask) <= LONG_ASK:
        return ask
    blocks = [b.strip() for b in _PARAGRAPH.split(ask) if b.strip()]
    outer = dict.fromkeys(b for b in (blocks[0], blocks[-1]) if size(b) <= EDGE_BLOCK)
    if outer:
        return "\n".join(outer)
    return f"{ask[:EDGE_CHARS]}\n{ask[-EDGE_CHARS:]}"


def body(ask: str) -> str:
    """The whole ask when it is short enough to be all question; nothing for a long paste."""
    return ask if size(ask) <= LONG_ASK else ""


def hashed_ngrams(text: str, orders: Sequence[int], salt: int) -> Buckets:
    """Bucket numbers of every character n-gram of ``text`` (lowercased) for each order.

    Repeats are kept: a bucket hit twice counts twice (term frequency).
    """
    if not text:
        return np.zeros(0, dtype=np.int64)
    points = np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    out: list[Buckets] = []
    rolling = points
    for n in range(1, max(orders) + 1):
        if n > 1:
            rolling = rolling[:-1] * _PRIME + points[n - 1 :]
        if n in orders and len(rolling):
            mixed = (rolling ^ np.uint64(salt + n)) * _MIX
            out.append((mixed >> _SHIFT).astype(np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Features:
    """One request as the model sees it: three bags of buckets and a few dense numbers."""

    ask: Buckets
    edge: Buckets
    context: Buckets
    dense: Vector

    @property
    def bags(self) -> tuple[Buckets, Buckets, Buckets]:
        return self.ask, self.edge, self.context


def text_dense(conv: Conversation) -> list[float]:
    """Length, paste and conversation-shape numbers, each roughly in [0, 1]."""
    ask = conv.ask
    nbytes = size(ask)
    return [
        math.log1p(nbytes) / 8,
        1.0 if nbytes > LONG_ASK else 0.0,
        1.0 if conv.turns > 1 else 0.0,
        min(conv.turns, 10) / 10,
        min(ask.count("?") + ask.count("？"), 3) / 3,
        (nbytes - len(ask)) / max(1, 2 * len(ask)),  # share of multi-byte characters
    ]


def heuristic_dense(heuristic: Classification) -> list[float]:
    """The heuristic's verdict (one-hot), total and dimension scores."""
    onehot = [1.0 if heuristic.complexity == c else 0.0 for c in COMPLEXITIES]
    scores = heuristic.scores
    return [*onehot, float(scores.get("total", 0.0)), *(float(scores.get(k, 0.0)) for k in WEIGHTS)]


def features(conv: Conversation, heuristic: Classification | None) -> Features:
    """The model's input; ``heuristic`` adds the ensemble's extra dense features."""
    dense = text_dense(conv)
    if heuristic is not None:
        dense += heuristic_dense(heuristic)
    return Features(
        ask=hashed_ngrams(body(conv.ask), ASK_ORDERS, _ASK_SALT),
        edge=hashed_ngrams(edges(conv.ask), ASK_ORDERS, _EDGE_SALT),
        context=hashed_ngrams(conv.context, CONTEXT_ORDERS, _CONTEXT_SALT),
        dense=np.asarray(dense, dtype=np.float32),
    )
