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

from llmswitch.front.listen import RESERVED_FDS
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
#: Idle connections held open: more than the gateway has descriptors.
IDLE_CONNECTIONS = 220
#: Connections the gateway serves at once under HARD_NOFILE (see front.listen.connection_cap).
CAP = (HARD_NOFILE - RESERVED_FDS) // 2

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
    """Connect and say nothing, until the gateway's accept queue (its backlog) is full too."""
    for _ in range(IDLE_CONNECTIONS):
        with trio.move_on_after(1):
            held.append(await trio.open_tcp_stream("127.0.0.1", port))
            continue
        return


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_a_connection_flood_cannot_exhaust_descriptors_and_the_gateway_recovers(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """More idle connections than descriptors: the cap keeps some for the ledger and the
    upstreams (the ledger's own EMFILE handling is pinned in tests/actors/test_ledger.py),
    a connection opened before the flood is served through it, and once the flood leaves
    new connections are answered again."""
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
        assert f"serving at most {CAP} connections" in read(log)
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            r = await http.post(CHAT, json=body)
            assert r.status_code == 200
            acked.append(r.headers["x-request-id"])
            with trio.fail_after(30):
                await hold_idle_connections(port, held)
                for _ in range(20):
                    r = await http.post(CHAT, json=body)
                    assert r.status_code == 200
                    acked.append(r.headers["x-request-id"])
                assert (await http.get("/debug")).json()["connections"]["open"] == CAP
        for stream in held:
            await stream.aclose()
        held.clear()
        # The flood has left: a new connection is answered, and the slots are free again.
        with trio.fail_after(15):
            async with httpx.AsyncClient(base_url=url, timeout=15) as http:
                r = await http.post(CHAT, json=body)
                assert r.status_code == 200
                acked.append(r.headers["x-request-id"])
                debug = (await http.get("/debug")).json()
        assert debug["connections"]["open"] < 5 and debug["in_flight"] <= 1
        actors = {a["name"]: a for a in debug["supervisor"]["actors"]}
        assert all(a["restarts"] == 0 and a["state"] == "running" for a in actors.values())
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
