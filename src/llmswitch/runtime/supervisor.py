"""Supervisor: starts actors in order, restarts the ones that crash, stops them in reverse.

Restarts are one_for_one with exponential backoff and jitter. More than
``max_restarts`` crashes of one child within ``window_s`` seconds means restarting is
not helping (runtime/restarts.py): the supervisor gives up, tells its owner through
``on_give_up`` (which shuts the service down gracefully) and leaves that child stopped.
The backoff keeps a floor (half of each ceiling: 0.5, 1, 2, 4, 8 s, so at least 15.5 s
for the default five restarts): a shortage that lasts a few seconds (no file descriptor
left) cannot burn through the restarts in one second.

Each run of a child gets a fresh actor from its factory and a fresh cancel scope, but
keeps its mailbox, so senders never see a closed channel while it restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import trio

from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.restarts import RestartPolicy, gives_up, recent_crashes, restart_delay

log = logging.getLogger(__name__)


class SupervisorGaveUp(Exception):
    """A child crashed more often than the restart intensity allows."""


@dataclass
class ChildSpec:
    name: str
    factory: Callable[[], Actor[Any]]
    mailbox: Mailbox[Any]
    shutdown_timeout_s: float = 5.0


@dataclass(eq=False)
class Child:
    """A supervised child's live record, shown in /debug."""

    spec: ChildSpec
    state: str = "starting"
    restarts: int = 0
    last_error: str | None = None
    started_at: float = 0.0
    actor: Actor[Any] | None = None
    stopping: bool = False
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    done: trio.Event = field(default_factory=trio.Event)
    crashes: tuple[float, ...] = ()

    def snapshot(self) -> dict[str, Any]:
        now = trio.current_time()
        mailbox = self.spec.mailbox
        return {
            "name": self.spec.name,
            "state": self.state,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "uptime_s": round(now - self.started_at, 3) if self.state == "running" else 0.0,
            "mailbox": {
                "depth": mailbox.depth,
                "capacity": mailbox.capacity,
                "dropped": mailbox.dropped,
            },
            "summary": dict(self.actor.summary()) if self.actor else {},
        }


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        policy: RestartPolicy | None = None,
        on_give_up: Callable[[str], None] | None = None,
    ) -> None:
        self.children = [Child(spec) for spec in specs]
        self.policy = policy or RestartPolicy()
        self._on_give_up = on_give_up
        self.gave_up: str | None = None

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.spec.name == name)

    def snapshot(self) -> list[dict[str, Any]]:
        return [c.snapshot() for c in self.children]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every child in order; return once all of them have stopped."""
        async with trio.open_nursery() as nursery:
            for child in self.children:
                await nursery.start(self._supervise, child)
            task_status.started()

    async def stop(self) -> None:
        """Stop children in reverse start order, each within its shutdown timeout."""
        for child in reversed(self.children):
            child.stopping = True
            child.scope.cancel()
            with trio.move_on_after(child.spec.shutdown_timeout_s):
                await child.done.wait()
            if not child.done.is_set():
                log.warning(
                    "actor %s did not stop within %ss",
                    child.spec.name,
                    child.spec.shutdown_timeout_s,
                )

    async def _supervise(
        self, child: Child, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        reported = False
        try:
            while not child.stopping:
                error = await self._run_once(child, task_status if not reported else None)
                reported = reported or child.state == "running"
                if child.stopping:
                    if error != "stopped":
                        # Its last words failed: say so, or what they should have saved is
                        # lost without a trace.
                        log.error("actor %s failed while stopping (%s)", child.spec.name, error)
                    break
                if not self._may_restart(child, error):
                    if not reported:
                        raise SupervisorGaveUp(self.gave_up)
                    return
                child.state = "restarting"
                # in the child's scope, so stop() cuts the backoff short
                child.scope = trio.CancelScope()
                with child.scope:
                    # Recent crashes, not lifetime ones: a quiet window resets the backoff.
                    await trio.sleep(restart_delay(child.crashes, self.policy))
        finally:
            child.state = "failed" if self.gave_up and not child.stopping else "stopped"
            child.done.set()

    async def _run_once(self, child: Child, task_status: trio.TaskStatus[None] | None) -> str:
        """Run one life of the child; return why it ended (it always ends in error or stop)."""
        child.scope = trio.CancelScope()
        if child.stopping:
            return "stopped"
        try:
            child.actor = child.spec.factory()  # a factory that raises is a crash too
            with child.scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(partial(child.actor.run, child.spec.mailbox.inbox))
                    child.state = "running"
                    child.started_at = trio.current_time()
                    if task_status is not None:
                        task_status.started()
        except Exception as exc:
            return _describe(exc)
        return "stopped" if child.stopping else "exited"

    def _may_restart(self, child: Child, error: str) -> bool:
        now = trio.current_time()
        child.last_error = error
        child.crashes = recent_crashes(child.crashes, now, self.policy.window_s)
        if not gives_up(child.crashes, self.policy):
            child.restarts += 1  # counts restarts made, not the crash that ends it
            log.error("actor %s crashed (%s), restart %d", child.spec.name, error, child.restarts)
            return True
        self.gave_up = (
            f"actor {child.spec.name} crashed {len(child.crashes)} times within "
            f"{self.policy.window_s:g}s; last error: {error}"
        )
        log.critical("supervisor gives up: %s", self.gave_up)
        if self._on_give_up is not None:
            self._on_give_up(self.gave_up)
        return False


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
