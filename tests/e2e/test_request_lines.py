"""One log line per request through the real server, matching the request's ledger row."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import openai
import pytest
import trio

from tests.e2e.harness import start_stack


def parsed(line: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(line))


async def test_each_request_logs_one_line_with_its_routing_and_outcome(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await start_stack(nursery, tmp_path)
    client = stack.client()
    with caplog.at_level(logging.INFO, logger="llmswitch.requests"):
        served = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "hi"}]
            )
    lines = [parsed(r.getMessage()) for r in caplog.records if r.name == "llmswitch.requests"]
    assert len(lines) == 2
    ok, missing = lines
    rows = {r.request_id: r for r in await stack.rows()}
    assert ok["id"] == served.headers["x-request-id"]
    row = rows[ok["id"]]
    assert ok["status"] == "200" and ok["model"] == row.chosen_model
    assert ok["backend"] == row.backend and ok["tier"] == row.tier
    assert int(ok["tokens_out"]) == row.tokens_out
    assert missing["status"] == "404" and "error" in missing


async def test_the_request_log_can_be_turned_off(
    nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await start_stack(nursery, tmp_path, log={"requests": False})
    with caplog.at_level(logging.INFO, logger="llmswitch.requests"):
        await stack.client().chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
    assert [r for r in caplog.records if r.name == "llmswitch.requests"] == []
