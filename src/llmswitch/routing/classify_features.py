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
EDGE_WINDOW: Final = 2 * EDGE_BLOCK
_PARAGRAPH: Final = re.compile(r"\n\s*\n")
CONTEXT_TURNS: Final = 3
CONTEXT_CHARS: Final = 400
MAX_ORDER: Final = 5
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

Buckets = npt.NDArray[np.uint64]
Vector = npt.NDArray[np.float32]
Weights = npt.NDArray[np.float64]


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


def is_long(ask: str) -> bool:
    """More than LONG_ASK bytes; a text with more characters than that is, without encoding
    it (a 16 kB paste in Hindi takes tens of microseconds to encode)."""
    return len(ask) > LONG_ASK or size(ask) > LONG_ASK


def _outer(window: str, cut: bool, first: bool) -> str | None:
    """The first (or last) paragraph of ``window``, stripped, if it is short; ``cut`` says
    the window was cut from a longer text on that paragraph's far side, so it may go on."""
    blocks = [b.strip() for b in _PARAGRAPH.split(window)]
    nonblank = [i for i, b in enumerate(blocks) if b]
    if not nonblank:
        return None
    at = nonblank[0] if first else nonblank[-1]
    whole = not cut or at != (len(blocks) - 1 if first else 0)
    return blocks[at] if whole and size(blocks[at]) <= EDGE_BLOCK else None


def edges(ask: str) -> str:
    """Where the question sits in a long message: its first and last paragraphs.

    A pasted article, log or file has the ask in a paragraph of its own before or after it.
    Outer paragraphs longer than EDGE_BLOCK are taken for the paste and skipped, so "what
    language is this?" stays simple whatever was pasted above it; with no short outer
    paragraph, the message's first and last EDGE_CHARS characters stand in. Only the
    message's first and last EDGE_WINDOW characters are split into paragraphs: a 16 kB
    paste is not read whole to find its two ends.
    """
    if not is_long(ask):
        return ask
    cut = len(ask) > EDGE_WINDOW
    head = _outer(ask[:EDGE_WINDOW], cut, first=True)
    tail = _outer(ask[-EDGE_WINDOW:], cut, first=False)
    outer = dict.fromkeys(b for b in (head, tail) if b is not None)
    if outer:
        return "\n".join(outer)
    return f"{ask[:EDGE_CHARS]}\n{ask[-EDGE_CHARS:]}"


def body(ask: str) -> str:
    """The whole ask when it is short enough to be all question; nothing for a long paste."""
    return "" if is_long(ask) else ask


def _points(text: str) -> npt.NDArray[np.uint64]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


Bag = tuple[str, int, Sequence[int]]  # text, salt, n-gram orders (1 to MAX_ORDER)


def hashed_ngrams(bags: Sequence[Bag]) -> tuple[Buckets, Weights, tuple[int, ...]]:
    """Bucket numbers of every character n-gram of each bag's text (lowercased) for each of
    its orders, each one's weight, and the bags' lengths in characters (empty bags left out).

    A bag's n-grams weigh 1/sqrt(how many it has), so a bag counts the same however long it
    is; repeats are kept (a bucket hit twice counts twice). All bags are hashed in one pass
    over their joined code points, a few whole-array numpy steps per order whatever the
    number of bags: per-call overhead, not per-character work, is what a short ask costs.
    The result is laid out order by order over the joined text. An n-gram that would run
    past its bag's end, or whose order the bag does not read, gets weight 0 (its bucket is
    computed anyway, which is cheaper than cutting it out).
    """
    texts = [(text.lower(), salt, orders) for text, salt, orders in bags if text]
    if not texts:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float64), ()
    lengths = tuple(len(text) for text, _, _ in texts)
    total = sum(lengths)
    points = _points("".join(text for text, _, _ in texts) + "\0" * (MAX_ORDER - 1))
    bag = np.repeat(np.arange(len(texts)), lengths)
    room = np.repeat(np.cumsum(lengths), lengths) - np.arange(total)  # characters left in bag
    salt = np.asarray([s for _, s, _ in texts], dtype=np.uint64)[bag]
    # Per bag and order, the weight of one n-gram: 0 for an order the bag does not read.
    scale = np.zeros((len(texts), MAX_ORDER), dtype=np.float64)
    for i, ((_, _, orders), n) in enumerate(zip(texts, lengths, strict=True)):
        count = sum(max(0, n - k + 1) for k in orders)
        if count:
            for k in orders:
                scale[i, k - 1] = 1 / np.sqrt(np.float64(count))
    out = np.empty((MAX_ORDER, total), dtype=np.uint64)
    weights = np.empty((MAX_ORDER, total), dtype=np.float64)
    rolling = points[:total].copy()
    for n in range(MAX_ORDER):
        if n:
            rolling *= _PRIME
            rolling += points[n : total + n]
        np.bitwise_xor(rolling, salt + np.uint64(n + 1), out=out[n])
        np.multiply(scale[:, n].take(bag), room > n, out=weights[n])
    out *= _MIX
    out >>= _SHIFT
    return out.ravel(), weights.ravel(), lengths


@dataclass(frozen=True)
class Features:
    """One request as the model sees it: weighted n-gram buckets and a few dense numbers.

    ``lengths`` are the hashed bags' lengths, which lay ``ngrams`` out (see hashed_ngrams):
    training reads them to sum each example's n-grams bag by bag, in a fixed order.
    """

    ngrams: Buckets
    weights: Weights
    lengths: tuple[int, ...]
    dense: Vector


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
    ngrams, weights, lengths = hashed_ngrams(
        (
            (body(conv.ask), _ASK_SALT, ASK_ORDERS),
            (edges(conv.ask), _EDGE_SALT, ASK_ORDERS),
            (conv.context, _CONTEXT_SALT, CONTEXT_ORDERS),
        )
    )
    return Features(ngrams, weights, lengths, np.asarray(dense, dtype=np.float32))
