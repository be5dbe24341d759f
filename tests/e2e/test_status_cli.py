"""``llmswitch status`` and ``llmswitch stats`` against a real gateway on loopback."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from llmswitch.cli.status import cmd_stats, cmd_status
from llmswitch.config import Config, parse_config
from tests.e2e.harness import Stack, closed_port, start_stack


async def run_cli(
    command: Callable[[Config, argparse.Namespace], int], config: Config, **args: object
) -> int:
    """The command in a worker thread: its blocking HTTP client must not stall the
    gateway, which runs in this test's own trio loop."""
    ns = argparse.Namespace(**({"json": False, "url": None} | args))
    return await trio.to_thread.run_sync(command, config, ns)


async def probed(stack: Stack) -> None:
    """Wait until every backend has had its first probe."""
    with trio.fail_after(10):
        while any(  # noqa: ASYNC110 (no event to wait on)
            not h.checked for h in stack.gw.views.health.value.backends.values()
        ) or len(stack.gw.views.health.value.backends) < len(stack.gw.config.backends):
            await trio.sleep(0.05)


async def test_status_shows_a_down_backend_with_a_hint_and_the_budgets(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    stack = await start_stack(
        nursery,
        tmp_path,
        extra_backends=[{"name": "gone", "kind": "ollama", "base_url": f"http://127.0.0.1:{port}"}],
        health={"interval_s": 60, "failures_to_down": 1},
        budget={"daily_usd": 5.0},
    )
    await probed(stack)
    code = await run_cli(cmd_status, stack.gw.config, url=stack.url)
    out = capsys.readouterr().out
    assert code == 0  # the other backends serve: ready
    gone = next(line for line in out.splitlines() if line.startswith("gone "))
    assert "down" in gone and f"is Ollama running on 127.0.0.1:{port}?" in gone
    local = next(line for line in out.splitlines() if line.startswith("local "))
    assert " up " in local and "closed" in local
    assert "state      ready" in out
    assert "store      ok" in out
    assert "global/day" in out and "5" in out
    assert "ledger" in out and "router" in out  # the actors table

    code = await run_cli(cmd_status, stack.gw.config, url=stack.url, json=True)
    report = json.loads(capsys.readouterr().out)
    assert report["health"]["backends"]["gone"]["state"] == "down"
    assert {a["name"] for a in report["debug"]["supervisor"]["actors"]} >= {"ledger", "pool"}


async def test_stats_tables_what_was_served_and_saved(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = await start_stack(nursery, tmp_path)
    client = stack.client()
    for _ in range(2):
        await client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "hi"}]
        )
    await stack.rows()  # flushed, hence rolled up
    code = await run_cli(
        cmd_stats, stack.gw.config, url=stack.url, since="1h", by="model", until=None
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "savings against big" in out
    small = next(line for line in out.splitlines() if line.startswith("small "))
    assert small.split()[1] == "2"  # requests
    assert "(total)" in out
    await run_cli(
        cmd_stats, stack.gw.config, url=stack.url, since="1h", by="client", until=None, json=True
    )
    report = json.loads(capsys.readouterr().out)
    assert report["group_by"] == "client" and report["total"]["requests"] == 2


async def test_no_gateway_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    port = closed_port()
    config = parse_config(
        {
            "server": {"port": port},
            "backends": [{"name": "b", "kind": "ollama", "base_url": "http://127.0.0.1:1"}],
            "models": [{"id": "m", "backend": "b", "quality": 50}],
        }
    )
    code = await run_cli(cmd_status, config)
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        f"llmswitch: no gateway answers at http://127.0.0.1:{port}: "
        "is `llmswitch serve` running? (--url)\n"
    )


async def test_a_wrong_admin_token_is_refused_with_what_to_set(
    nursery: trio.Nursery,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LLMSWITCH_TEST_ADMIN", "the-right-token")
    stack = await start_stack(
        nursery,
        tmp_path,
        server={"host": "127.0.0.1", "port": 0, "admin_token_env": "LLMSWITCH_TEST_ADMIN"},
    )
    monkeypatch.setenv("LLMSWITCH_TEST_ADMIN", "a-wrong-token")
    code = await run_cli(
        cmd_stats, stack.gw.config, url=stack.url, since="1h", by="model", until=None
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "admin access refused: is LLMSWITCH_TEST_ADMIN set to the gateway's admin token?" in err
    assert "a-wrong-token" not in err and "the-right-token" not in err
    monkeypatch.setenv("LLMSWITCH_TEST_ADMIN", "the-right-token")
    assert (
        await run_cli(cmd_stats, stack.gw.config, url=stack.url, since="1h", by="model", until=None)
        == 0
    )
