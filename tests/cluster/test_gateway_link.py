"""A gateway with ``cluster.redis_url`` serves with its Redis up or away, and /debug says
which without the password."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.cluster.redis_server import own_prefix
from tests.e2e.harness import closed_port, start_stack


async def test_debug_shows_the_cluster_without_the_password(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    async with own_prefix() as prefix:
        url = "redis://:sekrit@127.0.0.1:6379/0"
        stack = await start_stack(nursery, tmp_path, cluster={"redis_url": url, "prefix": prefix})
        with trio.fail_after(20):
            async with stack.http() as http:
                text = (await http.get("/debug")).text
                cluster = (await http.get("/debug")).json()["cluster"]
        assert "sekrit" not in text
        assert cluster["redis"] == "redis://127.0.0.1:6379/0"
        assert cluster["prefix"] == prefix
        stack.gw.stop_requested.set()


async def test_a_gateway_whose_redis_is_away_serves_degraded(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    stack = await start_stack(nursery, tmp_path, cluster={"redis_url": url})
    with trio.fail_after(20):
        reply = await stack.client().chat.completions.create(
            model="small", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
        async with stack.http() as http:
            cluster = (await http.get("/debug")).json()["cluster"]
    assert cluster["state"] == "degraded" and cluster["reason"]
    stack.gw.stop_requested.set()
