"""Supervisor: ordered start, reverse stop, one_for_one restarts, intensity, give-up."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from llmswitch.runtime.actor import Actor
from llmswitch.runtime.backoff import Backoff
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.restarts import RestartPolicy
from llmswitch.runtime.supervisor import ChildSpec, Supervisor, SupervisorGaveUp

Event = tuple[str, str, float]  # (actor, what, trio time)


class _TopRng(random.Random):
    """Always draws the top of the range: every backoff delay equals its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _policy(max_restarts: int = 5, window_s: float = 60.0, base_s: float = 1.0) -> RestartPolicy:
    """Backoff delays are exactly base_s, 2*base_s, 4*base_s ... capped at 8*base_s."""
    backoff = Backoff(base_s=base_s, cap_s=8 * base_s, rng=_TopRng())
    return RestartPolicy(max_restarts=max_restarts, window_s=window_s, backoff=backoff)


class Worker(Actor[Any]):
    """Logs its life; the message "crash" makes it raise, "hang" blocks it forever."""

    def __init__(self, name: str, generation: int, log: list[Event], opts: Factory) -> None:
        self.name = name
        self.generation = generation
        self.log = log
        self.opts = opts
        self.handled: list[Any] = []

    def _note(self, what: str) -> None:
        self.log.append((self.name, what, trio.current_time()))

    async def background(self, nursery: trio.Nursery) -> None:
        self._note("starting")
        await trio.sleep(self.opts.startup_s)
        if self.generation <= self.opts.fail_starts:
            raise OSError(f"{self.name} cannot open its database")
        if self.opts.crash_on_start:
            nursery.start_soon(self._crash)
        self._note("started")

    async def _crash(self) -> None:
        raise RuntimeError(f"{self.name} boom")

    async def handle(self, msg: Any) -> None:
        if msg == "crash":
            await self._crash()
        if msg == "hang":
            await trio.sleep_forever()
        self.handled.append(msg)

    async def on_stop(self) -> None:
        await trio.sleep(self.opts.stop_s)  # needs the shield: the actor is being cancelled
        if self.opts.stop_fails:
            raise RuntimeError(f"{self.name} cannot flush")
        self.opts.flushed.extend(self.handled)
        self._note("stopped")

    def summary(self) -> dict[str, Any]:
        return {"generation": self.generation, "handled": len(self.handled)}


@dataclass
class Factory:
    """Makes a fresh Worker per run of the child and remembers every instance."""

    name: str
    log: list[Event] = field(default_factory=list)
    startup_s: float = 0.0
    stop_s: float = 0.0
    fail_starts: int = 0  # the first N generations raise before started
    crash_on_start: bool = False  # every generation crashes right after started
    stop_fails: bool = False  # on_stop raises
    factory_fails_on: tuple[int, ...] = ()  # generations whose construction raises
    made: list[Worker] = field(default_factory=list)
    created_at: list[float] = field(default_factory=list)
    flushed: list[Any] = field(default_factory=list)
    calls: int = 0

    def __call__(self) -> Worker:
        self.calls += 1
        self.created_at.append(trio.current_time())
        if self.calls in self.factory_fails_on:
            raise LookupError(f"{self.name}: no config")
        worker = Worker(self.name, self.calls, self.log, self)
        self.made.append(worker)
        return worker

    def spec(self, capacity: int = 8) -> ChildSpec:
        return ChildSpec(self.name, self, Mailbox(self.name, capacity))


@asynccontextmanager
async def running(supervisor: Supervisor) -> AsyncIterator[trio.Nursery]:
    """Run the supervisor until the block ends, then stop it; fail rather than hang."""
    with trio.fail_after(3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            yield nursery
            await supervisor.stop()


def _since(t0: float, log: list[Event]) -> list[Event]:
    return [(name, what, t - t0) for name, what, t in log]


async def test_children_start_in_order_each_after_the_previous_started(
    autojump_clock: MockClock,
) -> None:
    log: list[Event] = []
    factories = [Factory(n, log, startup_s=1.0) for n in ("a", "b", "c")]
    supervisor = Supervisor([f.spec() for f in factories], _policy())
    t0 = trio.current_time()
    async with running(supervisor):
        assert trio.current_time() - t0 == 3.0  # run() reports started after the last child
        assert _since(t0, log) == [
            ("a", "starting", 0.0),
            ("a", "started", 1.0),
            ("b", "starting", 1.0),
            ("b", "started", 2.0),
            ("c", "starting", 2.0),
            ("c", "started", 3.0),
        ]
        assert [c["state"] for c in supervisor.snapshot()] == ["running"] * 3


async def test_stop_stops_children_in_reverse_order_one_at_a_time(
    autojump_clock: MockClock,
) -> None:
    log: list[Event] = []
    factories = [Factory(n, log, stop_s=1.0) for n in ("a", "b", "c")]
    supervisor = Supervisor([f.spec() for f in factories], _policy())
    async with running(supervisor):
        log.clear()
        t0 = trio.current_time()
        await supervisor.stop()
        assert _since(t0, log) == [
            ("c", "stopped", 1.0),
            ("b", "stopped", 2.0),
            ("a", "stopped", 3.0),
        ]
        assert [c["state"] for c in supervisor.snapshot()] == ["stopped"] * 3


async def test_crashed_child_restarts_with_a_fresh_actor_on_the_same_mailbox(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("w")
    spec = factory.spec()
    mailbox = spec.mailbox
    supervisor = Supervisor([spec], _policy(base_s=1.0))
    async with running(supervisor):
        child = supervisor.child("w")
        await mailbox.cast("one")
        await mailbox.cast("crash")
        await trio.sleep(0.5)
        assert child.state == "restarting"
        await mailbox.cast("sent during the restart")  # the mailbox never closed
        await mailbox.cast("two")
        await trio.sleep(1.0)
        first, second = factory.made
        assert child.actor is second
        assert child.spec.mailbox is mailbox
        assert first.handled == ["one"]
        assert second.handled == ["sent during the restart", "two"]


async def test_snapshot_shows_restarts_last_error_uptime_and_mailbox(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("w")
    supervisor = Supervisor([factory.spec(capacity=8)], _policy(base_s=1.0))
    async with running(supervisor):
        mailbox = supervisor.child("w").spec.mailbox
        await mailbox.cast("crash")
        await trio.sleep(1.0)  # the 1 s backoff: the second actor is up now
        await mailbox.cast("hang")  # keeps it busy, so the next message stays queued
        await trio.sleep(3.0)
        assert mailbox.try_cast("queued")
        assert supervisor.snapshot() == [
            {
                "name": "w",
                "state": "running",
                "restarts": 1,
                "last_error": "RuntimeError: w boom",
                "uptime_s": 3.0,
                "mailbox": {"depth": 1, "capacity": 8, "dropped": 0},
                "summary": {"generation": 2, "handled": 0},
            }
        ]


async def test_restarts_wait_for_the_exponential_backoff(autojump_clock: MockClock) -> None:
    factory = Factory("w", crash_on_start=True)
    supervisor = Supervisor([factory.spec()], _policy(max_restarts=10, window_s=100, base_s=1))
    t0 = trio.current_time()
    async with running(supervisor):
        await trio.sleep(15.5)
        # delays 1, 2, 4, 8 s (top of the jitter range)
        assert [t - t0 for t in factory.created_at] == [0.0, 1.0, 3.0, 7.0, 15.0]
        child = supervisor.child("w")
        assert (child.state, child.restarts) == ("restarting", 5)


async def test_stop_during_a_restart_backoff_does_not_wait_it_out(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("w")
    supervisor = Supervisor([factory.spec()], _policy(base_s=60.0))
    async with running(supervisor):
        await supervisor.child("w").spec.mailbox.cast("crash")
        await trio.sleep(1.0)
        assert supervisor.child("w").state == "restarting"
        t0 = trio.current_time()
        await supervisor.stop()
        assert trio.current_time() == t0
        assert supervisor.child("w").state == "stopped"
    assert trio.current_time() == t0  # run() returned without sleeping out the backoff
    assert factory.calls == 1


async def test_too_many_crashes_within_the_window_give_up_once(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("flaky", crash_on_start=True)
    reasons: list[tuple[str, float]] = []
    supervisor = Supervisor(
        [factory.spec()],
        _policy(max_restarts=2, window_s=60.0, base_s=1.0),
        on_give_up=lambda why: reasons.append((why, trio.current_time())),
    )
    t0 = trio.current_time()
    with trio.fail_after(3600):
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
    # run() returned on its own: the only child gave up after crashes at t0, t0+1, t0+3
    why = "actor flaky crashed 3 times within 60s; last error: RuntimeError: flaky boom"
    assert reasons == [(why, t0 + 3.0)]
    assert supervisor.gave_up == why
    assert factory.calls == 3
    child = supervisor.child("flaky")
    assert (child.state, child.restarts) == ("failed", 2)


async def test_exactly_max_restarts_within_the_window_are_tolerated(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("w")
    reasons: list[str] = []
    supervisor = Supervisor([factory.spec()], _policy(max_restarts=2), on_give_up=reasons.append)
    async with running(supervisor):
        mailbox = supervisor.child("w").spec.mailbox
        for _ in range(2):
            await mailbox.cast("crash")
            await trio.sleep(5)
        assert (supervisor.child("w").state, reasons) == ("running", [])
        await mailbox.cast("crash")
        await trio.sleep(5)
        assert supervisor.child("w").state == "failed"
        assert len(reasons) == 1
        assert reasons[0].startswith("actor w crashed 3 times within 60s")


async def test_crashes_spread_wider_than_the_window_never_give_up(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("w")
    reasons: list[str] = []
    supervisor = Supervisor(
        [factory.spec()], _policy(max_restarts=1, window_s=5.0), on_give_up=reasons.append
    )
    async with running(supervisor):
        mailbox = supervisor.child("w").spec.mailbox
        for _ in range(6):
            await mailbox.cast("crash")
            await trio.sleep(20)
        child = supervisor.child("w")
        assert (child.state, child.restarts, len(factory.made)) == ("running", 6, 7)
        assert reasons == []
        assert supervisor.gave_up is None


async def test_stop_runs_on_stop_shielded_so_a_cancelled_actor_finishes_its_flush(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("ledger", stop_s=2.0)
    supervisor = Supervisor([factory.spec()], _policy())
    async with running(supervisor):
        mailbox = supervisor.child("ledger").spec.mailbox
        for msg in (1, 2, 3, "hang"):
            await mailbox.cast(msg)
        await trio.sleep(1)  # the actor is now stuck handling "hang"
        t0 = trio.current_time()
        await supervisor.stop()
        assert trio.current_time() - t0 == 2.0
        assert factory.flushed == [1, 2, 3]
        assert supervisor.child("ledger").state == "stopped"


async def test_last_words_that_fail_or_overrun_are_said(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    slow = Factory("slow", stop_s=60.0)  # past Actor.stop_timeout_s
    broken = Factory("broken", stop_fails=True)
    supervisor = Supervisor([slow.spec(), broken.spec()], _policy())
    async with running(supervisor):
        await trio.sleep(1)
    assert f"slow: last words cut after {Worker.stop_timeout_s:g}s" in caplog.text
    assert "actor broken failed while stopping (RuntimeError: broken cannot flush)" in caplog.text
    assert [c.state for c in supervisor.children] == ["stopped", "stopped"]


async def test_child_failing_to_start_beyond_the_intensity_makes_run_raise(
    autojump_clock: MockClock,
) -> None:
    log: list[Event] = []
    first, db, last = Factory("a", log), Factory("db", log, fail_starts=99), Factory("c", log)
    reasons: list[str] = []
    supervisor = Supervisor(
        [first.spec(), db.spec(), last.spec()],
        _policy(max_restarts=2, base_s=1.0),
        on_give_up=reasons.append,
    )
    t0 = trio.current_time()
    with pytest.RaisesGroup(pytest.RaisesExc(SupervisorGaveUp, match=r"^actor db crashed 3 times")):
        await supervisor.run()
    assert trio.current_time() - t0 == 3.0  # tried at t0, t0+1, t0+3
    assert db.calls == 3
    assert last.calls == 0  # never started past the failing child
    assert reasons == [
        "actor db crashed 3 times within 60s; last error: OSError: db cannot open its database"
    ]
    assert ("a", "stopped", t0 + 3.0) in log  # the started sibling was stopped
    assert supervisor.child("db").state == "failed"


async def test_child_failing_to_start_within_the_intensity_starts_then_the_next_child(
    autojump_clock: MockClock,
) -> None:
    log: list[Event] = []
    db, last = Factory("db", log, fail_starts=2), Factory("c", log)
    supervisor = Supervisor([db.spec(), last.spec()], _policy(max_restarts=2, base_s=1.0))
    t0 = trio.current_time()
    async with running(supervisor):
        assert trio.current_time() - t0 == 3.0
        assert [e for e in _since(t0, log) if e[1] == "started"] == [
            ("db", "started", 3.0),
            ("c", "started", 3.0),
        ]
        snap = supervisor.child("db").snapshot()
        assert (snap["state"], snap["restarts"]) == ("running", 2)
        assert snap["last_error"] == "OSError: db cannot open its database"


async def test_a_factory_that_raises_on_restart_counts_as_a_crash(
    autojump_clock: MockClock,
) -> None:
    factory = Factory("w", factory_fails_on=(2,))
    supervisor = Supervisor([factory.spec()], _policy(base_s=1.0))
    async with running(supervisor):
        await supervisor.child("w").spec.mailbox.cast("crash")
        await trio.sleep(10)
        child = supervisor.child("w")
        assert factory.calls == 3
        assert (child.state, child.restarts) == ("running", 2)
        assert child.last_error == "LookupError: w: no config"
        assert child.actor is factory.made[-1]


async def test_the_default_restarts_cannot_be_used_up_within_fifteen_seconds(
    autojump_clock: MockClock,
) -> None:
    # Every generation fails to start, as an actor that cannot open its file would.
    doomed = Factory("doomed", fail_starts=99)
    supervisor = Supervisor([doomed.spec()])
    t0 = trio.current_time()
    with pytest.RaisesGroup(pytest.RaisesExc(SupervisorGaveUp)):
        await supervisor.run()
    assert doomed.calls == 6
    assert doomed.created_at[-1] - t0 >= 15.5
