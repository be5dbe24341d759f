"""Health prober actor: is each backend up?

Probes every backend each ``health.interval_s`` and on demand (``ProbeNow``, cast by a
request that saw a connection error). ``failures_to_down`` consecutive failures mark a
backend down; one success marks it up; a 401 or 403 marks it down at once (reason
"auth": a wrong or missing key does not heal by retrying). Backends start up
(optimistic) so a fresh gateway serves at once, but report ``unknown`` until their
first probe, which runs immediately. Every change between up and down is logged.

In a fleet, each change between up and down found by our probes is told to the peers,
and a peer's counts as our own probe's (:func:`after_peer`) until our next probe.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import trio

from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.cluster.news import Heard, Tell, silent
from llmswitch.config import BackendConfig, Config
from llmswitch.providers.anthropic import API_VERSION as ANTHROPIC_VERSION
from llmswitch.providers.bounded import read_capped
from llmswitch.providers.common import UpstreamOverLimit
from llmswitch.providers.scrub import Scrubber
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import Inbox
from llmswitch.runtime.watch import Watch

log = logging.getLogger(__name__)
#: Probe answers that mean the credentials are wrong, not that the backend is sick.
AUTH_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class BackendHealth:
    up: bool = True
    consecutive_failures: int = 0
    last_latency_ms: float | None = None
    last_error: str | None = None
    checked: bool = False
    #: Down on a peer's word, not our own probes' (see :func:`after_peer`).
    by_peer: bool = False

    @property
    def state(self) -> str:
        """``unknown`` before the first probe, then ``up`` or ``down``."""
        if not self.checked:
            return "unknown"
        return "up" if self.up else "down"


@dataclass(frozen=True)
class HealthView:
    backends: Mapping[str, BackendHealth] = field(default_factory=dict)

    @property
    def down(self) -> frozenset[str]:
        return frozenset(n for n, h in self.backends.items() if not h.up)


def after_probe(
    prev: BackendHealth,
    error: str | None,
    latency_ms: float,
    failures_to_down: int,
    *,
    auth_failed: bool = False,
) -> BackendHealth:
    """The next health of a backend after one probe (``error`` None means success)."""
    if error is None:
        return BackendHealth(up=True, last_latency_ms=latency_ms, checked=True)
    failures = prev.consecutive_failures + 1
    return replace(
        prev,
        up=prev.up and failures < failures_to_down and not auth_failed,
        consecutive_failures=failures,
        last_error=error,
        checked=True,
        by_peer=False,
    )


def after_peer(
    prev: BackendHealth, up: bool, error: str | None, failures_to_down: int
) -> BackendHealth:
    """The health of a backend after a peer's verdict: as if our own probe had said so,
    except that a peer's "up" does not lift a "down" of our own probes (a backend one
    instance reaches and another does not stays down for the second, instead of the two
    telling each other up and down in turn); our next good probe lifts it."""
    if up:
        if not prev.up and not prev.by_peer:
            return prev
        return replace(prev, up=True, consecutive_failures=0, checked=True, by_peer=False)
    return replace(
        prev,
        up=False,
        consecutive_failures=max(prev.consecutive_failures, failures_to_down),
        last_error=f"peer: {error}",
        checked=True,
        by_peer=True,
    )


def probe_paths(backend: BackendConfig) -> list[str]:
    """OpenAI-compatible servers list models at /models; Ollama also answers /api/tags.

    Azure OpenAI (an ``api_version`` backend) lists them beside its deployments, not
    under the deployment a base URL names.
    """
    base = backend.base_url.rstrip("/")
    if backend.api_version:
        base = base.split("/deployments/", 1)[0]
    paths = [f"{base}/models"]
    if backend.kind == "ollama":
        root = base.removesuffix("/v1")
        paths.append(f"{root}/api/tags")
    return paths


def probe_headers(backend: BackendConfig) -> dict[str, str]:
    """Headers a provider wants on every call, the model listing included."""
    return {"anthropic-version": ANTHROPIC_VERSION} if backend.kind == "anthropic" else {}


@dataclass(frozen=True)
class ProbeNow:
    backend: str


HealthMsg = ProbeNow | Reconfigure | Heard


class HealthActor(Actor[HealthMsg]):
    name = "health"

    def __init__(self, config: Config, view: Watch[HealthView], tell: Tell = silent) -> None:
        self._config = config
        self._tell = tell
        self._view = view
        self._health = {
            b.name: view.value.backends.get(b.name, BackendHealth()) for b in config.backends
        }
        self._probes = 0
        self._client: httpx.AsyncClient | None = None
        self._nursery: trio.Nursery | None = None

    async def run(
        self,
        inbox: Inbox[HealthMsg],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        async with httpx.AsyncClient() as client:
            self._client = client
            await super().run(inbox, task_status=task_status)

    async def background(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        nursery.start_soon(self._tick)

    async def handle(self, msg: HealthMsg) -> None:
        assert self._nursery is not None
        if isinstance(msg, Reconfigure):
            self._reconfigure(msg.config)
            msg.reply.set(None)
            return
        if isinstance(msg, Heard):
            self._heard(msg.entry.key, msg.entry.data or {})
            return
        backend = next((b for b in self._config.backends if b.name == msg.backend), None)
        if backend is not None:
            self._nursery.start_soon(self._probe, backend)

    def _heard(self, name: str, verdict: Mapping[str, Any]) -> None:
        prev = self._health.get(name)
        if prev is None:
            return
        up, error = bool(verdict.get("up")), verdict.get("error")
        now = after_peer(prev, up, str(error), self._config.health.failures_to_down)
        self._health[name] = now
        if now.up != prev.up:
            log.warning("backend %s is %s (a peer's probe)", name, "up" if up else "down")
        self._view.publish(HealthView(dict(self._health)))

    def _reconfigure(self, config: Config) -> None:
        """Unchanged backends keep their health; new and changed ones are unknown until
        their probe, which starts now."""
        assert self._nursery is not None
        before = {b.name: b for b in self._config.backends}
        self._config = config
        fresh = [b for b in config.backends if before.get(b.name) != b]
        self._health = {
            b.name: BackendHealth() if b in fresh else self._health[b.name] for b in config.backends
        }
        self._view.publish(HealthView(dict(self._health)))
        for backend in fresh:
            self._nursery.start_soon(self._probe, backend)

    async def _tick(self) -> None:
        while True:
            async with trio.open_nursery() as nursery:
                for backend in self._config.backends:
                    nursery.start_soon(self._probe, backend)
            await trio.sleep(self._config.health.interval_s)

    async def _probe(self, backend: BackendConfig) -> None:
        assert self._client is not None
        started = trio.current_time()
        error: str | None = None
        auth_failed = False
        headers = backend.auth_headers() | probe_headers(backend)
        params = {"api-version": backend.api_version} if backend.api_version else None
        for url in probe_paths(backend):
            try:
                status = await self._get(url, headers, params)
            except httpx.HTTPError as exc:
                name = type(exc).__name__
                error = Scrubber(backend.api_key()).text(f"{name}: {exc}") if str(exc) else name
                break
            if status >= 300:
                auth_failed = status in AUTH_STATUSES
                error = f"HTTP {status} from {url.rsplit('/', 1)[-1]}"
                if auth_failed:
                    error = f"auth: {error}"
                break
        latency_ms = (trio.current_time() - started) * 1000
        self._probes += 1
        if backend not in self._config.backends:
            return  # a reload removed or changed this backend while it was probed
        prev = self._health[backend.name]
        now = self._health[backend.name] = after_probe(
            prev,
            error,
            latency_ms,
            self._config.health.failures_to_down,
            auth_failed=auth_failed,
        )
        if error is not None:
            log.debug("probe of %s failed: %s", backend.name, error)
        if now.up != prev.up:
            if now.up:
                log.warning("backend %s is up again (%.0f ms)", backend.name, latency_ms)
            else:
                log.warning("backend %s is down: %s", backend.name, error)
            self._tell("health", backend.name, {"up": now.up, "error": error})
        self._view.publish(HealthView(dict(self._health)))

    async def _get(self, url: str, headers: dict[str, str], params: Any) -> int:
        """The probe's status; at most ``probe_bytes`` of its body are read (to reuse the
        connection), the rest is left unread: only the status says anything."""
        assert self._client is not None
        timeout = self._config.health.timeout_s
        async with self._client.stream(
            "GET", url, headers=headers, params=params, timeout=timeout
        ) as resp:
            with contextlib.suppress(UpstreamOverLimit):
                await read_capped(resp, self._config.upstream_limits.probe_bytes)
            return resp.status_code

    def summary(self) -> Mapping[str, Any]:
        return {
            "probes": self._probes,
            "backends": {n: vars(h) | {"state": h.state} for n, h in self._health.items()},
        }
