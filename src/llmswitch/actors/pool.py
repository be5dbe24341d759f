"""Backend pool actor: a circuit breaker per backend, leases, and performance stats.

The httpx clients themselves live in :class:`Clients`, owned by the service rather than
the actor, so a restart of this actor never closes a connection under a stream in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from llmswitch.config import BackendConfig, Config
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch


class Clients:
    """One pooled httpx client per backend, keyed by backend name."""

    def __init__(self, backends: tuple[BackendConfig, ...]) -> None:
        self._stack = AsyncExitStack()
        self.by_backend = {b.name: _client(b) for b in backends}

    async def __aenter__(self) -> Clients:
        for client in self.by_backend.values():
            await self._stack.enter_async_context(client)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


def _client(backend: BackendConfig) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=backend.base_url.rstrip("/"),
        headers=backend.auth_headers(),
        params={"api-version": backend.api_version} if backend.api_version else None,
        limits=httpx.Limits(
            max_connections=backend.max_connections,
            max_keepalive_connections=backend.max_connections,
        ),
        # Reads are bounded by the relay's own first-byte and idle deadlines.
        timeout=httpx.Timeout(connect=backend.connect_s, read=None, write=30.0, pool=30.0),
    )


@dataclass(frozen=True)
class BackendStats:
    breaker: str
    next_probe_in_s: float | None
    in_flight: int


@dataclass(frozen=True)
class PoolView:
    backends: Mapping[str, BackendStats] = field(default_factory=dict)
    latency_ms: Mapping[str, float] = field(default_factory=dict)
    ttfb_ms: Mapping[str, float] = field(default_factory=dict)

    @property
    def open_breakers(self) -> frozenset[str]:
        return frozenset(n for n, s in self.backends.items() if s.breaker == BreakerState.OPEN)


@dataclass(eq=False)
class Lease(Request[bool]):
    """Ask for a breaker permit for one attempt on ``backend``; replies False if denied."""

    backend: str


@dataclass(frozen=True)
class Outcome:
    """How an attempt that held a lease ended; ``ok=None`` gives the permit back unused."""

    backend: str
    model: str
    ok: bool | None
    latency_ms: float = 0.0
    ttfb_ms: float | None = None


PoolMsg = Lease | Outcome

EWMA_ALPHA = 0.2


def ewma(previous: float | None, sample: float, alpha: float = EWMA_ALPHA) -> float:
    return sample if previous is None else previous + alpha * (sample - previous)


class PoolActor(Actor[PoolMsg]):
    name = "pool"

    def __init__(self, config: Config, view: Watch[PoolView]) -> None:
        b = config.breaker
        policy = BreakerPolicy(
            b.consecutive_failures,
            b.failure_ratio,
            b.window_s,
            b.min_volume,
            b.cooldown_s,
            b.cooldown_max_s,
        )
        self._breakers = {be.name: CircuitBreaker(policy) for be in config.backends}
        self._in_flight = dict.fromkeys(self._breakers, 0)
        self._latency: dict[str, float] = {}
        self._ttfb: dict[str, float] = {}
        self._view = view
        self._publish()

    async def background(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._republish_on_half_open)

    async def handle(self, msg: PoolMsg) -> None:
        if isinstance(msg, Lease):
            granted = self._breakers[msg.backend].allow()
            if granted:
                self._in_flight[msg.backend] += 1
            msg.reply.set(granted)
        else:
            self._record(msg)
        self._publish()

    def _record(self, out: Outcome) -> None:
        breaker = self._breakers[out.backend]
        self._in_flight[out.backend] = max(0, self._in_flight[out.backend] - 1)
        if out.ok is None:
            breaker.release()
            return
        if out.ok:
            breaker.record_success()
            self._latency[out.model] = ewma(self._latency.get(out.model), out.latency_ms)
            if out.ttfb_ms is not None:
                self._ttfb[out.model] = ewma(self._ttfb.get(out.model), out.ttfb_ms)
        else:
            breaker.record_failure()

    async def _republish_on_half_open(self) -> None:
        """An open breaker turns half-open by time alone; tell readers when it does."""
        while True:
            due = [b.next_probe_at for b in self._breakers.values() if b.next_probe_at]
            if due:
                await trio.sleep_until(min(due))
            else:
                await self._view.wait_newer(self._view.version)
                continue
            self._publish()

    def _publish(self) -> None:
        now = trio.current_time()
        backends = {
            name: BackendStats(
                breaker=str(br.state),
                next_probe_in_s=None if br.next_probe_at is None else br.next_probe_at - now,
                in_flight=self._in_flight[name],
            )
            for name, br in self._breakers.items()
        }
        self._view.publish(PoolView(backends, dict(self._latency), dict(self._ttfb)))

    def summary(self) -> Mapping[str, Any]:
        view = self._view.value
        return {
            "backends": {n: vars(s) for n, s in view.backends.items()},
            "latency_ms": {m: round(v, 1) for m, v in view.latency_ms.items()},
            "ttfb_ms": {m: round(v, 1) for m, v in view.ttfb_ms.items()},
        }
