"""What an answer cost, told to the client: usage.cost and X-Router-Cost-USD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from tests.e2e.harness import start_stack

ASK: list[Any] = [{"role": "user", "content": "hello there"}]


async def test_a_priced_answer_carries_its_cost_in_usage_and_a_header(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, routing={"metered_cloud": ["*"]})
    raw = await stack.client().chat.completions.with_raw_response.create(model="big", messages=ASK)
    answer = raw.parse()
    (row,) = await stack.rows()
    assert answer.usage is not None
    # big costs $1 in and $2 out per Mtok (tests.e2e.harness.default_models).
    expected = (answer.usage.prompt_tokens * 1.0 + answer.usage.completion_tokens * 2.0) / 1e6
    assert expected > 0 and abs(row.cost_usd - expected) < 1e-12
    assert abs(float(raw.headers["x-router-cost-usd"]) - expected) < 1e-8
    assert abs((answer.usage.model_extra or {})["cost"] - expected) < 1e-8


async def test_a_local_answer_costs_zero(nursery: trio.Nursery, tmp_path: Path) -> None:
    stack = await start_stack(nursery, tmp_path)
    raw = await stack.client().chat.completions.with_raw_response.create(
        model="small", messages=ASK
    )
    assert float(raw.headers["x-router-cost-usd"]) == 0.0
    assert raw.parse().usage.model_extra == {"cost": 0.0}  # type: ignore[union-attr]


async def test_a_stream_puts_the_cost_in_the_usage_it_was_asked_for(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, routing={"metered_cloud": ["*"]})
    client = stack.client()
    stream = await client.chat.completions.create(
        model="big", messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    usages = [chunk.usage async for chunk in stream if chunk.usage is not None]
    (usage,) = usages
    (row,) = await stack.rows()
    assert row.cost_usd > 0
    assert abs((usage.model_extra or {})["cost"] - row.cost_usd) < 1e-8
    plain = await client.chat.completions.create(model="big", messages=ASK, stream=True)
    assert [chunk async for chunk in plain if chunk.usage is not None] == []
