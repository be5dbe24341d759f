"""A gateway with ``cluster.redis_url`` serves with its Redis up or away, and /debug says
which without the password."""

from __future__ import annotations

from pathlib import Path

import trio

from llmswitch.actors.health import BackendHealth, HealthView
from llmswitch.actors.ledger import BudgetView
from llmswitch.cluster.link import LinkState
from llmswitch.config import parse_config
from llmswitch.front.health import StoreCheck, readiness
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
            health = (await http.get("/health/ready")).json()
    assert cluster["state"] == "degraded" and cluster["status"].startswith("cluster degraded: ")
    assert health["cluster"]["state"] == "degraded"
    assert health["degraded"] == cluster["status"]
    stack.gw.stop_requested.set()


def test_a_degraded_cluster_leaves_a_gateway_ready_and_says_why(tmp_path: Path) -> None:
    config = parse_config(
        {
            "store": {"path": str(tmp_path / "l.db")},
            "backends": [{"name": "b", "base_url": "http://127.0.0.1:9/v1"}],
            "models": [{"id": "m", "backend": "b"}],
        }
    )
    health = HealthView({"b": BackendHealth(checked=True, up=True)})
    down = LinkState(up=False, reason="ConnectionError: refused")
    ready, body = readiness(
        config, health, BudgetView(), StoreCheck(True), draining=False, cluster=down
    )
    assert ready and body["status"] == "degraded"
    assert body["degraded"] == "cluster degraded: ConnectionError: refused"
    up = LinkState(up=True, reason="")
    ready, body = readiness(
        config, health, BudgetView(), StoreCheck(True), draining=False, cluster=up
    )
    assert ready and body["status"] == "ok" and body["cluster"]["state"] == "up"
