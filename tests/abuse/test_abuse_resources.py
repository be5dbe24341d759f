"""Resource abuse against the real server: the gateway outlives what a LAN can throw at it.

Loopback only, bounded in count and time.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from llmswitch.sim.backend import SimBackend
from llmswitch.sim.server import RunningSim, serve_sim
from tests.e2e.harness import closed_port
from tests.e2e.test_faults import (
    db_rows,
    open_gateway,
    read,
    stop_process,
    wait_until_serving,
    write_config,
)

HELLO = [{"role": "user", "content": "hello there"}]
CHAT = "/v1/chat/completions"
#: The gateway's open-file limits: it must raise the soft one to the hard one by itself.
SOFT_NOFILE, HARD_NOFILE = 64, 160
#: Idle connections held open: more than the gateway has descriptors left.
IDLE_CONNECTIONS = 220

LIMITED_GATEWAY = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({SOFT_NOFILE}, {HARD_NOFILE}))
from llmswitch.cli import main
sys.exit(main(["serve", "--config", sys.argv[1]]))
"""


def open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


async def hold_idle_connections(port: int, held: list[trio.SocketStream]) -> None:
    """Connect and say nothing, until the gateway's accept queue is full too."""
    for _ in range(IDLE_CONNECTIONS):
        with trio.move_on_after(1):
            held.append(await trio.open_tcp_stream("127.0.0.1", port))
            continue
        return


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_out_of_descriptors_the_ledger_keeps_every_row_and_the_gateway_serves_on(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    sim: RunningSim = await nursery.start(partial(serve_sim, SimBackend(["small"], name="local")))
    port, db = closed_port(), tmp_path / "ledger.db"
    config, log = tmp_path / "llmswitch.toml", tmp_path / "gateway.log"
    write_config(config, sim.openai_base_url, port, db, grace_s=5)
    wrapper = tmp_path / "limited_gateway.py"
    wrapper.write_text(LIMITED_GATEWAY, encoding="utf-8")
    proc = await open_gateway([str(wrapper), str(config)], log)
    url = f"http://127.0.0.1:{port}"
    body = {"model": "small", "messages": HELLO}
    acked: list[str] = []
    held: list[trio.SocketStream] = []
    try:
        await wait_until_serving(url, proc, log)
        assert open_files_limits(proc.pid) == (HARD_NOFILE, HARD_NOFILE)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            # A keep-alive connection opened before the flood: the gateway must go on
            # serving it while no descriptor is left for anything new.
            r = await http.post(CHAT, json=body)
            assert r.status_code == 200
            acked.append(r.headers["x-request-id"])
            with trio.fail_after(30):
                await hold_idle_connections(port, held)
                # Rows journalled while no descriptor is left: the ledger cannot open
                # the next journal segment, and must wait rather than crash.
                while "journal: cannot open a new segment" not in read(log):
                    r = await http.post(CHAT, json=body)
                    assert r.status_code == 200
                    acked.append(r.headers["x-request-id"])
                    await trio.sleep(0.05)
                for _ in range(5):
                    r = await http.post(CHAT, json=body)
                    assert r.status_code == 200
                    acked.append(r.headers["x-request-id"])
                debug = (await http.get("/debug")).json()
        actors = {a["name"]: a for a in debug["supervisor"]["actors"]}
        assert all(a["restarts"] == 0 and a["state"] == "running" for a in actors.values())
        # The drain closes every connection; the ledger's last flush then moves the rows.
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(30):
            assert await proc.wait() == 0, read(log)
    finally:
        for stream in held:
            await stream.aclose()
        await stop_process(proc)
    assert "crashed" not in read(log)
    rows = await db_rows(db)
    assert {r.request_id for r in rows} == set(acked)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.stat().st_mode & 0o777 == 0o600
