"""/admin/stats through the gateway: what was served, what it cost, what routing saved."""

from __future__ import annotations

from pathlib import Path

import trio

from tests.e2e.harness import Stack, start_stack


async def test_stats_by_model_count_cost_and_savings(nursery: trio.Nursery, tmp_path: Path) -> None:
    stack = await start_stack(nursery, tmp_path, routing={"metered_cloud": ["*"]})
    client = stack.client()
    for _ in range(3):
        await client.chat.completions.create(
            model="big", messages=[{"role": "user", "content": "hello there"}]
        )
    for _ in range(2):
        await client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "hi"}]
        )
    rows = await stack.rows()
    async with stack.http() as http:
        resp = await http.get("/admin/stats", params={"group_by": "model", "since": "1h"})
        by_task = await http.get("/admin/stats", params={"group_by": "task"})
        series = await http.get("/admin/stats", params={"group_by": "hour", "since": "2h"})
    assert resp.status_code == 200
    stats = resp.json()
    groups = {g["key"]: g for g in stats["groups"]}
    assert stats["baseline_model"] == "big"  # the only priced model
    assert groups["big"]["requests"] == 3 and groups["small"]["requests"] == 2
    big_cost = sum(r.cost_usd for r in rows if r.chosen_model == "big")
    assert big_cost > 0
    assert abs(groups["big"]["cost_usd"] - big_cost) < 1e-6
    assert groups["big"]["savings_usd"] == 0  # the baseline saves nothing against itself
    small_tokens = [(r.tokens_in, r.tokens_out) for r in rows if r.chosen_model == "small"]
    would_cost = sum(i * 1.0 + o * 2.0 for i, o in small_tokens) / 1e6  # big's prices
    assert abs(groups["small"]["savings_usd"] - would_cost) < 1e-6
    assert stats["total"]["requests"] == 5 and stats["total"]["errors"] == 0
    assert stats["total"]["latency_ms"]["p50"] is not None
    assert {g["key"] for g in by_task.json()["groups"]} <= {
        "conversation",
        "code",
        "analysis",
        "creative",
        "math",
        None,
    }
    assert sum(g["requests"] for g in series.json()["groups"]) == 5


async def test_stats_refuse_bad_parameters(stack: Stack) -> None:
    async with stack.http() as http:
        cases = {
            "group_by": {"group_by": "password"},
            "since": {"since": "yesterday-ish"},
            "until": {"since": "1h", "until": "2h"},
        }
        for param, query in cases.items():
            resp = await http.get("/admin/stats", params=query)
            assert resp.status_code == 400, query
            assert resp.json()["error"]["param"] == param
        huge = await http.get("/admin/stats", params={"since": "x" * 20_000})
    assert huge.status_code in (400, 414, 431)
