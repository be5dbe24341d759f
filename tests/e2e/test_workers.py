"""``server.workers = 2``: both workers serve one port, a killed one comes back, SIGTERM
drains both with streams in flight and the parent exits 0.

A real ``llmswitch serve`` process tree (the parent and its workers) in front of the
simulators, with the system Redis under the test's own prefix.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio
import trio.testing

from llmswitch.config import Config, parse_config
from llmswitch.gateway import Gateway
from llmswitch.main import run_gateway
from llmswitch.runtime.backoff import Backoff
from llmswitch.runtime.restarts import RestartPolicy
from llmswitch.sim.knobs import ModelKnobs
from llmswitch.store.db import open_db
from llmswitch.store.journal import journal_dir, read_segment
from llmswitch.store.request_log import count_rows
from llmswitch.workers import Fleet, hold_port
from tests.e2e.harness import (
    SYSTEM_REDIS,
    closed_port,
    fleet_config,
    fleet_prefix,
    serving_process,
    stack_config,
    start_sims,
    write_config,
)


def rows_journalled(directory: Path) -> int:
    """Rows in the journals of every worker (worker 0's directory and the w<n>/ in it)."""
    return sum(len(read_segment(p)) for p in directory.rglob("*.jsonl"))


async def worker_debug(url: str) -> dict[str, Any]:
    """/debug over a new connection, so the kernel may hand it to either worker."""
    async with httpx.AsyncClient(timeout=10) as http:
        data: dict[str, Any] = (await http.get(url + "/debug")).json()
        return data


async def pids_of_workers(
    url: str, proc: trio.Process, *, besides: frozenset[int] = frozenset()
) -> dict[int, int]:
    """Each worker's pid, once both answer (and none with a pid in ``besides``)."""
    pids: dict[int, int] = {}
    while len(pids) < 2:
        assert proc.returncode is None, "the parent exited"
        try:
            worker = (await worker_debug(url))["worker"]
        except httpx.TransportError:
            await trio.sleep(0.1)
            continue
        if worker["pid"] not in besides:
            pids[worker["id"]] = worker["pid"]
    return pids


async def test_two_workers_serve_one_port_survive_a_kill_and_drain_together(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    # A stream takes about 3 s: each is mid-answer when SIGTERM lands.
    sims = await start_sims(nursery, ModelKnobs(tokens_per_s=10, reply="tok " * 30))
    port, db = closed_port(), tmp_path / "ledger.db"
    config = tmp_path / "llmswitch.toml"
    write_config(config, fleet_config(sims, port, db, fleet_prefix(), {"workers": 2}))
    url = f"http://127.0.0.1:{port}"
    async with serving_process(config) as proc:
        with trio.fail_after(60):
            pids = await pids_of_workers(url, proc)
        assert pids[0] != pids[1]

        # A worker killed outright is started again by the parent; the other serves meanwhile.
        os.kill(pids[1], signal.SIGKILL)
        with trio.fail_after(60):
            again = await pids_of_workers(url, proc, besides=frozenset({pids[1]}))
        assert again[0] == pids[0] and again[1] != pids[1]

        # Streams on both workers, then SIGTERM to the parent: every stream finishes.
        finished: list[str] = []
        first_tokens = trio.Semaphore(0)

        async def stream_one() -> None:
            # A client of its own: a new connection, which either worker may take.
            async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0) as c:
                stream = await c.chat.completions.create(
                    model="small", stream=True, messages=[{"role": "user", "content": "go"}]
                )
                text = ""
                async for chunk in stream:
                    if not text:
                        first_tokens.release()
                    text += "".join(choice.delta.content or "" for choice in chunk.choices)
                finished.append(text)

        busy: set[int] = set()
        started = 0
        with trio.fail_after(60):
            async with trio.open_nursery() as streams:
                # Until each worker has a stream in flight (at most 12 streams).
                while busy != {0, 1} and started < 12:
                    streams.start_soon(stream_one)
                    started += 1
                    await first_tokens.acquire()
                    for _ in range(4):
                        seen = await worker_debug(url)
                        if seen["in_flight"]:
                            busy.add(seen["worker"]["id"])
                assert busy == {0, 1}
                proc.send_signal(signal.SIGTERM)
        assert [text.split() for text in finished] == [["tok"] * 30] * started
        with trio.fail_after(30):
            code = await proc.wait()
        assert code == 0
    # Each worker moved its own journal into the store before it exited.
    journalled = await trio.to_thread.run_sync(rows_journalled, Path(f"{db}.journal"))
    async with open_db(db) as conn:
        assert (await count_rows(conn), journalled) == (started, 0)


# -- the parent alone, over stand-in workers (tiny Python processes) ---------------------

#: A worker that exits 0 when its parent orders a stop, and 1 at once for any other order.
OBEDIENT = "import sys\nfor line in sys.stdin:\n    sys.exit(0 if line.strip() == 'stop' else 1)"


def stand_in(code: str) -> Callable[[int, int], list[str]]:
    return lambda worker, port: [sys.executable, "-c", code]


def two_workers(sims_db: Path) -> Config:
    return parse_config(
        {
            "server": {"workers": 2},
            "cluster": {"redis_url": SYSTEM_REDIS},
            "store": {"path": str(sims_db)},
        },
        source="test",
    )


DYING = {
    "exits": stand_in("raise SystemExit(1)"),
    "cannot start": lambda worker, port: ["/nonexistent/llmswitch"],
}


@pytest.mark.parametrize("how", sorted(DYING))
async def test_the_parent_gives_up_on_a_worker_that_keeps_dying(tmp_path: Path, how: str) -> None:
    quick = RestartPolicy(max_restarts=2, window_s=600, backoff=Backoff(base_s=0.01, cap_s=0.01))
    fleet = Fleet(two_workers(tmp_path / "x.db"), DYING[how], quick)
    with trio.fail_after(30):
        code = await fleet.run(port=0)
    assert code == 3
    assert fleet.gave_up is not None and "died 3 times" in fleet.gave_up
    assert max(slot.restarts for slot in fleet.slots) == 2


async def test_a_stop_reaches_every_worker_and_the_parent_exits_0(tmp_path: Path) -> None:
    fleet = Fleet(two_workers(tmp_path / "x.db"), stand_in(OBEDIENT))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fleet.stop, "test")  # before the workers are even up
            codes = await fleet.run(port=0)
    assert codes == 0
    assert [slot.exit_code for slot in fleet.slots] == [0, 0]
    assert fleet.gave_up is None


def test_the_port_is_held_for_workers_and_refused_when_taken() -> None:
    held = hold_port("127.0.0.1", 0)
    with held, socket.socket() as worker:
        worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        worker.bind(held.getsockname())  # a worker joins the held port
        worker.listen()
        with pytest.raises(OSError) as refused:
            hold_port("127.0.0.1", held.getsockname()[1])  # another fleet, same user
        assert refused.value.errno == errno.EADDRINUSE


async def test_a_worker_follows_its_parents_orders_and_drains_when_the_pipe_ends(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    """A worker in this process: its orders come down a memory stream, not a pipe."""
    sims = await start_sims(nursery)
    db, path = tmp_path / "ledger.db", tmp_path / "llmswitch.toml"
    config = stack_config(sims, db)
    write_config(path, config)
    parent, orders = trio.testing.memory_stream_one_way_pair()
    codes: list[int] = []
    ended = trio.Event()

    async def worker(task_status: trio.TaskStatus[tuple[Gateway, str]]) -> None:
        code = await run_gateway(
            config, config_path=str(path), worker=1, orders=orders, task_status=task_status
        )
        codes.append(code)
        ended.set()

    gw, _ = await nursery.start(worker)
    assert gw.worker == 1 and gw.journal.directory == journal_dir(str(db), 1)

    write_config(path, stack_config(sims, db, budget={"daily_usd": 5.0}))
    await parent.send_all(b"rel")  # an order may arrive in pieces
    await parent.send_all(b"oad\n")
    with trio.fail_after(10):
        while gw.reloader.generation < 2:  # noqa: ASYNC110 (a counter, not an event)
            await trio.sleep(0.05)
    assert gw.config.budget.daily_usd == 5.0

    await parent.aclose()  # the parent is gone: the worker drains and ends
    with trio.fail_after(30):
        await ended.wait()
    assert codes == [0] and gw.draining
