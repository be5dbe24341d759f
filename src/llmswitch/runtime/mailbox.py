"""Mailboxes: how messages reach an actor.

A mailbox is a bounded trio memory channel that outlives the actor reading it, so a
supervisor can restart the actor without senders ever seeing a closed channel.

Two ways in:

* :meth:`Mailbox.cast` sends an event and waits for room when the mailbox is full
  (backpressure, for events that must not be lost); :meth:`Mailbox.try_cast` drops and
  counts instead (for events that may be lost).
* :meth:`Mailbox.call` sends a :class:`Request` and waits for its reply, raising
  :class:`CallTimeout` rather than hanging when the actor is dead, stuck or restarting,
  and :class:`Overloaded` when it is alive and working through a queue too long to
  wait out. The actor's end, the :class:`Inbox`, counts the messages taken: that count
  moving is what tells a busy actor from a stuck one, under CPU starvation as well.

A reply can be a grant (a lease, a probe permit, a budget reservation) that someone must
give back. The actor passes ``undo`` to :meth:`Reply.set`; if the caller is gone (timed
out or cancelled) the grant is never lost: ``undo`` runs either at once, in the actor,
when the caller left before the reply, or in the caller's task as :meth:`Mailbox.call`
unwinds, when it left after the reply was set but before it was taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import trio

M = TypeVar("M")
R = TypeVar("R")


class CallTimeout(Exception):
    """An actor did not reply in time: it is overloaded, crashed or restarting."""


class Overloaded(CallTimeout):
    """The actor is working, but the queue ahead of this request is longer than the
    caller's patience: shed the request (retry later) rather than wait on."""


class ActorCrashed(Exception):
    """The actor crashed while handling this request; it may be restarting."""


@dataclass(eq=False)
class Reply(Generic[R]):
    """A one-shot reply slot carried inside a request message.

    Exactly one side owns a granted value: the actor until :meth:`set`, the caller once
    :meth:`wait` returned it, and the ``undo`` hook if the caller :meth:`abandon`-ed it.
    """

    _event: trio.Event = field(default_factory=trio.Event)
    _value: R | None = None
    _error: BaseException | None = None
    _undo: Callable[[R], None] | None = None
    _taken: bool = False
    _abandoned: bool = False

    def set(self, value: R, undo: Callable[[R], None] | None = None) -> None:
        """Deliver ``value``; ``undo(value)`` gives it back if the caller never takes it.

        ``undo`` must be synchronous and leave the actor consistent at any of its awaits:
        it runs here when the caller already left, or later in the caller's task.
        """
        if self._abandoned:
            if undo is not None:
                undo(value)
            return
        if not self._event.is_set():
            self._value, self._undo = value, undo
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    def abandon(self) -> None:
        """The caller is gone: undo a value set but not taken, and any value set later."""
        if self._taken or self._abandoned:
            return
        self._abandoned = True
        undo, self._undo = self._undo, None
        if undo is not None:
            undo(self._value)  # type: ignore[arg-type]

    @property
    def done(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> R:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        self._taken = True
        return self._value  # type: ignore[return-value]


@dataclass(eq=False)
class Request(Generic[R]):
    """Base class for messages that expect a reply; subclasses add the payload fields."""

    reply: Reply[R] = field(default_factory=Reply, kw_only=True)


class Inbox(Generic[M]):
    """The actor's end of a mailbox: a receive channel that counts what it hands out."""

    def __init__(self, receive: trio.MemoryReceiveChannel[M]) -> None:
        self._receive = receive
        #: Messages taken so far (by every run of the actor).
        self.taken = 0

    async def receive(self) -> M:
        msg = await self._receive.receive()
        self.taken += 1
        return msg

    def receive_nowait(self) -> M:
        msg = self._receive.receive_nowait()
        self.taken += 1
        return msg

    def __aiter__(self) -> Inbox[M]:
        return self

    async def __anext__(self) -> M:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Mailbox(Generic[M]):
    """A bounded, restart-surviving queue of messages for one actor."""

    def __init__(self, name: str, capacity: int = 256) -> None:
        self.name = name
        self.capacity = capacity
        self._send, receive = trio.open_memory_channel[M](capacity)
        self.inbox = Inbox(receive)
        self.dropped = 0

    @property
    def depth(self) -> int:
        return self._send.statistics().current_buffer_used

    async def cast(self, msg: M) -> None:
        """Send an event that must arrive; waits while the mailbox is full."""
        await self._send.send(msg)

    def try_cast(self, msg: M) -> bool:
        """Send an event that may be lost; returns False (and counts) when full."""
        try:
            self._send.send_nowait(msg)
        except trio.WouldBlock:
            self.dropped += 1
            return False
        return True

    async def call(self, msg: Request[R], timeout: float = 5.0, patience: float = 0.0) -> R:
        """Send a request and wait for its reply.

        The wait ends with :class:`CallTimeout` once the actor has taken no message for
        ``timeout`` seconds (it is dead, stuck or restarting), and with
        :class:`Overloaded` after ``max(timeout, patience)`` seconds in all, however busy
        it is: a starved machine slows every actor down, and a working one is waited for
        that long rather than taken for dead.

        What a cancel or a timeout leaves behind: the request may still sit in the
        mailbox and be handled later, but whatever the actor grants for it is given back
        through the ``undo`` it passed to :meth:`Reply.set` (see the module docstring).
        Once ``call`` has returned, the value is the caller's to give back.
        """
        limit = trio.current_time() + max(timeout, patience)
        sent = False
        try:
            while True:
                taken = self.inbox.taken
                with trio.move_on_at(min(trio.current_time() + timeout, limit)):
                    if not sent:
                        await self._send.send(msg)  # type: ignore[arg-type]
                        sent = True
                    return await msg.reply.wait()
                if self.inbox.taken == taken:
                    raise CallTimeout(f"{self.name} took no message for {timeout:g}s")
                if trio.current_time() >= limit:
                    raise Overloaded(
                        f"{self.name} is overloaded: no reply within {max(timeout, patience):g}s"
                        f" with {self.depth} message(s) queued"
                    )
        finally:
            msg.reply.abandon()
