"""Rate-limit tracker actor: token buckets per backend and cooldowns learnt from 429s.

``rpm`` and ``tpm`` from the config become token buckets; a 429 with ``Retry-After``
puts the backend in cooldown until then. The view lists the backends that should not be
tried now, so the router can skip them without a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from llmswitch.config import Config
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.bucket import TokenBucket
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch

DEFAULT_COOLDOWN_S = 5.0
MAX_COOLDOWN_S = 300.0


@dataclass(frozen=True)
class LimitsView:
    cooldown_until: Mapping[str, float] = field(default_factory=dict)

    def limited(self, now: float) -> frozenset[str]:
        return frozenset(n for n, until in self.cooldown_until.items() if until > now)


@dataclass(eq=False)
class Acquire(Request[float]):
    """Take one request and ``tokens`` from the backend's buckets; replies 0.0 or a wait."""

    backend: str
    tokens: int = 0


@dataclass(frozen=True)
class Report:
    """What an attempt learnt: its status, Retry-After, and the tokens really used."""

    backend: str
    status: int
    retry_after_s: float | None = None
    tokens: int = 0


LimitsMsg = Acquire | Report


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_COOLDOWN_S)


class LimitsActor(Actor[LimitsMsg]):
    name = "limits"

    def __init__(self, config: Config, view: Watch[LimitsView]) -> None:
        self._rpm = {b.name: TokenBucket.per_minute(b.rpm) for b in config.backends if b.rpm}
        self._tpm = {b.name: TokenBucket.per_minute(b.tpm) for b in config.backends if b.tpm}
        self._cooldown: dict[str, float] = dict(view.value.cooldown_until)
        self._view = view
        self._throttled = 0

    async def handle(self, msg: LimitsMsg) -> None:
        if isinstance(msg, Acquire):
            msg.reply.set(self._acquire(msg))
            return
        if msg.tokens and msg.backend in self._tpm:
            self._tpm[msg.backend].charge(msg.tokens)
        if msg.status == 429:
            wait = msg.retry_after_s if msg.retry_after_s is not None else DEFAULT_COOLDOWN_S
            self._cool(msg.backend, wait)

    def _acquire(self, msg: Acquire) -> float:
        waits = [
            bucket.take(amount)
            for bucket, amount in (
                (self._rpm.get(msg.backend), 1),
                (self._tpm.get(msg.backend), msg.tokens),
            )
            if bucket is not None
        ]
        wait = max(waits, default=0.0)
        if wait > 0:
            self._throttled += 1
        return wait

    def _cool(self, backend: str, seconds: float) -> None:
        until = trio.current_time() + seconds
        self._cooldown[backend] = max(until, self._cooldown.get(backend, 0.0))
        self._view.publish(LimitsView(dict(self._cooldown)))

    def summary(self) -> Mapping[str, Any]:
        now = trio.current_time()
        return {
            "throttled": self._throttled,
            "cooldown_s": {n: round(u - now, 1) for n, u in self._cooldown.items() if u > now},
            "rpm_tokens": {n: round(b.tokens, 1) for n, b in self._rpm.items()},
            "tpm_tokens": {n: round(b.tokens, 1) for n, b in self._tpm.items()},
        }
