"""Mailbox: call/cast/try_cast, backpressure, timeouts and crash replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio

from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Mailbox, Overloaded, Request


@dataclass(eq=False)
class Shout(Request[str]):
    text: str


class Shouter(Actor[Shout]):
    name = "shouter"

    async def handle(self, msg: Shout) -> None:
        if msg.text == "boom":
            raise ValueError("cannot shout boom")
        msg.reply.set(msg.text.upper())


async def _run_until_crash(
    actor: Actor[Shout],
    mailbox: Mailbox[Shout],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with pytest.RaisesGroup(ValueError):
        await actor.run(mailbox.inbox, task_status=task_status)


async def test_call_returns_the_actors_reply(autojump_clock: trio.testing.MockClock) -> None:
    mailbox = Mailbox[Shout]("shouter", capacity=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(Shouter().run, mailbox.inbox)
        assert await mailbox.call(Shout("hi"), timeout=1.0) == "HI"
        assert await mailbox.call(Shout("again"), timeout=1.0) == "AGAIN"
        nursery.cancel_scope.cancel()


async def test_call_times_out_when_nobody_answers(autojump_clock: trio.testing.MockClock) -> None:
    mailbox = Mailbox[Shout]("nobody", capacity=4)
    start = trio.current_time()
    with pytest.raises(CallTimeout, match=r"nobody took no message for 2s"):
        await mailbox.call(Shout("hello?"), timeout=2.0)
    assert trio.current_time() - start == pytest.approx(2.0)
    assert mailbox.depth == 1  # the request was delivered; only the reply never came


async def test_call_times_out_when_the_mailbox_is_full(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Shout]("full", capacity=1)
    assert mailbox.try_cast(Shout("filler"))
    start = trio.current_time()
    with pytest.raises(CallTimeout):
        await mailbox.call(Shout("late"), timeout=0.5)
    assert trio.current_time() - start == pytest.approx(0.5)
    assert mailbox.depth == 1  # the timed-out request was never enqueued
    assert mailbox.inbox.receive_nowait().text == "filler"


async def test_cast_blocks_while_full_and_completes_once_the_actor_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[int]("ledger", capacity=1)
    await mailbox.cast(1)
    delivered = trio.Event()

    async def cast_second() -> None:
        await mailbox.cast(2)
        delivered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cast_second)
        await trio.sleep(60)
        assert not delivered.is_set()
        assert mailbox.depth == 1
        assert mailbox.inbox.receive_nowait() == 1
        await delivered.wait()
    assert mailbox.inbox.receive_nowait() == 2
    assert mailbox.dropped == 0


def test_try_cast_drops_and_counts_when_full() -> None:
    mailbox = Mailbox[int]("metrics", capacity=2)
    assert [mailbox.try_cast(i) for i in range(5)] == [True, True, False, False, False]
    assert mailbox.dropped == 3
    assert mailbox.depth == 2
    assert mailbox.capacity == 2
    assert [mailbox.inbox.receive_nowait() for _ in range(2)] == [0, 1]


def test_depth_and_capacity_are_reported() -> None:
    mailbox = Mailbox[int]("m", capacity=3)
    assert (mailbox.depth, mailbox.capacity, mailbox.dropped) == (0, 3, 0)
    mailbox.try_cast(1)
    mailbox.try_cast(2)
    assert mailbox.depth == 2
    mailbox.inbox.receive_nowait()
    assert mailbox.depth == 1


async def test_request_whose_handler_raises_gets_actor_crashed_before_its_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Shout]("shouter", capacity=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(_run_until_crash, Shouter(), mailbox)
        start = trio.current_time()
        with pytest.raises(
            ActorCrashed, match=r"shouter crashed: ValueError\('cannot shout boom'\)"
        ):
            await mailbox.call(Shout("boom"), timeout=30.0)
        assert trio.current_time() == start


# -- What a cancel leaves behind: a grant the caller never took is undone -----------------


@dataclass(eq=False)
class Borrow(Request[str]):
    """A request whose reply is something that must be given back."""


@asynccontextmanager
async def _waiting_caller(
    mailbox: Mailbox[Borrow],
) -> AsyncIterator[tuple[Borrow, trio.CancelScope]]:
    """A caller blocked in ``call`` with its request queued; cancel the scope to make it leave."""
    msg, scope = Borrow(), trio.CancelScope()

    async def caller() -> None:
        with scope:
            await mailbox.call(msg, timeout=10.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        yield msg, scope


async def test_a_grant_made_after_the_caller_was_cancelled_is_undone_by_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Borrow]("lender", capacity=4)
    undone: list[str] = []
    async with _waiting_caller(mailbox) as (msg, scope):
        scope.cancel()  # the caller leaves while its request still waits in the mailbox
    assert mailbox.inbox.receive_nowait() is msg
    msg.reply.set("lease-1", undo=undone.append)
    assert undone == ["lease-1"]


async def test_a_grant_made_after_the_call_timed_out_is_undone_by_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Borrow]("lender", capacity=4)
    msg, undone = Borrow(), list[str]()
    with pytest.raises(CallTimeout):
        await mailbox.call(msg, timeout=1.0)
    mailbox.inbox.receive_nowait().reply.set("lease-2", undo=undone.append)
    assert undone == ["lease-2"]


async def test_a_grant_set_as_the_caller_is_cancelled_is_undone_as_the_call_unwinds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Borrow]("lender", capacity=4)
    undone: list[str] = []
    async with _waiting_caller(mailbox) as (msg, scope):
        assert mailbox.inbox.receive_nowait() is msg
        # The race: with no checkpoint between them, the cancel reaches the caller first
        # and the reply is set before the caller runs again; it never takes the value.
        scope.cancel()
        msg.reply.set("lease-3", undo=undone.append)
        assert undone == []  # not yet: the caller has not unwound
    assert scope.cancelled_caught
    assert undone == ["lease-3"]


async def test_a_grant_the_caller_took_is_never_undone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Borrow]("lender", capacity=4)
    undone: list[str] = []

    class Lender(Actor[Borrow]):
        async def handle(self, msg: Borrow) -> None:
            msg.reply.set("lease-4", undo=undone.append)

    async with trio.open_nursery() as nursery:
        await nursery.start(Lender().run, mailbox.inbox)
        assert await mailbox.call(Borrow(), timeout=1.0) == "lease-4"
        nursery.cancel_scope.cancel()
    assert undone == []


async def test_the_actor_handles_a_queued_burst_without_yielding_per_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Shout]("shouter", capacity=8)
    replies = [Shout(str(i)) for i in range(5)]
    for msg in replies:
        assert mailbox.try_cast(msg)
    async with trio.open_nursery() as nursery:
        await nursery.start(Shouter().run, mailbox.inbox)
        await trio.lowlevel.checkpoint()  # one scheduler pass for the actor
        assert all(msg.reply.done for msg in replies)
        nursery.cancel_scope.cancel()


class Plodder(Actor[Shout]):
    """Takes a second per message, or for ever for "stuck"."""

    name = "plodder"

    async def handle(self, msg: Shout) -> None:
        await trio.sleep(float("inf") if msg.text == "stuck" else 1.0)
        msg.reply.set(msg.text)


async def test_a_working_actor_is_waited_for_up_to_the_patience(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A starved machine: every message takes 1 s, and five are queued ahead of ours.
    mailbox = Mailbox[Shout]("plodder", capacity=64)
    async with trio.open_nursery() as nursery:
        await nursery.start(Plodder().run, mailbox.inbox)
        for n in range(5):
            await mailbox.cast(Shout(f"ahead-{n}"))
        start = trio.current_time()
        assert await mailbox.call(Shout("mine"), timeout=2.0, patience=10.0) == "mine"
        assert trio.current_time() - start == pytest.approx(6.0)  # past the 2 s timeout
        for n in range(20):
            await mailbox.cast(Shout(f"ahead-{n}"))
        start = trio.current_time()
        with pytest.raises(Overloaded, match=r"plodder is overloaded: no reply within 10s"):
            await mailbox.call(Shout("mine"), timeout=2.0, patience=10.0)
        assert trio.current_time() - start == pytest.approx(10.0)
        nursery.cancel_scope.cancel()


async def test_an_actor_that_takes_nothing_is_given_up_on_after_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox = Mailbox[Shout]("plodder", capacity=64)
    async with trio.open_nursery() as nursery:
        await nursery.start(Plodder().run, mailbox.inbox)
        await mailbox.cast(Shout("stuck"))
        await trio.testing.wait_all_tasks_blocked()  # it has taken "stuck" and hangs there
        start = trio.current_time()
        with pytest.raises(CallTimeout, match=r"plodder took no message for 2s") as err:
            await mailbox.call(Shout("mine"), timeout=2.0, patience=10.0)
        assert not isinstance(err.value, Overloaded)
        assert trio.current_time() - start == pytest.approx(2.0)
        nursery.cancel_scope.cancel()
