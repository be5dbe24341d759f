"""Conversation affinity: a conversation keeps its model across turns.

Why: a provider's prompt cache only pays off when the next turn goes to the same model,
and answers within one conversation stay consistent. The conversation is the one
:mod:`routing.envelope` names (the harness's session id, ``X-Session-Id``, or a hash of
the system prompt and first user message).

:func:`keep` reorders an ``auto`` decision around the model the conversation is pinned to:

- ``kept``: the pinned model can serve this turn, even when a simpler turn would have
  picked a smaller model (never downgrade mid-conversation);
- ``escalated``: the turn needs more than the pinned model (below the quality floor),
  so the selection's own, stronger choice stands;
- ``moved``: the pinned model cannot serve (down, breaker open, refused, incapable);
- ``new``: no pin (first turn, or it expired).

The pinned model goes first, then the models at least as good (in the selection's order),
then the weaker ones, strongest first: a failover within the turn does not downgrade
either, unless nothing as good is left, and then as little as it can.

:class:`AffinityTable` holds the pins, bounded by an entry cap (the least recently used
goes first) and a TTL that each served turn renews. Time is passed in: no clock here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Literal

from llmswitch.config import ModelConfig
from llmswitch.routing.select import Decision

AffinityOutcome = Literal["new", "kept", "escalated", "moved"]


def affinity_key(decision: Decision) -> str | None:
    """What a pin is kept under: the conversation within its profile, so a profile the
    operator changes (or a client switches to) starts the conversation afresh."""
    if decision.conversation is None:
        return None
    return f"{decision.profile}\0{decision.conversation}"


def keep(decision: Decision, pinned: ModelConfig | None) -> Decision:
    """``decision`` with its candidates ordered for the pinned model (see the module doc)."""
    cands = decision.candidates
    if pinned is None or not cands:
        return replace(decision, affinity="new")
    outcome: AffinityOutcome
    if any(c.model.id == pinned.id for c in cands):
        outcome = "kept"
    elif _below_floor(decision, pinned.id):
        outcome = "escalated"
    else:
        outcome = "moved"
    cands = tuple(sorted(cands, key=lambda c: _after_pin(c.model, pinned)))
    reason = f"{decision.reason}; affinity {outcome}: {pinned.id} → {cands[0].model.id}"
    return replace(decision, candidates=cands, affinity=outcome, reason=reason)


def _after_pin(model: ModelConfig, pinned: ModelConfig) -> tuple[bool, bool, int]:
    """Sort key: the pin, the models at least as good, then the weaker, strongest first."""
    weaker = model.quality < pinned.quality
    return (model.id != pinned.id, weaker, -model.quality if weaker else 0)


def _below_floor(decision: Decision, model_id: str) -> bool:
    return any(e.model == model_id and e.why.startswith("quality ") for e in decision.excluded)


@dataclass(slots=True)
class _Pin:
    model: str
    expires: float


class AffinityTable:
    """Conversation → pinned model id, at most ``max_entries``, each for ``ttl_s`` after
    its last served turn. Entries are kept in last-use order, so the expired ones and the
    one to evict are always at the front: every operation is O(1) amortised."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._pins: OrderedDict[str, _Pin] = OrderedDict()
        self.evicted = 0
        self.expired = 0

    def resize(self, ttl_s: float, max_entries: int) -> None:
        """New bounds (a config reload): the least recently served go past a lower cap;
        pins made before keep the expiry they had."""
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._evict()

    def _evict(self) -> None:
        while len(self._pins) > max(0, self.max_entries):
            self._pins.popitem(last=False)
            self.evicted += 1

    def __len__(self) -> int:
        return len(self._pins)

    def get(self, conversation: str, now: float) -> str | None:
        """The model the conversation is pinned to, if its pin is still live."""
        self._expire(now)
        pin = self._pins.get(conversation)
        return pin.model if pin is not None else None

    def pin(self, conversation: str, model: str, now: float) -> None:
        """Pin (or re-pin) the conversation to the model that served its turn."""
        if self.max_entries <= 0:
            return
        self._expire(now)
        self._pins[conversation] = _Pin(model, now + self.ttl_s)
        self._pins.move_to_end(conversation)
        self._evict()

    def _expire(self, now: float) -> None:
        while self._pins:
            first = next(iter(self._pins.values()))
            if first.expires > now:
                return
            self._pins.popitem(last=False)
            self.expired += 1
