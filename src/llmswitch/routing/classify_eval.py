"""Scoring classifiers against labelled sets, shared by ops/eval.py, ops/train.py and the tests.

Kept in the package (and pure) so the pinned accuracy in the test suite and the numbers a
human reads from ops/eval.py can never disagree about how they were computed.

The corpus (tests/data/corpus, see its README) is split into train, dev and test by a hash of
each entry's group under a fixed seed (``split_of``): every prompt that shares a pasted
document or an opening conversation lands in the same split, so the test split measures
prompts the model has never seen the like of. The test split is frozen: training, calibration
and every choice made by measurement read train and dev only.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from llmswitch.routing.classify import COMPLEXITIES, Classification, classify

UNDER_ROUTED_GROSSLY = frozenset({("complex", "simple"), ("reasoning", "simple")})
SPLIT_SEED: Final = "llmswitch-corpus-14"
SPLITS: Final = ("train", "dev", "test")
# Tokens an answer takes, by what the request really needs (not where it was routed): the
# cost report's assumption for output, since the corpus has no answers.
ANSWER_TOKENS: Final[Mapping[str, int]] = {
    "simple": 150,
    "medium": 500,
    "complex": 1500,
    "reasoning": 1200,
}

Classifier = Callable[[Sequence[Mapping[str, Any]], bool], Classification]


def split_of(group: str) -> str:
    """The split a corpus group belongs to: 65% train, 15% dev, 20% test, fixed forever."""
    digest = hashlib.sha256(f"{SPLIT_SEED}:{group}".encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if share < 0.2 else "dev" if share < 0.35 else "train"


def heuristic(messages: Sequence[Mapping[str, Any]], has_tools: bool) -> Classification:
    return classify(messages, has_tools=has_tools)


@dataclass(frozen=True)
class Price:
    """USD per million tokens, in and out."""

    input: float
    output: float

    def of(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input + tokens_out * self.output) / 1e6


@dataclass(frozen=True)
class Outcome:
    entry: Mapping[str, Any]
    result: Classification

    @property
    def correct(self) -> bool:
        return bool(self.entry["expected"] == self.result.complexity)


@dataclass(frozen=True)
class Report:
    outcomes: tuple[Outcome, ...]

    @property
    def accuracy(self) -> float:
        return sum(o.correct for o in self.outcomes) / len(self.outcomes)

    @property
    def task_accuracy(self) -> float:
        hits = sum(bool(o.entry["task_type"] == o.result.task_type) for o in self.outcomes)
        return hits / len(self.outcomes)

    @property
    def confusion(self) -> Counter[tuple[str, str]]:
        """(expected, predicted) → count."""
        return Counter((o.entry["expected"], o.result.complexity) for o in self.outcomes)

    @property
    def gross_under_routing(self) -> float:
        """Share of complex or reasoning requests sent to the simple tier."""
        hard = [o for o in self.outcomes if o.entry["expected"] in ("complex", "reasoning")]
        gross = sum(
            (o.entry["expected"], o.result.complexity) in UNDER_ROUTED_GROSSLY for o in hard
        )
        return gross / len(hard) if hard else 0.0

    def recall(self, tier: str) -> float:
        want = [o for o in self.outcomes if o.entry["expected"] == tier]
        return sum(o.correct for o in want) / len(want) if want else 0.0

    @property
    def reasoning_recall(self) -> float:
        return self.recall("reasoning")

    def cost(self, tier_price: Mapping[str, Price]) -> float:
        """USD for the whole set when each request goes where it was classified."""
        return sum(
            tier_price[o.result.complexity].of(
                o.result.token_estimate, ANSWER_TOKENS[o.entry["expected"]]
            )
            for o in self.outcomes
        )

    def baseline_cost(self, premium: Price) -> float:
        """USD for the whole set when every request goes to the premium model."""
        return sum(
            premium.of(o.result.token_estimate, ANSWER_TOKENS[o.entry["expected"]])
            for o in self.outcomes
        )

    @property
    def sensitive_misses(self) -> tuple[Outcome, ...]:
        """Entries whose sensitive label the detector got wrong, either way."""
        return tuple(
            o for o in self.outcomes if bool(o.entry.get("sensitive")) != o.result.sensitive
        )

    def confusion_table(self) -> str:
        width = max(map(len, COMPLEXITIES)) + 2
        head = "expected \\ predicted".ljust(22) + "".join(c.rjust(width) for c in COMPLEXITIES)
        rows = [head]
        for exp in COMPLEXITIES:
            cells = "".join(str(self.confusion[(exp, got)]).rjust(width) for got in COMPLEXITIES)
            rows.append(exp.ljust(22) + cells)
        return "\n".join(rows)


def load_devset(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(entries: Iterable[Mapping[str, Any]], classifier: Classifier = heuristic) -> Report:
    return Report(
        tuple(Outcome(e, classifier(e["messages"], bool(e.get("has_tools")))) for e in entries)
    )
