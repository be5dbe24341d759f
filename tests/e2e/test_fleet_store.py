"""One request log for a fleet on PostgreSQL (store.url): two gateways write to it and
either one's stats show both; a PostgreSQL killed under load loses no acknowledged row."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
import trio

from llmswitch.actors.ledger import Flush
from tests.e2e.harness import (
    closed_port,
    stack_config,
    start_sims,
    start_stack,
    wait_until_serving,
    write_config,
)
from tests.pg import private_server


async def ask(client: openai.AsyncOpenAI, text: str = "hi") -> str:
    """One chat request; the request id the gateway acknowledged it with."""
    raw = await client.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": text}]
    )
    raw.parse()
    return raw.headers["x-request-id"]


def stored_ids(url: str) -> list[str]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return [str(r[0]) for r in conn.execute("SELECT request_id FROM request_log")]


async def test_two_gateways_write_one_log_and_either_shows_the_fleet(
    nursery: trio.Nursery, tmp_path: Path, pg_url: str
) -> None:
    stacks = []
    for name in ("a", "b"):
        store = {
            "path": str(tmp_path / name / "ledger.db"),
            "url": pg_url,
            "flush_interval_s": 0.05,
        }
        stacks.append(await start_stack(nursery, tmp_path / name, store=store))
    with trio.fail_after(60):
        for stack, n in zip(stacks, (3, 2), strict=True):
            for _ in range(n):
                await ask(stack.client())
            await stack.gw.ledger.call(Flush(), timeout=10)
        instances = [s.gw.instance for s in stacks]
        assert instances[0] != instances[1] and all(instances)
        async with stacks[1].http() as http:
            stats = await http.get("/admin/stats", params={"group_by": "instance", "since": "1h"})
            rows = await http.get("/admin/requests", params={"instance": instances[0]})
    assert stats.status_code == 200, stats.text
    by_instance = {g["key"]: g["requests"] for g in stats.json()["groups"]}
    assert by_instance == {instances[0]: 3, instances[1]: 2}
    assert stats.json()["total"]["requests"] == 5
    assert [r["instance"] for r in rows.json()["requests"]] == [instances[0]] * 3


@pytest.mark.slow
async def test_a_killed_postgresql_loses_no_acknowledged_row(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """Load through a gateway process; kill -9 the PostgreSQL; the gateway keeps serving
    and says the store is down; restart it; every acknowledged row arrives exactly once."""
    sims = await start_sims(nursery)
    port = closed_port()
    with private_server() as pg:
        # Trust auth ignores the password: it is there to be kept out of every answer.
        secret_url = pg.url.replace("postgres@", "postgres:sekret-pw@")
        config = stack_config(
            sims,
            tmp_path / "ledger.db",
            server={"host": "127.0.0.1", "port": port, "grace_s": 5},
            store={
                "path": str(tmp_path / "ledger.db"),
                "url": secret_url,
                "flush_interval_s": 0.05,
            },
        )
        config_file = tmp_path / "llmswitch.toml"
        write_config(config_file, config)
        url = f"http://127.0.0.1:{port}"
        log_file = tmp_path / "gateway.log"
        with log_file.open("wb") as log:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "llmswitch", "serve", "--config", str(config_file)],
                env=os.environ | {"PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=log,
            )
        try:
            await wait_until_serving(url, proc)
            acked = await _load_kill_restart(pg, url)
            with trio.fail_after(60):
                await until(lambda: _all_stored(pg.url, acked))
                async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                    await until(lambda: _reachable(http, True))
            ids = await trio.to_thread.run_sync(stored_ids, pg.url)
        finally:
            proc.terminate()
            with trio.move_on_after(20):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert sorted(ids) == sorted(acked), "every acknowledged row, each once"
    assert len(acked) == 45
    assert proc.returncode == 0
    assert "sekret-pw" not in log_file.read_text(errors="replace")


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` until it holds (callers bound the wait)."""
    while True:
        if await check():
            return
        await trio.sleep(0.05)


async def _all_stored(url: str, acked: list[str]) -> bool:
    return len(await trio.to_thread.run_sync(stored_ids, url)) >= len(acked)


async def _reachable(http: httpx.AsyncClient, reachable: bool) -> bool:
    return bool((await _store(http))["reachable"]) is reachable


async def _store(http: httpx.AsyncClient) -> dict[str, Any]:
    body = (await http.get("/health/ready")).json()
    assert body["ready"] is True, body
    store: dict[str, Any] = body["store"]
    return store


async def _load_kill_restart(pg: Any, url: str) -> list[str]:
    """15 requests with the server up, 15 while it is dead, 15 once it is back."""
    acked: list[str] = []
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="test", max_retries=0)

    async def burst(n: int) -> None:
        async def one() -> None:
            acked.append(await ask(client))

        async with trio.open_nursery() as load:
            for _ in range(n):
                load.start_soon(one)

    with trio.fail_after(90):
        await burst(15)
        await trio.to_thread.run_sync(pg.kill)
        await burst(15)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            await until(lambda: _reachable(http, False))
            store = await _store(http)
            debug = (await http.get("/debug")).text
            metrics = (await http.get("/metrics")).text
        assert "127.0.0.1" in str(store["down"]) and "sekret-pw" not in str(store)
        assert '"store_down"' in debug and "sekret-pw" not in debug
        assert "llmswitch_store_up 0.0" in metrics
        await burst(5)  # still served, rows wait in the journal
        await trio.to_thread.run_sync(pg.start)
        await burst(10)
    return acked
