"""Router actor: turns a request into a ranked list of candidates with the reason.

The decision itself is :mod:`llmswitch.routing.select` (pure); this actor gathers its
inputs: the classification (from the classifier actor, or the inline heuristic while
that actor is down) and the health, pool, limits and budget views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from llmswitch.actors.classifier import Classify, classify_or_default
from llmswitch.actors.health import HealthView
from llmswitch.actors.ledger import BudgetView
from llmswitch.actors.limits import LimitsView
from llmswitch.actors.pool import PoolView
from llmswitch.routing.classify import Classification
from llmswitch.routing.select import (
    Availability,
    Catalog,
    Decision,
    decide_auto,
    decide_explicit,
)
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Mailbox, Request
from llmswitch.runtime.watch import Watch

AUTO = "auto"
CLASSIFY_TIMEOUT_S = 0.25


class UnknownModel(LookupError):
    """The client named a model that is neither configured, an alias, nor ``auto``."""


@dataclass(eq=False)
class Decide(Request[Decision]):
    model: str
    messages: Sequence[Mapping[str, Any]]
    has_tools: bool = False
    max_tokens: int = 0


@dataclass(frozen=True)
class Views:
    """The read-only views the router consults; published by the other actors."""

    health: Watch[HealthView]
    pool: Watch[PoolView]
    limits: Watch[LimitsView]
    budget: Watch[BudgetView]

    def availability(self) -> Availability:
        return Availability(
            down=self.health.value.down,
            open_breakers=self.pool.value.open_breakers,
            limited=self.limits.value.limited(trio.current_time()),
            budget_exceeded=self.budget.value.exceeded,
        )


class RouterActor(Actor[Decide]):
    name = "router"

    def __init__(
        self,
        catalog: Catalog,
        views: Views,
        classifier: Mailbox[Classify],
        classifier_up: Callable[[], bool],
    ) -> None:
        self._catalog = catalog
        self._views = views
        self._classifier = classifier
        self._classifier_up = classifier_up
        self._decisions = 0
        self._fallback_classifications = 0

    async def handle(self, msg: Decide) -> None:
        self._decisions += 1
        avail = self._views.availability()
        if msg.model == AUTO:
            cls = await self._classify(msg)
            msg.reply.set(decide_auto(self._catalog, cls, avail, msg.max_tokens))
            return
        model = self._catalog.by_name.get(msg.model)
        if model is None:
            msg.reply.fail(UnknownModel(msg.model))
            return
        msg.reply.set(decide_explicit(self._catalog, model, avail, msg.max_tokens))

    async def _classify(self, msg: Decide) -> Classification:
        """Ask the classifier actor; while it is down or slow, classify inline instead."""
        if not self._classifier_up():
            self._fallback_classifications += 1
            return classify_or_default(msg.messages, has_tools=msg.has_tools)
        try:
            return await self._classifier.call(
                Classify(msg.messages, msg.has_tools), timeout=CLASSIFY_TIMEOUT_S
            )
        except (CallTimeout, ActorCrashed):
            self._fallback_classifications += 1
            return classify_or_default(msg.messages, has_tools=msg.has_tools)

    def summary(self) -> Mapping[str, Any]:
        return {
            "decisions": self._decisions,
            "inline_classifications": self._fallback_classifications,
            "models": len(self._catalog.config.models),
        }
