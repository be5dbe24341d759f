"""Actor: owns its state, reads one mailbox, handles one message at a time.

Subclasses implement :meth:`Actor.handle`; timers and other background work go in
:meth:`Actor.background`, which runs beside the mailbox loop and stops with it. A crash
while handling a :class:`~llmswitch.runtime.mailbox.Request` fails that request's reply
at once, so its caller learns of it without waiting for a timeout.

The loop handles what is already queued (up to :data:`BATCH` messages) before it yields
to the scheduler: taking one message per scheduler pass left an actor behind hundreds of
busy request tasks, and its callers timing out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import trio

from llmswitch.runtime.mailbox import ActorCrashed, Inbox, Request

log = logging.getLogger(__name__)

M = TypeVar("M")

#: Messages handled per scheduler pass at most, so one actor cannot hog the loop.
BATCH = 64


class Actor(Generic[M]):
    name: str = "actor"
    #: How long :meth:`on_stop` may take before it is abandoned.
    stop_timeout_s: float = 10.0

    async def handle(self, msg: M) -> None:
        raise NotImplementedError

    async def background(self, nursery: trio.Nursery) -> None:
        """Start background tasks (timers, probes) in ``nursery``; called before ``started``."""

    async def on_stop(self) -> None:
        """Last words before the actor stops or crashes; runs shielded, so keep it short."""

    def summary(self) -> Mapping[str, Any]:
        """A secret-free summary of the actor's state, for /debug."""
        return {}

    async def run(
        self,
        inbox: Inbox[M],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            async with trio.open_nursery() as nursery:
                await self.background(nursery)
                task_status.started()
                async for msg in inbox:
                    await self._dispatch(msg)
                    for _ in range(BATCH - 1):
                        try:
                            queued = inbox.receive_nowait()
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                        await self._dispatch(queued)
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.relative_deadline = self.stop_timeout_s
                await self.on_stop()
            if scope.cancelled_caught:
                # Said, because what on_stop saves (the ledger's last rows) is then not saved.
                log.error("%s: last words cut after %gs", self.name, self.stop_timeout_s)

    async def _dispatch(self, msg: M) -> None:
        try:
            await self.handle(msg)
        except Exception as exc:
            if isinstance(msg, Request):
                msg.reply.fail(ActorCrashed(f"{self.name} crashed: {exc!r}"))
            raise
