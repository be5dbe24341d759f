"""Scoring the classifier against a labelled dev set, shared by ops/eval.py and the tests.

Kept in the package (and pure) so the pinned accuracy in the test suite and the numbers a
human reads from ops/eval.py can never disagree about how they were computed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmswitch.routing.classify import COMPLEXITIES, Classification, classify

UNDER_ROUTED_GROSSLY = frozenset({("complex", "simple"), ("reasoning", "simple")})


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


def evaluate(entries: Iterable[Mapping[str, Any]]) -> Report:
    return Report(
        tuple(
            Outcome(e, classify(e["messages"], has_tools=bool(e.get("has_tools")))) for e in entries
        )
    )
