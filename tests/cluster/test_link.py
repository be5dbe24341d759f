"""The Redis link against real Redis: keys under the prefix, Lua by SHA, pub/sub, and
degraded (never crashed) while Redis is away."""

from __future__ import annotations

import trio

from llmswitch.cluster.link import Link, LinkDown, describe_url
from llmswitch.config import ClusterConfig
from llmswitch.runtime.backoff import Backoff
from tests.cluster.redis_server import SYSTEM_REDIS, own_prefix, redis_server
from tests.e2e.harness import closed_port

QUICK = Backoff(base_s=0.05, cap_s=0.2)


def test_no_redis_url_means_no_link() -> None:
    assert Link.of(ClusterConfig()) is None


def test_a_description_never_holds_the_password() -> None:
    assert describe_url("redis://:s3cret@cache.lan:6380/2") == "redis://cache.lan:6380/2"
    assert describe_url("rediss://app:s3cret@h/0?password=x") == "rediss://h/0"
    assert describe_url("unix:///run/redis.sock") == "unix:///run/redis.sock"


def test_every_key_is_under_the_prefix() -> None:
    assert Link("redis://h", "fleet-a").key("budget", "day") == "fleet-a:budget:day"


async def test_a_script_runs_by_sha_and_is_loaded_again_after_a_flush() -> None:
    with trio.fail_after(20):
        async with redis_server() as server:
            await server.start()
            link = Link(server.url, "t")
            async with trio.open_nursery() as nursery:
                await nursery.start(link.run)
                incr = link.script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
                assert await link.evalsha(incr, [link.key("n")], [2]) == 2
                await link.call(lambda c: c.script_flush())
                assert await link.evalsha(incr, [link.key("n")], [3]) == 5
                assert link.up
                nursery.cancel_scope.cancel()


async def test_published_messages_reach_a_subscriber_of_the_same_prefix_only() -> None:
    async with own_prefix() as prefix, own_prefix() as other:
        link, stranger = Link(SYSTEM_REDIS, prefix), Link(SYSTEM_REDIS, other)
        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                await nursery.start(link.run)
                await nursery.start(stranger.run)
                async with link.subscribe("news") as messages:
                    await stranger.publish("news", "not for us")
                    # The subscription is in place once a publish reaches it.
                    while await link.publish("news", "hello") == 0:  # noqa: ASYNC110 (a count)
                        await trio.sleep(0.05)
                    assert await anext(messages) == ("news", "hello")
                nursery.cancel_scope.cancel()


async def test_a_link_to_no_redis_starts_degraded_and_calls_fail_fast() -> None:
    url = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    link = Link(url, "t", backoff=QUICK)
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            try:
                await link.call(lambda c: c.ping())
                raise AssertionError("a ping to nothing answered")
            except LinkDown as exc:
                assert "hunter2" not in str(exc)
            state = link.state.value
            assert not state.up and state.reason and "hunter2" not in state.reason
            assert "hunter2" not in repr(link.snapshot())
            nursery.cancel_scope.cancel()


async def test_the_link_goes_degraded_when_redis_dies_and_up_when_it_returns() -> None:
    with trio.fail_after(30):
        async with redis_server() as server:
            await server.start()
            link = Link(server.url, "t", ping_interval_s=0.1, backoff=QUICK)
            async with trio.open_nursery() as nursery:
                await nursery.start(link.run)
                state, version = await link.state.wait_newer(0)
                assert state.up
                await server.kill()
                state, version = await link.state.wait_newer(version)
                assert not state.up and state.outages == 1
                await server.start()
                while not state.up:
                    state, version = await link.state.wait_newer(version)
                assert await link.call(lambda c: c.ping()) == "PONG"
                assert link.snapshot()["state"] == "up"
                nursery.cancel_scope.cancel()


async def test_a_hung_redis_is_degraded_after_the_op_timeout_and_answers_right_after() -> None:
    with trio.fail_after(30):
        async with redis_server() as server:
            await server.start()
            link = Link(server.url, "t", op_timeout_s=0.5, ping_interval_s=0.1, backoff=QUICK)
            async with trio.open_nursery() as nursery:
                await nursery.start(link.run)
                await link.call(lambda c: c.set(link.key("a"), "1"))
                await link.call(lambda c: c.set(link.key("b"), "2"))
                server.pause()
                try:
                    await link.call(lambda c: c.get(link.key("a")))
                    raise AssertionError("a hung Redis answered")
                except LinkDown as exc:
                    assert str(exc) == "no answer within 0.5s"
                assert link.state.value.reason == "no answer within 0.5s"
                server.resume()
                while not link.up:
                    await link.state.wait_newer(link.state.version)
                # The reply the timed-out call never read does not answer a later call.
                assert await link.call(lambda c: c.get(link.key("b"))) == "2"
                assert await link.call(lambda c: c.get(link.key("a"))) == "1"
                nursery.cancel_scope.cancel()
