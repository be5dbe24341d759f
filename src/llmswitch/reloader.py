"""Live reload: re-read the config file, check it, and swap it in while serving.

SIGHUP, ``POST /admin/reload`` and ``llmswitch reload`` all end in :meth:`Reloader.reload`.
A config that does not load, or that the running state cannot take (a stored rule routing
to a model the file removes, an exposed bind), is refused with the reason and the old one
keeps serving. Otherwise, in one step with no await, the gateway publishes the new config
(front end, access checks, actor factories) and the backends' clients are swapped; then
each actor gets a :class:`~llmswitch.actors.reconfigure.Reconfigure` through its mailbox,
in start order, and keeps the state of what did not change.

Requests in flight keep what they already hold: their routing decision, their budget
hold, their lease and the upstream client it covers. A client replaced or removed by a
reload is closed once no lease on its backend is out (:meth:`Reloader.run`).

In a fleet, a reload that applied a change is told to the peers, and each reloads its
own file in turn (:meth:`Reloader.heard`) without telling again.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from typing import TYPE_CHECKING, Any

import trio

from llmswitch.actors.keys import ListKeys, keyring
from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.actors.router import GetSettings
from llmswitch.cluster.news import Entry, Tell, silent
from llmswitch.confdiff import ConfigDiff, applicable, diff
from llmswitch.config import Config, ConfigError, load_config
from llmswitch.front.access import bind_refusal
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Mailbox

if TYPE_CHECKING:
    from llmswitch.gateway import Gateway

log = logging.getLogger(__name__)

#: How long one actor may take to adopt a new config before the reload goes on without
#: its word (it still adopts it from its mailbox, or from the factory if it restarts).
ADOPT_TIMEOUT_S = 5.0


class ReloadRefused(Exception):
    """The new config was not applied; the message (one line) says why."""


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Reloader:
    """The config generation in force, and how the last reload went (for /debug)."""

    def __init__(self, gw: Gateway, path: str | None) -> None:
        self._gw = gw
        self._path = path
        self._lock = trio.Lock()
        self.generation = 1
        self.loaded_at = time.time()
        self.last_reload: dict[str, Any] | None = None
        self.last_refusal: dict[str, Any] | None = None
        self.tell: Tell = silent
        # A peer's reload asks for ours; one waiting is enough, however many peers ask.
        self._peer_send, self._peer_recv = trio.open_memory_channel[Entry](1)

    def status(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "generation": self.generation,
            "loaded_at": stamp(self.loaded_at),
            "last_reload": self.last_reload,
            "last_refusal": self.last_refusal,
        }

    def public_status(self) -> dict[str, Any]:
        """For /health, which anyone may read: when, not what (the reasons are in /debug)."""
        refusal = self.last_refusal
        return {
            "generation": self.generation,
            "loaded_at": stamp(self.loaded_at),
            "last_refusal_at": refusal["at"] if refusal else None,
        }

    def heard(self, entry: Entry) -> bool:
        """A peer reloaded its config: reload ours soon (from our own file). One reload
        waiting already covers this one too, so the entry always counts as taken."""
        with contextlib.suppress(trio.WouldBlock):
            self._peer_send.send_nowait(entry)
        return True

    async def reload(self, *, spread: bool = True) -> ConfigDiff:
        """Read, check and apply the config file; ReloadRefused leaves the old one serving.

        Reloads run one at a time, so two SIGHUPs never interleave their swaps. One that
        applied a change is told to the fleet unless ``spread`` is false (a peer's).
        """
        async with self._lock:
            old = self._gw.config
            try:
                new = await self._read()
                config = applicable(old, new)
                await self._check(config)
            except ReloadRefused as exc:
                self.last_refusal = {"at": stamp(time.time()), "reason": str(exc)}
                log.warning("reload refused, the running config stays: %s", exc)
                raise
            change = diff(old, new)
            if change.applied:
                await self._swap(config)
                self.generation += 1
                self.loaded_at = time.time()
                if spread:
                    self.tell("reload", "config", {"generation": self.generation})
            self.last_reload = {
                "at": stamp(time.time()),
                "generation": self.generation,
                "applied": list(change.applied),
                "needs_restart": list(change.needs_restart),
            }
            log.info(
                "config reloaded (generation %d): %s%s",
                self.generation,
                ", ".join(change.applied) or "no change",
                f"; needs a restart: {', '.join(change.needs_restart)}"
                if change.needs_restart
                else "",
            )
            return change

    async def _read(self) -> Config:
        if self._path is None:
            raise ReloadRefused("the gateway was not started from a config file")
        try:
            return await trio.to_thread.run_sync(load_config, self._path)
        except ConfigError as exc:
            raise ReloadRefused(one_line(str(exc))) from None

    async def _check(self, config: Config) -> None:
        """What the file alone cannot tell: the run-time keys and rules still fit it."""
        gw = self._gw
        try:
            stored = await gw.keys_box.call(ListKeys(), timeout=ADOPT_TIMEOUT_S)
            settings = await gw.router.call(GetSettings(), timeout=ADOPT_TIMEOUT_S)
        except (CallTimeout, ActorCrashed) as exc:
            raise ReloadRefused(f"cannot check the run-time keys and rules now ({exc})") from None
        names = {"auto"} | {n for m in config.models for n in (m.id, *m.aliases)}
        for rule in settings.rules:
            if rule.name in settings.stored_rules and rule.target and rule.target not in names:
                raise ReloadRefused(
                    f"rule {rule.name} (stored at run time) routes to {rule.target!r}, "
                    "which this config does not have"
                )
        for key in stored:
            problem = config.key_policy_problem(key.policy)
            if problem is not None:
                raise ReloadRefused(f"client key {key.name} (stored at run time): {problem}")
        refusal = bind_refusal(config, keyring(config, stored))
        if refusal is not None:
            raise ReloadRefused(refusal)

    async def _swap(self, config: Config) -> None:
        gw = self._gw
        gw.adopt(config)
        gw.clients.swap(config.backends)
        # Start order: the router, last, routes to backends the pool already knows.
        boxes: tuple[Mailbox[Any], ...] = (
            gw.ledger,
            gw.keys_box,
            gw.health,
            gw.limits,
            gw.pool,
            gw.classifier,
            gw.router,
        )
        for box in boxes:
            try:
                await box.call(Reconfigure(config), timeout=ADOPT_TIMEOUT_S)
            except (CallTimeout, ActorCrashed) as exc:
                log.warning("reload: %s has not adopted the new config yet (%s)", box.name, exc)
        await self._close_idle_clients()

    async def _close_idle_clients(self) -> None:
        gw = self._gw
        in_flight = {name: s.in_flight for name, s in gw.views.pool.value.backends.items()}
        await gw.clients.close_idle(in_flight)

    async def run(
        self,
        *,
        handle_signals: bool,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Reload on SIGHUP (``handle_signals``), and close retired clients as their
        backends' last leases end."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._retire)
            nursery.start_soon(self._follow_peers)
            if handle_signals:
                await nursery.start(self._on_sighup)
            task_status.started()

    async def _on_sighup(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                await self.reload_unasked("SIGHUP")

    async def reload_unasked(self, why: str) -> None:
        """Reload on an order no one waits to hear back from (SIGHUP, a worker's parent)."""
        log.info("%s: reloading %s", why, self._path)
        with contextlib.suppress(ReloadRefused):  # logged, and shown in /debug
            await self.reload()

    async def _follow_peers(self) -> None:
        async for _ in self._peer_recv:
            log.info("a peer reloaded its config: reloading %s", self._path)
            with contextlib.suppress(ReloadRefused):  # logged, and shown in /debug
                await self.reload(spread=False)

    async def _retire(self) -> None:
        pool = self._gw.views.pool
        version = pool.version
        while True:
            _, version = await pool.wait_newer(version)
            if self._gw.clients.retired:
                await self._close_idle_clients()
