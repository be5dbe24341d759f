"""Watch: a versioned latest value with wait_newer."""

from __future__ import annotations

import trio

from llmswitch.runtime.watch import Watch


def test_value_and_version_start_at_initial_and_zero() -> None:
    watch = Watch("initial")
    assert (watch.value, watch.version) == ("initial", 0)


def test_publish_replaces_the_value_and_bumps_the_version() -> None:
    watch = Watch(0)
    watch.publish(10)
    watch.publish(20)
    assert (watch.value, watch.version) == (20, 2)


async def test_wait_newer_wakes_on_publish(autojump_clock: trio.testing.MockClock) -> None:
    watch = Watch("old")
    seen: list[tuple[str, int, float]] = []

    async def waiter() -> None:
        value, version = await watch.wait_newer(0)
        seen.append((value, version, trio.current_time()))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        start = trio.current_time()
        await trio.sleep(5)
        assert seen == []
        watch.publish("new")
    assert seen == [("new", 1, start + 5)]


async def test_wait_newer_returns_at_once_if_already_newer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    watch = Watch("a")
    watch.publish("b")
    watch.publish("c")
    start = trio.current_time()
    assert await watch.wait_newer(0) == ("c", 2)
    assert await watch.wait_newer(1) == ("c", 2)
    assert trio.current_time() == start


async def test_wait_newer_keeps_waiting_until_past_the_given_version(
    autojump_clock: trio.testing.MockClock,
) -> None:
    watch = Watch(0)
    seen: list[tuple[int, int]] = []

    async def waiter() -> None:
        seen.append(await watch.wait_newer(1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        watch.publish(1)  # version 1: not newer than 1
        await trio.sleep(1)
        assert seen == []
        watch.publish(2)
    assert seen == [(2, 2)]
