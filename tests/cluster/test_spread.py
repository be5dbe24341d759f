"""The fleet's shell against a real Redis: what one instance tells, the others hear once,
newest last; what was told while Redis was away arrives when it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from llmswitch.cluster.link import Link
from llmswitch.cluster.news import Entry
from llmswitch.cluster.spread import Fleet
from tests.cluster.redis_server import SYSTEM_REDIS, own_prefix, redis_server
from tests.e2e.harness import start_stack
from tests.e2e.test_affinity import CODE, SIMPLE, Conversation
from tests.e2e.test_reload import edit


@asynccontextmanager
async def member(
    nursery: trio.Nursery, url: str, prefix: str
) -> AsyncIterator[tuple[Fleet, list[Entry]]]:
    """A fleet member whose every topic's sink appends to the list it yields."""
    heard: list[Entry] = []
    link = Link(url, prefix)
    fleet = Fleet(link)

    def sink(entry: Entry) -> bool:
        heard.append(entry)
        return True

    fleet.sinks = dict.fromkeys(("key", "setting", "breaker"), sink)
    await nursery.start(link.run)
    await nursery.start(fleet.run)
    try:
        yield fleet, heard
    finally:
        await fleet.stop()


async def until(check: Callable[[], object]) -> None:
    with trio.fail_after(30):
        while not check():  # noqa: ASYNC110 (state of another task's making, polled)
            await trio.sleep(0.05)


async def test_a_change_is_heard_once_and_a_late_member_reads_only_the_newest(
    nursery: trio.Nursery,
) -> None:
    async with (
        own_prefix() as prefix,
        member(nursery, SYSTEM_REDIS, prefix) as (a, _),
        member(nursery, SYSTEM_REDIS, prefix) as (_, heard),
    ):
        await until(lambda: len(a.peers) == 2)
        a.tell("setting", "profile", {"value": "eco"})
        a.tell("setting", "profile", {"value": "premium"})
        await until(lambda: len(heard) == 2)
        assert [e.data for e in heard] == [{"value": "eco"}, {"value": "premium"}]
        async with member(nursery, SYSTEM_REDIS, prefix) as (_, late):
            await until(lambda: late)
            assert [e.data for e in late] == [{"value": "premium"}]
        assert len(heard) == 2  # the resyncs meanwhile brought nothing new


async def test_what_is_told_while_redis_is_away_is_heard_once_it_returns(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with redis_server(tmp_path) as server:
        await server.start()
        async with (
            member(nursery, server.url, "t") as (a, _),
            member(nursery, server.url, "t") as (b, heard),
        ):
            await until(lambda: a.link.up and b.link.up)
            await server.kill()
            await until(lambda: not a.link.up)
            a.tell("key", "alice", None)
            await until(lambda: a.snapshot()["pending"] == 1)
            await server.start()
            await until(lambda: [e.key for e in heard] == ["alice"])
            assert a.snapshot()["pending"] == 0


async def test_a_reload_on_one_gateway_makes_its_peers_reload_their_own_files(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with own_prefix() as prefix:
        cluster = {"redis_url": SYSTEM_REDIS, "prefix": prefix}
        stacks, paths = [], []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            paths.append(tmp_path / name / "llmswitch.toml")
            stacks.append(
                await start_stack(nursery, tmp_path / name, config_file=paths[-1], cluster=cluster)
            )
        a, b = stacks
        await until(lambda: len(b.gw.fleet.peers) == 2 if b.gw.fleet else False)
        for path in paths:
            edit(path, health={"interval_s": 30})
        async with a.http() as http:
            assert (await http.post("/admin/reload")).status_code == 200
        await until(lambda: b.gw.reloader.generation == 2)
        assert b.gw.config.health.interval_s == 30
        assert a.gw.reloader.generation == 2  # b's reload, not told again, changed nothing here
        for stack in stacks:
            stack.gw.stop_requested.set()


async def test_a_conversation_keeps_its_model_on_whichever_gateway_serves_its_next_turn(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with own_prefix() as prefix:
        cluster = {"redis_url": SYSTEM_REDIS, "prefix": prefix}
        a, b = [await start_stack(nursery, tmp_path / name, cluster=cluster) for name in ("a", "b")]
        await until(lambda: len(b.gw.fleet.peers) == 2 if b.gw.fleet else False)
        first, second = Conversation(a, "conv-fleet"), Conversation(b, "conv-fleet")
        assert await first.turn(CODE) == ("medium", "new")
        second.messages = list(first.messages)
        # The pin travels on its own: wait for it rather than for a fixed time.
        await until(lambda: b.gw.fleet is not None and b.gw.fleet.counts["heard"] >= 1)
        assert await second.turn(SIMPLE) == ("medium", "kept")
        for stack in (a, b):
            stack.gw.stop_requested.set()


def test_an_entry_too_big_to_send_is_counted_and_never_sent() -> None:
    fleet = Fleet(Link(SYSTEM_REDIS, "unused"))
    fleet.tell("setting", "rule:huge", {"value": "x" * 70_000})
    assert (fleet.counts["bad"], fleet.counts["told"]) == (1, 0)
