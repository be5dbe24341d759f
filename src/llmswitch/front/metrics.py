"""Prometheus metrics: counters fed by ledger rows, gauges read from the views at scrape.

It reads the gateway's state only through what the actors publish (their views and the
supervisor's children), never the gateway itself, so the gateway can own a Metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmswitch.actors.router import Views
from llmswitch.runtime.supervisor import Supervisor
from llmswitch.store.request_log import RequestRow

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _StateCollector(Collector):
    def __init__(
        self,
        views: Views,
        supervisor: Supervisor,
        in_flight: Callable[[], int],
        store_up: Callable[[], bool],
    ) -> None:
        self._views = views
        self._supervisor = supervisor
        self._in_flight = in_flight
        self._store_up = store_up

    def collect(self) -> Iterator[Metric]:
        views = self._views
        in_flight = GaugeMetricFamily("llmswitch_in_flight", "Requests being served now")
        in_flight.add_metric([], self._in_flight())
        yield in_flight
        store = GaugeMetricFamily(
            "llmswitch_store_up",
            "1 if the ledger's last flush reached the store (0: rows wait in the journal)",
        )
        store.add_metric([], 1.0 if self._store_up() else 0.0)
        yield store
        restarts = GaugeMetricFamily(
            "llmswitch_actor_restarts", "Restarts of each actor since start", labels=["actor"]
        )
        depth = GaugeMetricFamily(
            "llmswitch_mailbox_depth", "Messages waiting in each actor's mailbox", labels=["actor"]
        )
        for child in self._supervisor.children:
            restarts.add_metric([child.spec.name], child.restarts)
            depth.add_metric([child.spec.name], child.spec.mailbox.depth)
        yield restarts
        yield depth
        up = GaugeMetricFamily("llmswitch_backend_up", "1 if the backend is up", labels=["backend"])
        for name, h in views.health.value.backends.items():
            up.add_metric([name], 1.0 if h.up else 0.0)
        yield up
        breaker = GaugeMetricFamily(
            "llmswitch_breaker_open", "1 if the backend's circuit is open", labels=["backend"]
        )
        for name, s in views.pool.value.backends.items():
            breaker.add_metric([name], 1.0 if s.breaker == "open" else 0.0)
        yield breaker
        budget = views.budget.value
        spent = GaugeMetricFamily(
            "llmswitch_spend_usd", "Spend in the current period", labels=["period"]
        )
        spent.add_metric(["day"], budget.spent_day_usd)
        spent.add_metric(["week"], budget.spent_week_usd)
        spent.add_metric(["month"], budget.spent_month_usd)
        yield spent
        used = GaugeMetricFamily(
            "llmswitch_budget_used_ratio",
            "Share of each budget spent in its current period (1 = spent)",
            labels=["period", "scope"],
        )
        for (period, scope), ratio in sorted(budget.used_ratio.items()):
            used.add_metric([period, scope], ratio)
        yield used


class Metrics:
    def __init__(
        self,
        views: Views,
        supervisor: Supervisor,
        in_flight: Callable[[], int],
        store_up: Callable[[], bool],
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llmswitch_requests",
            "Requests by model and status",
            ["model", "backend", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "llmswitch_request_seconds",
            "Whole-request latency",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "llmswitch_first_byte_seconds",
            "Time to the upstream's first byte",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llmswitch_tokens", "Tokens by model and direction", ["model", "direction"], registry=r
        )
        self.cost = Counter("llmswitch_cost_usd", "Spend by model", ["model"], registry=r)
        r.register(_StateCollector(views, supervisor, in_flight, store_up))

    def observe(self, row: RequestRow) -> None:
        model = row.chosen_model or "none"
        self.requests.labels(model, row.backend or "none", str(row.status)).inc()
        if row.latency_ms is not None:
            self.latency.labels(model).observe(row.latency_ms / 1000)
        if row.ttfb_ms is not None:
            self.ttfb.labels(model).observe(row.ttfb_ms / 1000)
        if row.tokens_in:
            self.tokens.labels(model, "in").inc(row.tokens_in)
        if row.tokens_out:
            self.tokens.labels(model, "out").inc(row.tokens_out)
        if row.cost_usd:
            self.cost.labels(model).inc(row.cost_usd)

    def render(self) -> bytes:
        return generate_latest(self.registry)
