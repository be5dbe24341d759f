"""Rate-limit tracker actor: token buckets and cooldowns, per backend, model and client.

A *scope* names what a limit applies to: a backend (``"laptop"``), a model
(``"model:gpt-4o"``) or a client key (``"client:ide"``). ``rpm``/``tpm`` in the config
become token buckets; a 429's ``Retry-After`` and exhausted ``x-ratelimit-remaining-*``
headers put a scope in cooldown until the provider says it resets. The view lists the
scopes cooling down, so the router skips them without a round trip.

In a fleet (``cluster.redis_url``) the buckets are taken in Redis
(:class:`~llmswitch.cluster.limits.FleetLimits`), so the instances share each limit, and
a cooldown one instance learns reaches the others within ``SYNC_INTERVAL_S``. While
Redis is away, this actor's own buckets apply.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import trio

from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.cluster.limits import BucketSpec, FleetLimits
from llmswitch.cluster.link import LinkDown
from llmswitch.config import Config
from llmswitch.routing.select import client_scope, model_scope
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.bucket import TokenBucket
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch

T = TypeVar("T")

DEFAULT_COOLDOWN_S = 5.0
#: How often a fleet's limits actor reads the cooldowns the other instances learnt.
SYNC_INTERVAL_S = 1.0
#: How often a fleet's limits actor charges the tokens used since in Redis.
CHARGE_BATCH_S = 0.05
MAX_COOLDOWN_S = 300.0
RATELIMIT_HEADERS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
)


@dataclass(frozen=True)
class LimitsView:
    cooldown_until: Mapping[str, float] = field(default_factory=dict)

    def limited(self, now: float) -> frozenset[str]:
        """The scopes cooling down at ``now``."""
        return frozenset(n for n, until in self.cooldown_until.items() if until > now)


@dataclass(eq=False)
class Acquire(Request[float]):
    """Take one request and ``tokens`` from every scope's buckets, all or none.

    Replies 0.0 when taken, else the seconds until all of them would allow it.
    """

    scopes: tuple[str, ...]
    tokens: int = 0
    #: rpm and tpm of scopes the config does not know (runtime client keys); their
    #: buckets are made on first sight.
    limits: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """What an attempt learnt: status, Retry-After, rate-limit headers, tokens used."""

    scopes: tuple[str, ...]
    status: int
    retry_after_s: float | None = None
    tokens: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)


LimitsMsg = Acquire | Report | Reconfigure


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form), capped; None if absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_COOLDOWN_S)


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?"
                       r"(?:(\d+(?:\.\d+)?)ms)?")  # fmt: skip


def parse_reset(value: str | None) -> float | None:
    """Seconds from an ``x-ratelimit-reset-*`` value: ``"20"``, ``"1s"``, ``"6m0s"``, ``"20ms"``."""
    if not value:
        return None
    value = value.strip()
    try:
        return min(max(float(value), 0.0), MAX_COOLDOWN_S)
    except ValueError:
        pass
    m = _DURATION.fullmatch(value)
    if not m or not any(m.groups()):
        return None
    h, mins, s, ms = (float(g) if g else 0.0 for g in m.groups())
    return min(h * 3600 + mins * 60 + s + ms / 1000, MAX_COOLDOWN_S)


def cooldown_from_headers(headers: Mapping[str, str]) -> float | None:
    """How long to leave a backend alone when its headers say a quota is used up."""
    waits = [
        parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
        for kind in ("requests", "tokens")
        if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() == "0"
    ]
    known = [w for w in waits if w is not None]
    if known:
        return max(known)
    return DEFAULT_COOLDOWN_S if waits else None


def ratelimit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The rate-limit headers worth reporting, from a response's (case-insensitive) headers."""
    return {k: headers[k] for k in RATELIMIT_HEADERS if k in headers}


class LimitsActor(Actor[LimitsMsg]):
    name = "limits"

    def __init__(
        self, config: Config, view: Watch[LimitsView], fleet: FleetLimits | None = None
    ) -> None:
        self._rpm: dict[str, TokenBucket] = {}
        self._tpm: dict[str, TokenBucket] = {}
        self._limits: dict[str, tuple[int, int]] = {}
        self._reconfigure(config)
        self._cooldown: dict[str, float] = dict(view.value.cooldown_until)
        self._view = view
        self._throttled = 0
        self._fleet = fleet
        #: Tokens used, by bucket, not yet charged in Redis (see _send_charges).
        self._charges: dict[str, tuple[TokenBucket, float]] = {}
        #: Acquires and reports served by local buckets while Redis was away.
        self._degraded = 0

    async def background(self, nursery: trio.Nursery) -> None:
        if self._fleet is not None:
            nursery.start_soon(self._sync_cooldowns, self._fleet)
            nursery.start_soon(self._send_charges)

    async def _send_charges(self) -> None:
        """Tokens used, summed by bucket and charged in Redis in one script a batch (a
        bucket that is short a few ms later only errs on the safe side)."""
        while True:
            await trio.sleep(CHARGE_BATCH_S)
            if not self._charges:
                continue
            charges, self._charges = self._charges, {}
            await self._charge(charges)

    async def _charge(self, charges: Mapping[str, tuple[TokenBucket, float]]) -> None:
        specs = _specs((name, bucket, amount) for name, (bucket, amount) in charges.items())
        if await self._in_fleet(lambda f: f.charge(specs)) is None:
            for bucket, amount in charges.values():
                bucket.charge(amount)

    async def _sync_cooldowns(self, fleet: FleetLimits) -> None:
        while True:
            deadlines = await self._in_fleet(lambda f: f.cooldowns(trio.current_time()))
            if deadlines is not None:
                self._learn(deadlines)
            await trio.sleep(SYNC_INTERVAL_S)

    def _reconfigure(self, config: Config) -> None:
        """Buckets for the config's limits; a scope whose rpm and tpm did not change keeps
        its bucket (and what it has used). Runtime keys' buckets stay as they are."""
        limits = {b.name: (b.rpm, b.tpm) for b in config.backends}
        limits |= {model_scope(m.id): (m.rpm, m.tpm) for m in config.models}
        limits |= {client_scope(c.name): (c.rpm, c.tpm) for c in config.clients}
        for scope in set(self._limits) | set(limits):
            if self._limits.get(scope) == limits.get(scope):
                continue
            rpm, tpm = limits.get(scope, (0, 0))
            self._rebucket(self._rpm, scope, rpm)
            self._rebucket(self._tpm, scope, tpm)
        self._limits = limits

    @staticmethod
    def _rebucket(buckets: dict[str, TokenBucket], scope: str, per_minute: int) -> None:
        if per_minute:
            buckets[scope] = TokenBucket.per_minute(per_minute)
        else:
            buckets.pop(scope, None)

    async def handle(self, msg: LimitsMsg) -> None:
        if isinstance(msg, Acquire):
            msg.reply.set(await self._acquire(msg))
            return
        if isinstance(msg, Reconfigure):
            self._reconfigure(msg.config)
            msg.reply.set(None)
            return
        used = [
            (f"tpm:{scope}", self._tpm[scope], msg.tokens)
            for scope in msg.scopes
            if msg.tokens and scope in self._tpm
        ]
        for name, bucket, amount in used:
            if self._fleet is not None and self._fleet.link.up:
                _, before = self._charges.get(name, (bucket, 0.0))
                self._charges[name] = (bucket, before + amount)
            else:
                bucket.charge(amount)
        wait = cooldown_from_headers(msg.headers)
        if msg.status == 429:
            wait = max(wait or 0.0, msg.retry_after_s or 0.0) or DEFAULT_COOLDOWN_S
        if wait:
            # Quotas are per account, so the backend (the first scope) cools down.
            await self._cool(msg.scopes[0], wait)

    def _buckets(self, msg: Acquire) -> Iterable[tuple[str, TokenBucket, float]]:
        for scope in msg.scopes:
            if scope in self._rpm:
                yield f"rpm:{scope}", self._rpm[scope], 1
            if scope in self._tpm:
                yield f"tpm:{scope}", self._tpm[scope], msg.tokens

    async def _acquire(self, msg: Acquire) -> float:
        for scope, (rpm, tpm) in msg.limits.items():
            if rpm and scope not in self._rpm:
                self._rpm[scope] = TokenBucket.per_minute(rpm)
            if tpm and scope not in self._tpm:
                self._tpm[scope] = TokenBucket.per_minute(tpm)
        buckets = list(self._buckets(msg))
        if not buckets:
            return 0.0
        wait = await self._in_fleet(lambda f: f.take(_specs(buckets)))
        if wait is None:
            wait = max(b.wait_for(amount) for _, b, amount in buckets)
            if wait <= 0:
                for _, bucket, amount in buckets:
                    bucket.take(amount)
        if wait > 0:
            self._throttled += 1
        return wait

    async def _in_fleet(self, step: Callable[[FleetLimits], Awaitable[T]]) -> T | None:
        """What ``step`` gets from the fleet's Redis; None (use local state) without a
        fleet or while Redis is away."""
        if self._fleet is None:
            return None
        if self._fleet.link.up:
            try:
                return await step(self._fleet)
            except LinkDown:
                pass
        self._degraded += 1
        return None

    async def _cool(self, scope: str, seconds: float) -> None:
        now = trio.current_time()
        self._learn({scope: now + seconds})
        await self._in_fleet(lambda f: f.cooldowns(now, (scope, seconds)))

    def _learn(self, deadlines: Mapping[str, float]) -> None:
        """Cool down until each deadline (an earlier one never shortens a cooldown)."""
        changed = False
        for scope, until in deadlines.items():
            if until > self._cooldown.get(scope, 0.0):
                self._cooldown[scope] = until
                changed = True
        if changed:
            self._view.publish(LimitsView(dict(self._cooldown)))

    def summary(self) -> Mapping[str, Any]:
        now = trio.current_time()
        return {
            "throttled": self._throttled,
            "degraded_steps": self._degraded if self._fleet is not None else None,
            "leased_takes": self._fleet.leased_takes if self._fleet is not None else None,
            "cooldown_s": {n: round(u - now, 1) for n, u in self._cooldown.items() if u > now},
            "rpm_tokens": {n: round(b.tokens, 1) for n, b in self._rpm.items()},
            "tpm_tokens": {n: round(b.tokens, 1) for n, b in self._tpm.items()},
        }


def _specs(buckets: Iterable[tuple[str, TokenBucket, float]]) -> list[BucketSpec]:
    """The buckets as the fleet's Redis keeps them: same capacity and rate, shared."""
    return [BucketSpec(name, b.capacity, b.rate_per_s, amount) for name, b, amount in buckets]
