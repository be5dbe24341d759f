"""Backend pool actor: a circuit breaker per backend, leases, and performance stats.

In a fleet, a breaker of ours that opens or closes again is told to the peers, and a
peer's is taken as :mod:`llmswitch.cluster.news` says (open until its cooldown ends;
closed again: ours turns half-open).

The httpx clients themselves live in :class:`Clients`, owned by the service rather than
the actor, so a restart of this actor never closes a connection under a stream in flight.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.cluster.news import (
    BadEntry,
    BreakerNews,
    Heard,
    Tell,
    breaker_change,
    breaker_key,
    silent,
)
from llmswitch.config import BackendConfig, Config
from llmswitch.routing.performance import (
    SEED_ROWS_PER_MODEL,
    Performance,
    Sample,
    outcome_of_status,
)
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from llmswitch.runtime.closing import aclose_shielded
from llmswitch.runtime.mailbox import Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.connect import open_store
from llmswitch.store.errors import StoreError
from llmswitch.store.request_log import recent_outcomes

log = logging.getLogger(__name__)

#: Past this the pool starts cold rather than wait on a slow store.
SEED_TIMEOUT_S = 5.0


class Clients:
    """One pooled httpx client per backend, keyed by backend name.

    A reload swaps in clients for new and changed backends (:meth:`swap`). A replaced
    client stays open for the requests still using it, and :meth:`close_idle` closes it
    once no lease on its backend is out: requests use a backend's client only while they
    hold a lease from the pool.
    """

    def __init__(self, backends: tuple[BackendConfig, ...]) -> None:
        self._configs = {b.name: b for b in backends}
        self.by_backend = {b.name: upstream_client(b) for b in backends}
        #: Replaced clients still open, with their backend's name.
        self._retired: list[tuple[str, httpx.AsyncClient]] = []

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in [*self.by_backend.values(), *(c for _, c in self._retired)]:
            await aclose_shielded(client)

    def get(self, backend: str) -> httpx.AsyncClient:
        """The backend's client; a backend just removed by a reload still has its old one."""
        client = self.by_backend.get(backend)
        if client is None:
            client = next(c for name, c in reversed(self._retired) if name == backend)
        return client

    def swap(self, backends: tuple[BackendConfig, ...]) -> None:
        """New clients for new and changed backends; removed and replaced ones retire."""
        configs = {b.name: b for b in backends}
        for name, client in list(self.by_backend.items()):
            if configs.get(name) != self._configs[name]:
                self._retired.append((name, client))
                del self.by_backend[name]
        for b in backends:
            if b.name not in self.by_backend:
                self.by_backend[b.name] = upstream_client(b)
        self._configs = configs

    @property
    def retired(self) -> int:
        return len(self._retired)

    async def close_idle(self, in_flight: Mapping[str, int]) -> None:
        """Close the retired clients of backends with no lease out (``in_flight``)."""
        idle = [(n, c) for n, c in self._retired if not in_flight.get(n)]
        self._retired = [(n, c) for n, c in self._retired if in_flight.get(n)]
        for _, client in idle:
            await aclose_shielded(client)


def upstream_client(backend: BackendConfig) -> httpx.AsyncClient:
    """The backend's pooled client: its base URL, auth headers and query parameters."""
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
class BreakerStats:
    breaker: str
    next_probe_in_s: float | None


@dataclass(frozen=True)
class BackendStats(BreakerStats):
    in_flight: int = 0


@dataclass(frozen=True)
class ModelStats(BreakerStats):
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    #: Recent success rate (EWMA of 1 for a success, 0 for a failure); None until used.
    success: float | None = None


@dataclass(frozen=True)
class PoolView:
    backends: Mapping[str, BackendStats] = field(default_factory=dict)
    models: Mapping[str, ModelStats] = field(default_factory=dict)

    @property
    def open_breakers(self) -> frozenset[str]:
        return frozenset(n for n, s in self.backends.items() if s.breaker == BreakerState.OPEN)

    @property
    def open_models(self) -> frozenset[str]:
        return frozenset(n for n, s in self.models.items() if s.breaker == BreakerState.OPEN)


@dataclass(frozen=True)
class Grant:
    """Permits for one attempt; a probe permit is the single call a half-open breaker lets
    through, and only its outcome may close or re-open that breaker."""

    backend_probe: bool = False
    model_probe: bool = False


@dataclass(eq=False)
class Lease(Request[Grant | None]):
    """Ask for breaker permits (backend and model) for one attempt; None if denied."""

    backend: str
    model: str = ""


@dataclass(frozen=True)
class Outcome:
    """How an attempt that held a lease ended; ``ok=None`` gives the permits back unused.

    ``model_only`` failures (the backend answered that it does not serve the model) count
    against the model's breaker alone: one missing model must not take its backend down.
    """

    backend: str
    model: str
    ok: bool | None
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    model_only: bool = False
    grant: Grant = Grant()


PoolMsg = Lease | Outcome | Reconfigure | Heard


def _report(breaker: CircuitBreaker, probe: bool, ok: bool | None) -> None:
    """Tell a breaker how an attempt ended. A probe's outcome decides a half-open breaker;
    any other attempt counts only while the breaker is closed: one leased before the
    breaker opened is stale news and must not close, re-open or free the probe slot."""
    if probe:
        if ok is None:
            breaker.release()
        elif ok:
            breaker.record_success()
        else:
            breaker.record_failure()
    elif ok is not None and breaker.state is BreakerState.CLOSED:
        if ok:
            breaker.record_success()
        else:
            breaker.record_failure()


def breaker_policy(config: Config) -> BreakerPolicy:
    b = config.breaker
    return BreakerPolicy(
        consecutive_failures=b.consecutive_failures,
        failure_ratio=b.failure_ratio,
        window_s=b.window_s,
        min_volume=b.min_volume,
        cooldown_s=b.cooldown_s,
        cooldown_max_s=b.cooldown_max_s,
        probe_timeout_s=b.probe_timeout_s,
    )


class PoolActor(Actor[PoolMsg]):
    name = "pool"

    def __init__(self, config: Config, view: Watch[PoolView], tell: Tell = silent) -> None:
        self._config = config
        self._tell = tell
        self._policy = breaker_policy(config)
        self._breakers = {be.name: CircuitBreaker(self._policy) for be in config.backends}
        self._model_breakers = {m.id: CircuitBreaker(self._policy) for m in config.models}
        self._in_flight = dict.fromkeys(self._breakers, 0)
        self._perf = Performance()
        self._store = config.store
        self._seed_rows = SEED_ROWS_PER_MODEL * max(1, len(config.models))
        #: Backends a reload removed while leases on them were out: gone once those end.
        self._retiring: set[str] = set()
        self._view = view
        self._publish()

    def _reconfigure(self, config: Config) -> None:
        """Keep the breakers and stats of what did not change; a changed backend or model
        starts afresh. A removed backend stays (retiring) until its last lease ends."""
        self._policy = breaker_policy(config)
        backends = {b.name: b for b in self._config.backends}
        models = {m.id: m for m in self._config.models}
        kept = {b.name for b in config.backends if backends.get(b.name) == b}
        kept_models = {m.id for m in config.models if models.get(m.id) == m}
        for name in set(self._breakers) - {b.name for b in config.backends}:
            if self._in_flight.get(name):
                self._retiring.add(name)
            else:
                self._forget(name)
        for b in config.backends:
            if b.name not in kept:
                self._breakers[b.name] = CircuitBreaker(self._policy)
                self._in_flight.setdefault(b.name, 0)
                self._retiring.discard(b.name)
        self._model_breakers = {
            m.id: self._model_breakers[m.id]
            if m.id in kept_models
            else CircuitBreaker(self._policy)
            for m in config.models
        }
        for stats in (self._perf.latency_ms, self._perf.ttfb_ms, self._perf.success):
            for name in set(stats) - kept_models:
                del stats[name]
        for breaker in self._all_breakers():
            breaker.policy = self._policy
        self._config = config

    def _forget(self, backend: str) -> None:
        self._breakers.pop(backend, None)
        self._in_flight.pop(backend, None)
        self._retiring.discard(backend)

    async def background(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._republish_on_half_open)
        nursery.start_soon(self._seed)

    async def _seed(self) -> None:
        """Learn from the ledger's newest rows what a previous run (or life) knew; a store
        that cannot be read only means starting cold."""
        try:
            with trio.fail_after(SEED_TIMEOUT_S):
                async with open_store(self._store) as db:
                    rows = await recent_outcomes(db, self._seed_rows)
        except (StoreError, trio.TooSlowError, OSError, sqlite3.Error) as exc:
            log.warning("pool: performance not seeded from the ledger: %s", exc)
            return
        self._perf.seed(Sample(m, outcome_of_status(s), lat, ttfb) for m, s, lat, ttfb in rows)
        self._publish()

    async def handle(self, msg: PoolMsg) -> None:
        if isinstance(msg, Lease):
            grant = self._lease(msg)
            msg.reply.set(grant, undo=lambda g: self._give_back(msg, g))
        elif isinstance(msg, Reconfigure):
            self._reconfigure(msg.config)
            msg.reply.set(None)
        elif isinstance(msg, Heard):
            try:
                self._heard(BreakerNews.of(msg.entry.data), msg.entry.key)
            except BadEntry as exc:  # a peer's junk must not crash-loop our pool
                log.warning("fleet: ignoring breaker %r: %s", msg.entry.key, exc)
        else:
            self._record(msg)
        self._publish()

    def _breaker(self, key: str) -> CircuitBreaker | None:
        kind, _, name = key.partition(":")
        return (self._breakers if kind == "backend" else self._model_breakers).get(name)

    def _heard(self, news: BreakerNews, key: str) -> None:
        """A peer's breaker opened or closed again: ours follows (cluster.news)."""
        breaker = self._breaker(key)
        if breaker is None:
            return
        left = news.open_for(time.time())
        if left:
            breaker.hold_open(trio.current_time() + left)
        elif not news.is_open:
            breaker.end_cooldown()

    def _tell_change(self, key: str, breaker: CircuitBreaker, before: BreakerState) -> None:
        now = trio.current_time()
        due = breaker.next_probe_at
        news = breaker_change(
            before, breaker.state, None if due is None else due - now, time.time()
        )
        if news is not None:
            self._tell("breaker", key, news.data())

    def _lease(self, msg: Lease) -> Grant | None:
        backend = self._breakers.get(msg.backend)
        if backend is None or msg.backend in self._retiring:
            return None  # removed by a reload after the request was routed
        model = self._model_breakers.get(msg.model)
        backend_probe = backend.state is BreakerState.HALF_OPEN
        if not backend.allow():
            return None
        model_probe = model is not None and model.state is BreakerState.HALF_OPEN
        if model is not None and not model.allow():
            _report(backend, backend_probe, None)
            return None
        self._in_flight[msg.backend] += 1
        return Grant(backend_probe, model_probe)

    def _give_back(self, lease: Lease, grant: Grant | None) -> None:
        """Undo a lease whose caller left without it (cancelled or timed out)."""
        if grant is not None:
            self._record(Outcome(lease.backend, lease.model, None, grant=grant))
            self._publish()

    def _record(self, out: Outcome) -> None:
        backend = self._breakers.get(out.backend)
        if backend is None:
            return
        model = self._model_breakers.get(out.model)
        self._in_flight[out.backend] = max(0, self._in_flight[out.backend] - 1)
        if out.backend in self._retiring and not self._in_flight[out.backend]:
            self._forget(out.backend)
            return
        self._perf.record(out.model, out.ok, out.latency_ms, out.ttfb_ms)
        if model is not None:
            before = model.state
            _report(model, out.grant.model_probe, out.ok)
            self._tell_change(breaker_key("model", out.model), model, before)
        # A model the backend does not serve says nothing about the backend itself.
        backend_ok = None if out.model_only and out.ok is False else out.ok
        before = backend.state
        _report(backend, out.grant.backend_probe, backend_ok)
        self._tell_change(breaker_key("backend", out.backend), backend, before)

    def _all_breakers(self) -> list[CircuitBreaker]:
        return [*self._breakers.values(), *self._model_breakers.values()]

    async def _republish_on_half_open(self) -> None:
        """An open breaker turns half-open by time alone; tell readers when it does."""
        while True:
            due = [b.next_probe_at for b in self._all_breakers() if b.next_probe_at]
            if due:
                await trio.sleep_until(min(due))
            else:
                await self._view.wait_newer(self._view.version)
                continue
            self._publish()

    def _publish(self) -> None:
        now = trio.current_time()

        def probe_in(br: CircuitBreaker) -> float | None:
            return None if br.next_probe_at is None else br.next_probe_at - now

        backends = {
            name: BackendStats(str(br.state), probe_in(br), self._in_flight[name])
            for name, br in self._breakers.items()
        }
        models = {
            name: ModelStats(
                str(br.state),
                probe_in(br),
                self._perf.latency_ms.get(name),
                self._perf.ttfb_ms.get(name),
                self._perf.success.get(name),
            )
            for name, br in self._model_breakers.items()
        }
        self._view.publish(PoolView(backends, models))

    def summary(self) -> Mapping[str, Any]:
        view = self._view.value
        return {
            "backends": {n: vars(s) for n, s in view.backends.items()},
            "models": {n: vars(s) for n, s in view.models.items()},
        }
