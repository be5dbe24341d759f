"""Classifier actor: how hard is this request, and what kind of task is it?

Runs the in-process heuristic (well under a millisecond). The router falls back to the
same heuristic inline when this actor is down, so a crash here never fails a request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmswitch.routing.classify import Classification, classify
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import Request

log = logging.getLogger(__name__)


def classify_or_default(
    messages: Sequence[Mapping[str, Any]], *, has_tools: bool = False
) -> Classification:
    """The heuristic's answer, or "medium" when it fails on some odd input.

    A request must never crash the classifier: a prompt that did so every time could
    exhaust the supervisor's restart intensity and take the whole gateway down.
    """
    try:
        return classify(messages, has_tools=has_tools)
    except Exception as exc:
        log.exception("classifier failed; defaulting to medium")
        return Classification(
            "medium", 0.0, "conversation", 0, reason=f"classifier error: {type(exc).__name__}"
        )


@dataclass(eq=False)
class Classify(Request[Classification]):
    messages: Sequence[Mapping[str, Any]]
    has_tools: bool = False


class ClassifierActor(Actor[Classify]):
    name = "classifier"

    def __init__(self) -> None:
        self._count: dict[str, int] = {}

    async def handle(self, msg: Classify) -> None:
        result = classify_or_default(msg.messages, has_tools=msg.has_tools)
        self._count[result.complexity] = self._count.get(result.complexity, 0) + 1
        msg.reply.set(result)

    def summary(self) -> Mapping[str, Any]:
        return {"mode": "heuristic", "classified": dict(self._count)}
