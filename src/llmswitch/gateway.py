"""The gateway's parts wired together: mailboxes, views, the supervision tree.

:class:`Gateway` is what the front end talks to. It holds no request state of its own
beyond counters; every piece of mutable state belongs to one actor.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

from llmswitch.actors.classifier import ClassifierActor, ClassifierMsg
from llmswitch.actors.health import HealthActor, HealthMsg, HealthView
from llmswitch.actors.keys import KeysActor, KeysMsg
from llmswitch.actors.ledger import BudgetView, LedgerActor, LedgerMemory, LedgerMsg
from llmswitch.actors.limits import LimitsActor, LimitsMsg, LimitsView
from llmswitch.actors.pool import Clients, PoolActor, PoolMsg, PoolView
from llmswitch.actors.router import RouterActor, RouterMsg, Views
from llmswitch.cluster.budget import FleetBudget
from llmswitch.cluster.limits import FleetLimits
from llmswitch.cluster.link import Link
from llmswitch.cluster.news import Heard, Tell, silent
from llmswitch.cluster.spread import Fleet, Sink
from llmswitch.config import Config
from llmswitch.front.access import Access, KeyRing
from llmswitch.front.access_log import log_request
from llmswitch.front.listen import Listener
from llmswitch.front.lockout import Lockout
from llmswitch.front.metrics import Metrics
from llmswitch.reloader import Reloader
from llmswitch.routing.live import merged
from llmswitch.routing.select import Catalog
from llmswitch.runtime.backoff import Backoff
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.restarts import RestartPolicy
from llmswitch.runtime.supervisor import ChildSpec, Supervisor
from llmswitch.runtime.watch import Watch
from llmswitch.store.journal import Journal, journal_dir
from llmswitch.store.request_log import RequestRow
from llmswitch.urls import redact_url

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Gateway:
    def __init__(
        self, config: Config, clients: Clients, config_path: str | None = None, worker: int = 0
    ) -> None:
        self.adopt(config)
        #: Which of ``server.workers`` processes this is (0 for a lone process).
        self.worker = worker
        #: What this process's ledger rows say served them (one log for a fleet); named
        #: once the port is bound (:func:`~llmswitch.store.request_log.instance_name`).
        self.instance: str | None = None
        self.clients = clients
        #: The Redis link of a fleet (``cluster.redis_url``); None for one process alone.
        self.link = Link.of(config.cluster)
        #: The fleet's budgets in Redis and this instance's offline slice (outlives the ledger).
        self.fleet_budget = (
            FleetBudget(self.link, config.cluster.offline_budget_fraction, self.link.instance)
            if self.link
            else None
        )
        self.fleet_limits = FleetLimits(self.link) if self.link else None
        #: The routing settings in force (the file's, with the stored ones on top), as the
        #: router publishes them: the request path and the ledger read the budgets here.
        self.settings = Watch(merged(config))
        self.views = Views(
            health=Watch(HealthView()),
            pool=Watch(PoolView()),
            limits=Watch(LimitsView()),
            budget=Watch(BudgetView()),
        )
        self.ledger: Mailbox[LedgerMsg] = Mailbox("ledger", 4096)
        self.health: Mailbox[HealthMsg] = Mailbox("health", 64)
        self.limits: Mailbox[LimitsMsg] = Mailbox("limits", 1024)
        self.pool: Mailbox[PoolMsg] = Mailbox("pool", 1024)
        self.classifier: Mailbox[ClassifierMsg] = Mailbox("classifier", 1024)
        self.router: Mailbox[RouterMsg] = Mailbox("router", 1024)
        self.keys_box: Mailbox[KeysMsg] = Mailbox("keys", 64)
        self.journal = Journal(
            journal_dir(config.store.path, worker),
            adopt_beyond=None if worker else config.server.workers,
        )
        #: Budget holds and counting state that outlive a restart of the ledger actor.
        self.ledger_memory = LedgerMemory()
        self.clock = WallClock()
        self.stop_requested = trio.Event()
        self.draining = False
        #: The drain's grace period is over: what is still open is being cut.
        self.grace_expired = False
        self._relays: set[trio.CancelScope] = set()
        self.in_flight = 0
        self.http_open = 0
        #: Accepts client connections; main.run_gateway lowers its cap to the open-file limit.
        self.listener = Listener(config.server.max_connections, config.server.send_timeout_s)
        self._idle = trio.Event()
        self.started_at = trio.current_time()
        #: The accepted client keys: the config's, then the store's on top.
        self.keys = Watch(KeyRing.build(config.clients))
        #: Peers presenting wrong credentials, slowed down (front.lockout).
        self.lockout = Lockout()
        #: Jittered waits between retries of one request on the same backend.
        self.backoff = Backoff(base_s=0.05, cap_s=1.0)
        self.reloader = Reloader(self, config_path)
        #: What this instance tells its peers and hears from them (with a link).
        self.fleet = Fleet(self.link) if self.link else None
        self.tell: Tell = self.fleet.tell if self.fleet else silent
        self.reloader.tell = self.tell
        if self.fleet:
            self.fleet.sinks = self._sinks()
        grace = config.server.grace_s + 10
        # Each factory reads the config in force, so a restarted actor starts on the latest.
        self.supervisor = Supervisor(
            [
                ChildSpec("ledger", self._ledger, self.ledger, shutdown_timeout_s=grace),
                ChildSpec(
                    "keys", lambda: KeysActor(self.config, self.keys, self.tell), self.keys_box
                ),
                ChildSpec(
                    "health",
                    lambda: HealthActor(self.config, self.views.health, self.tell),
                    self.health,
                ),
                ChildSpec(
                    "limits",
                    lambda: LimitsActor(self.config, self.views.limits, self.fleet_limits),
                    self.limits,
                ),
                ChildSpec(
                    "pool", lambda: PoolActor(self.config, self.views.pool, self.tell), self.pool
                ),
                ChildSpec(
                    "classifier", lambda: ClassifierActor(self.config, clients), self.classifier
                ),
                ChildSpec("router", self._router, self.router),
            ],
            RestartPolicy(),
            on_give_up=lambda _reason: self.stop_requested.set(),
        )
        self.metrics = Metrics(
            self.views,
            self.supervisor,
            lambda: self.in_flight,
            lambda: self.ledger_memory.store_down is None,
        )

    def adopt(self, config: Config) -> None:
        """Serve ``config`` from the next request on (at start, and on a live reload)."""
        self.config = config
        self.catalog = Catalog.build(config)
        self.access = Access.of(config)

    def _ledger(self) -> LedgerActor:
        return LedgerActor(
            self.config,
            self.views.budget,
            self.journal,
            self.clock,
            memory=self.ledger_memory,
            fleet=self.fleet_budget,
            settings=self.settings,
        )

    def _router(self) -> RouterActor:
        def classifier_up() -> bool:
            return self.supervisor.child("classifier").state == "running"

        return RouterActor(
            self.catalog, self.views, self.classifier, classifier_up, self.tell, self.settings
        )

    def _sinks(self) -> dict[Any, Sink]:
        """Where each topic a peer tells goes: the actor that owns that state."""

        def to(box: Mailbox[Any]) -> Sink:
            return lambda entry: box.try_cast(Heard(entry))

        return {
            "breaker": to(self.pool),
            "health": to(self.health),
            "key": to(self.keys_box),
            "setting": to(self.router),
            "affinity": to(self.router),
            "reload": self.reloader.heard,
        }

    def new_request_id(self) -> str:
        return f"req-{uuid.uuid4().hex[:20]}"

    def begin_exchange(self) -> bool:
        """A request's body is in; it is in flight until its ledger row is recorded."""
        self.in_flight += 1
        return True

    async def record(self, row: RequestRow, *, in_flight: bool = True) -> None:
        """Journal a request's row before the request is acknowledged (see store.journal).

        Every exchange ends here exactly once, so this also ends its time in flight, if it
        had begun (``in_flight``): one refused before its body was in never had.
        """
        self.journal.append(row)
        self.metrics.observe(row)
        if self.config.log.requests:
            log_request(row)
        if in_flight:
            self.in_flight -= 1

    @contextmanager
    def relay_scope(self, deadline: float) -> Iterator[trio.CancelScope]:
        """A cancel scope for one wait on a stream's upstream, cut at ``deadline`` or when
        the drain's grace expires (see :meth:`expire_grace`), whichever comes first.

        Streams take one per wait, not one for their whole life: an async generator must
        not yield inside a cancel scope.
        """
        with trio.CancelScope(deadline=deadline) as scope:
            if self.grace_expired:
                scope.cancel()
            self._relays.add(scope)
            try:
                yield scope
            finally:
                self._relays.discard(scope)

    def expire_grace(self) -> None:
        """The drain's grace is over: open streams end now, each with an error event."""
        self.grace_expired = True
        for scope in self._relays:
            scope.cancel()

    async def drained(self) -> None:
        """Return once no HTTP request is open (every response sent to its last byte)."""
        while self.http_open:
            await self._idle.wait()

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` counting open HTTP requests, for :meth:`drained`."""

        async def counted(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            self.http_open += 1
            try:
                await app(scope, receive, send)
            finally:
                self.http_open -= 1
                if self.http_open == 0:
                    self._idle.set()
                    self._idle = trio.Event()

        return counted

    def _budget_debug(self) -> dict[str, Any]:
        view = self.views.budget.value
        ratios = {
            f"{scope}/{period}": round(r, 4) for (period, scope), r in view.used_ratio.items()
        }
        return vars(view) | {"used_ratio": ratios, "exceeded": view.exceeded}

    def _cluster_debug(self) -> dict[str, Any] | None:
        if self.link is None:
            return None
        fleet = self.fleet_budget.snapshot() if self.fleet_budget else {}
        return self.link.snapshot() | {"budget": fleet}

    def debug(self) -> dict[str, Any]:
        """Everything an operator needs to see inside, and no secret."""
        health = self.views.health.value.backends
        pool = self.views.pool.value.backends
        return {
            "worker": {"id": self.worker, "of": self.config.server.workers, "pid": os.getpid()},
            "uptime_s": round(trio.current_time() - self.started_at, 3),
            "draining": self.draining,
            "in_flight": self.in_flight,
            "connections": self.listener.snapshot(),
            "supervisor": {
                "gave_up": self.supervisor.gave_up,
                "actors": self.supervisor.snapshot(),
            },
            "backends": {
                b.name: {
                    "kind": b.kind,
                    "locality": b.locality,
                    "base_url": redact_url(b.base_url),
                    "key_configured": bool(b.api_key_env and b.api_key()),
                    "health": vars(health[b.name]) if b.name in health else None,
                    "pool": vars(pool[b.name]) if b.name in pool else None,
                }
                for b in self.config.backends
            },
            "budget": self._budget_debug(),
            "cluster": self._cluster_debug(),
            "config": self.reloader.status(),
            "fleet": self.fleet.snapshot() if self.fleet else None,
        }
