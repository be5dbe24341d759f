"""Fault injection end to end: what the client sees, and what the ledger holds afterwards.

Backends die, hang, fail at random, stall mid-stream, all go down and come back; an actor
crash-loops; another process locks the database; the gateway gets SIGTERM with streams
in flight and SIGKILL mid-load. Every test checks the client's view and the ledger rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio

from llmswitch.config import Config, parse_config
from llmswitch.main import run_gateway
from llmswitch.sim.backend import SimBackend
from llmswitch.sim.knobs import ModelKnobs
from llmswitch.sim.server import RunningSim, serve_sim
from llmswitch.store.db import open_db
from llmswitch.store.request_log import RequestRow, recent_rows
from tests.e2e.harness import SIM_MODELS, Stack, closed_port, model

HELLO = [{"role": "user", "content": "hello there"}]
ECHO = "echo: hello there"
CHAT = "/v1/chat/completions"


def chain_models() -> list[dict[str, Any]]:
    """Three candidates on three backends: small (local), then coder (lan), then big (cloud)."""
    return [
        model("small", "local", 20, fallbacks=["coder", "big"]),
        model("coder", "lan", 60),
        model("big", "cloud", 90),
    ]


# -- simulators that can be stopped and started again on the same port -------------------


async def _serve_stoppable(
    sim: SimBackend,
    port: int,
    done: trio.Event,
    *,
    task_status: trio.TaskStatus[tuple[RunningSim, trio.CancelScope]] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                running = await nursery.start(partial(serve_sim, sim, "127.0.0.1", port))
                task_status.started((running, scope))
    finally:
        done.set()


@dataclass
class SimServers:
    nursery: trio.Nursery
    running: dict[str, RunningSim] = field(default_factory=dict)
    _scopes: dict[str, tuple[trio.CancelScope, trio.Event]] = field(default_factory=dict)

    async def start(self, sim: SimBackend, port: int = 0) -> RunningSim:
        done = trio.Event()
        running, scope = await self.nursery.start(_serve_stoppable, sim, port, done)
        self.running[sim.name] = running
        self._scopes[sim.name] = (scope, done)
        return running

    async def start_all(self, knobs: ModelKnobs | None = None) -> dict[str, RunningSim]:
        for name, models in SIM_MODELS.items():
            await self.start(SimBackend(models, name=name, knobs=knobs or ModelKnobs(), seed=1))
        return self.running

    async def stop(self, name: str) -> None:
        """Cancel the simulator's server: its listener closes, open connections drop."""
        scope, done = self._scopes[name]
        scope.cancel()
        with trio.fail_after(5):
            await done.wait()

    async def restart(self, name: str) -> RunningSim:
        """The same simulator (knobs, counters) on the same port again."""
        old = self.running[name]
        return await self.start(old.sim, old.port)


def fault_config(
    sims: dict[str, RunningSim],
    db_path: Path,
    *,
    backend: dict[str, dict[str, Any]] | None = None,
    models: list[dict[str, Any]] | None = None,
    **sections: Any,
) -> Config:
    """Like the harness's stack_config, with per-backend overrides (deadlines, ...)."""
    backends = [
        {
            "name": name,
            "base_url": running.openai_base_url,
            "locality": name,
            "first_token_s": 5,
            "idle_s": 5,
            "total_s": 10,
        }
        | (backend or {}).get(name, {})
        for name, running in sims.items()
    ]
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "grace_s": 10},
        "store": {"path": str(db_path), "flush_interval_s": 0.05},
        "health": {"interval_s": 60},
        "backends": backends,
        "models": models if models is not None else chain_models(),
    }
    data.update(sections)
    return parse_config(data, source="test")


async def start_gateway(
    nursery: trio.Nursery, sims: dict[str, RunningSim], db_path: Path, **config: Any
) -> Stack:
    cfg = fault_config(sims, db_path, **config)
    gw, url = await nursery.start(
        lambda task_status: run_gateway(cfg, handle_signals=False, task_status=task_status)
    )
    return Stack(gw, url, sims, db_path)


# -- 1. a backend killed under load -----------------------------------------------------


async def test_backend_killed_under_load_fails_over_with_no_client_error(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    stack = await start_gateway(nursery, sims, tmp_path / "ledger.db")
    client = stack.client(timeout=30)
    local = stack.sim("local")
    served: list[tuple[int, str]] = []
    acked: set[str] = set()
    errors: list[str] = []

    async def one(wave: int) -> None:
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model="small", messages=HELLO
            )
        except openai.APIError as exc:
            errors.append(f"wave {wave}: {exc!r}")
            return
        assert raw.parse().choices[0].message.content == ECHO
        served.append((wave, raw.headers["x-router-model"]))
        acked.add(raw.headers["x-request-id"])

    async def wave(n: int) -> None:
        async with trio.open_nursery() as requests:
            for _ in range(40):
                requests.start_soon(one, n)

    with trio.fail_after(30):
        await wave(1)
        # Answers wait at the backend: wave 2 is in flight there when it dies, however
        # slowly a loaded machine sends it.
        local.hold_streams()
        async with trio.open_nursery() as load:
            load.start_soon(wave, 2)
            await local.wait_until(lambda s: s.in_flight >= 10)
            killed_in_flight = local.stats.in_flight
            await servers.stop("local")
        await wave(3)

    assert errors == []
    assert killed_in_flight >= 10
    by_wave = {n: Counter(m for w, m in served if w == n) for n in (1, 2, 3)}
    assert by_wave[1] == {"small": 40}
    assert sum(by_wave[2].values()) == 40 and by_wave[2]["coder"] >= 10, by_wave[2]
    assert by_wave[3] == {"coder": 40}
    rows = await stack.rows()
    assert len(rows) == 120
    assert {r.request_id for r in rows} == acked
    assert Counter(r.status for r in rows) == {200: 120}
    assert Counter(r.chosen_model for r in rows) == by_wave[1] + by_wave[2] + by_wave[3]


# -- 2. a backend that hangs ------------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
async def test_hung_backend_fails_over_within_its_deadline(
    nursery: trio.Nursery, tmp_path: Path, stream: bool
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    # first_token_s bounds a stream's wait for its first event; total_s a whole answer.
    stack = await start_gateway(
        nursery,
        sims,
        tmp_path / "ledger.db",
        backend={"local": {"first_token_s": 0.5, "total_s": 1.5}},
    )
    local = stack.sim("local")
    local.set_knobs("small", hang=True)
    client = stack.client(timeout=30)
    started = trio.current_time()
    with trio.fail_after(10):
        if stream:
            chunks = await client.chat.completions.create(
                model="small", messages=HELLO, stream=True
            )
            text, models = "", set()
            async for chunk in chunks:
                models.add(chunk.model)
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
        else:
            completion = await client.chat.completions.create(model="small", messages=HELLO)
            text, models = completion.choices[0].message.content or "", {completion.model}
    elapsed = trio.current_time() - started
    assert text == ECHO
    assert models == {"coder"}
    assert elapsed < 5, f"the client waited {elapsed:.2f}s"
    # A timeout is not retried on the same backend: one hung attempt, then the next model.
    assert local.stats.faults["hang"] == 1
    with trio.fail_after(5):  # the gateway closed the hung upstream connection
        await local.wait_until(lambda s: s.hanging == 0)
    (row,) = await stack.rows()
    assert (row.status, row.chosen_model, row.backend) == (200, "coder", "lan")
    assert row.stream is stream


# -- 3. a backend failing half the time -------------------------------------------------


async def test_half_of_answers_failing_with_500_never_reaches_the_client(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    stack = await start_gateway(nursery, sims, tmp_path / "ledger.db")
    local = stack.sim("local")
    local.set_knobs("small", error_rate=0.5)
    local.reseed(20240501)
    client = stack.client(timeout=30)
    served: Counter[str] = Counter()
    with trio.fail_after(30):
        for _ in range(30):
            completion = await client.chat.completions.create(model="small", messages=HELLO)
            assert completion.choices[0].message.content == ECHO
            served[completion.model] += 1
    assert sum(served.values()) == 30
    injected = local.stats.faults["error_rate"]
    assert injected >= 1
    assert served["coder"] >= injected  # every injected 500 was answered by the next model
    rows = await stack.rows()
    assert Counter(r.status for r in rows) == {200: 30}
    assert Counter(r.chosen_model for r in rows) == served


# -- 4. a stream that drips, then stalls ------------------------------------------------


async def test_stream_stalling_after_first_chunks_ends_with_an_error_event(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    stack = await start_gateway(
        nursery, sims, tmp_path / "ledger.db", backend={"local": {"idle_s": 0.5}}
    )
    local = stack.sim("local")
    local.set_knobs("small", reply="one two three four five six", tokens_per_s=20, stall_after=3)
    client = stack.client(timeout=30)
    received: list[str] = []
    with trio.fail_after(10):
        chunks = await client.chat.completions.create(model="small", messages=HELLO, stream=True)
        with pytest.raises(openai.APIError, match="stalled"):
            async for chunk in chunks:
                assert chunk.model == "small"
                received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received) == "one two three"
    assert local.stats.faults["stall"] == 1
    # Nothing from another model: no candidate was asked once bytes had gone out.
    assert local.stats.by_model == {"small": 1}
    assert stack.sim("lan").stats.by_path[CHAT] == stack.sim("cloud").stats.by_path[CHAT] == 0
    with trio.fail_after(5):  # the gateway hung up on the stalled upstream
        await local.wait_until(lambda s: s.open_streams == 0)
    (row,) = await stack.rows()
    assert (row.status, row.chosen_model, row.stream) == (504, "small", True)
    assert row.error is not None and "stalled" in row.error


# -- 5. every backend down, then one comes back -----------------------------------------


async def test_all_backends_down_then_one_returns_within_a_health_interval(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    interval = 1.0
    servers = SimServers(nursery)
    sims = await servers.start_all()
    stack = await start_gateway(
        nursery,
        sims,
        tmp_path / "ledger.db",
        health={"interval_s": interval, "failures_to_down": 1, "timeout_s": 0.5},
    )
    body = {"model": "small", "messages": HELLO}
    seen: list[tuple[int, str]] = []  # (status, request id) of every answer

    async with stack.http() as http:

        async def ask() -> httpx.Response:
            r = await http.post(CHAT, json=body)
            seen.append((r.status_code, r.headers["x-request-id"]))
            return r

        with trio.fail_after(10):
            assert (await ask()).status_code == 200
            for name in list(servers.running):
                await servers.stop(name)
            # Until health has marked every backend down, requests may still try them (all
            # failing upstream); then there is no candidate left. Both are the exhaustion
            # status (503).
            while True:
                r = await ask()
                assert r.status_code == 503, r.text
                code = r.json()["error"]["code"]
                assert code in ("upstream_failed", "no_candidates")
                if code == "no_candidates":
                    break
                await trio.sleep(0.05)
            assert {e["model"] for e in r.json()["error"]["excluded"]} == {
                "small",
                "coder",
                "big",
            }
            async with trio.open_nursery() as checks:  # still down a little later
                for _ in range(3):
                    checks.start_soon(ask)
            assert [s for s, _ in seen[-3:]] == [503, 503, 503]

            await servers.restart("local")
            back_at = trio.current_time()
            while True:
                if (await ask()).status_code == 200:
                    break
                await trio.sleep(0.05)
            gap = trio.current_time() - back_at
    assert gap < 3 * interval, f"served again {gap:.2f}s after the backend came back"
    rows = await stack.rows()
    assert sorted((r.status, r.request_id) for r in rows) == sorted(seen)
    assert rows[-1].chosen_model == "small"


# -- the gateway as a subprocess --------------------------------------------------------


def write_config(path: Path, sim_url: str, port: int, db: Path, grace_s: float = 20) -> None:
    path.write_text(
        f"""
[server]
port = {port}
grace_s = {grace_s}
[store]
path = "{db}"
[health]
interval_s = 60
[[backends]]
name = "local"
base_url = "{sim_url}"
[[models]]
id = "small"
backend = "local"
quality = 50
""",
        encoding="utf-8",
    )


async def open_gateway(argv: list[str], log: Path) -> trio.Process:
    with log.open("ab") as err:
        return await trio.lowlevel.open_process(
            [sys.executable, *argv],
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


async def wait_until_serving(url: str, proc: trio.Process, log: Path) -> None:
    async with httpx.AsyncClient() as http:
        with trio.fail_after(30):
            while True:
                assert proc.returncode is None, "gateway exited at start-up:\n" + read(log)
                try:
                    if (await http.get(url + "/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.05)


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


async def stop_process(proc: trio.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def db_rows(db: Path) -> list[RequestRow]:
    async with open_db(db) as conn:
        return await recent_rows(conn, 100_000)


# -- 6. an actor crash-looping past its restart intensity -------------------------------

CRASHING_GATEWAY = """
import sys

from llmswitch.actors.classifier import ClassifierActor
from llmswitch.cli import main
from llmswitch.runtime.restarts import RestartPolicy


async def crash(self, msg):
    raise RuntimeError("injected classifier crash")


ClassifierActor.handle = crash
# RestartPolicy() is built with its defaults: allow 2 restarts within 60 s.
defaults = RestartPolicy.__init__.__defaults__
RestartPolicy.__init__.__defaults__ = (2, 60.0, *defaults[2:])
assert (RestartPolicy().max_restarts, RestartPolicy().window_s) == (2, 60.0)
sys.exit(main(["serve", "--config", sys.argv[1]]))
"""


@pytest.mark.slow
async def test_actor_crash_looping_exits_3_with_the_ledger_intact(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    port, db = closed_port(), tmp_path / "ledger.db"
    config, log = tmp_path / "llmswitch.toml", tmp_path / "gateway.log"
    write_config(config, sims["local"].openai_base_url, port, db)
    wrapper = tmp_path / "crashing_gateway.py"
    wrapper.write_text(CRASHING_GATEWAY, encoding="utf-8")
    proc = await open_gateway([str(wrapper), str(config)], log)
    url = f"http://127.0.0.1:{port}"
    answered: dict[str, int] = {}  # request id → status, for every request that got an answer
    try:
        await wait_until_serving(url, proc, log)
        # A fresh connection per request: a pooled one is caught by the drain's keep-alive
        # problem (see the xfail tests below) and would hold the exit for grace_s.
        no_pool = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=10, limits=no_pool) as http:

            async def ask(model_name: str, text: str) -> int:
                body = {"model": model_name, "messages": [{"role": "user", "content": text}]}
                r = await http.post(CHAT, json=body)
                answered[r.headers["x-request-id"]] = r.status_code
                return r.status_code

            with trio.fail_after(10):  # well inside grace_s (20 s): no request is left over
                for _ in range(5):  # a named model: the classifier is not asked
                    assert await ask("small", "hello there") == 200
                # `auto` with a real question goes to the classifier, which crashes each time;
                # the router classifies inline meanwhile, so these requests still succeed.
                auto_requests = 0
                while proc.returncode is None:
                    try:
                        status = await ask("auto", "explain how a B-tree index stays balanced")
                    except httpx.TransportError:
                        break  # the gateway stopped accepting
                    assert status in (200, 503)
                    auto_requests += 1
                    await trio.sleep(0.1)
                code = await proc.wait()
    finally:
        await stop_process(proc)
    text = read(log)
    assert code == 3, text
    assert "supervisor gives up" in text and "injected classifier crash" in text
    assert auto_requests >= 1  # the crashes needed to give up: at least one, maybe more
    rows = await db_rows(db)
    stored = {r.request_id: r.status for r in rows}
    missing = answered.keys() - stored.keys()
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no row"
    assert all(stored[i] == s for i, s in answered.items())


# -- 7. the database locked by another process ------------------------------------------

# Holds the write lock until the test writes a line (or closes stdin), so "served while the
# lock was held" does not depend on how fast a loaded machine serves.
LOCKER = """
import sqlite3, sys

conn = sqlite3.connect(sys.argv[1], timeout=5, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


async def test_ledger_database_locked_by_another_process(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    stack = await start_gateway(nursery, sims, tmp_path / "ledger.db")
    client = stack.client(timeout=30)
    await client.chat.completions.create(model="small", messages=HELLO)
    await stack.rows()  # the database exists, with one row

    locker = await trio.lowlevel.open_process(
        [sys.executable, "-c", LOCKER, str(stack.db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert locker.stdin is not None and locker.stdout is not None
        with trio.fail_after(10):
            out = b""
            while b"locked\n" not in out:
                data = await locker.stdout.receive_some()
                assert data, "the locker exited without locking"
                out += data
        # Confirm from here too: a writer cannot get in.
        probe = sqlite3.connect(stack.db_path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
        finally:
            probe.close()

        acked: list[str] = []

        async def one() -> None:
            raw = await client.chat.completions.with_raw_response.create(
                model="small", messages=HELLO
            )
            assert raw.parse().choices[0].message.content == ECHO
            acked.append(raw.headers["x-request-id"])

        with trio.fail_after(10):
            async with trio.open_nursery() as requests:
                for _ in range(20):
                    requests.start_soon(one)
        assert len(acked) == 20
        # They were served while the lock was held: no request waited for the database.
        assert locker.returncode is None
        await locker.stdin.send_all(b"release\n")
        with trio.fail_after(10):
            assert await locker.wait() == 0
    finally:
        await stop_process(locker)
    rows = await stack.rows()
    assert len(rows) == 21
    assert set(acked) <= {r.request_id for r in rows}
    assert all(r.status == 200 for r in rows)


# -- 8. SIGTERM with 100 streams in flight ----------------------------------------------


@pytest.mark.slow
async def test_sigterm_with_100_streams_in_flight(nursery: trio.Nursery, tmp_path: Path) -> None:
    streams = 100
    servers = SimServers(nursery)
    # 30 tokens at 10 per second, held after the first one until SIGTERM is under way:
    # all 100 streams are in flight when it lands, however slowly the machine starts them.
    sims = await servers.start_all(ModelKnobs(tokens_per_s=10, reply="tok " * 30))
    sims["local"].sim.hold_streams()
    port, db = closed_port(), tmp_path / "ledger.db"
    config, log = tmp_path / "llmswitch.toml", tmp_path / "gateway.log"
    write_config(config, sims["local"].openai_base_url, port, db)
    proc = await open_gateway(["-m", "llmswitch", "serve", "--config", str(config)], log)
    url = f"http://127.0.0.1:{port}"
    finished: list[str] = []
    try:
        await wait_until_serving(url, proc, log)
        first_bytes = trio.Semaphore(0)
        body = {"model": "small", "stream": True, "messages": HELLO}
        limits = httpx.Limits(max_connections=streams + 50)

        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:

            async def stream_one() -> None:
                async with http.stream("POST", CHAT, json=body) as r:
                    assert r.status_code == 200
                    request_id = r.headers["x-request-id"]
                    data = b""
                    async for chunk in r.aiter_raw():
                        if not data:
                            first_bytes.release()
                        data += chunk
                events = [e for e in data.split(b"\n\n") if e.startswith(b"data: ")]
                assert events[-1] == b"data: [DONE]"
                text = "".join(
                    json.loads(e[6:])["choices"][0]["delta"].get("content") or ""
                    for e in events[:-1]
                    if json.loads(e[6:])["choices"]
                )
                assert text == "tok " * 30
                finished.append(request_id)

            with trio.fail_after(60):
                async with trio.open_nursery() as clients:
                    for _ in range(streams):
                        clients.start_soon(stream_one)
                    for _ in range(streams):
                        await first_bytes.acquire()
                    assert stack_open_streams(sims) == streams
                    proc.send_signal(signal.SIGTERM)
                    while "draining for up to" not in read(log):  # noqa: ASYNC110 (a file)
                        await trio.sleep(0.05)
                    sims["local"].sim.release_streams()
        with trio.fail_after(30):
            code = await proc.wait()
    finally:
        await stop_process(proc)
    assert len(finished) == streams
    assert code == 0, read(log)
    rows = await db_rows(db)
    assert len(rows) == streams
    assert {r.request_id for r in rows} == set(finished)
    assert all(r.status == 200 and r.stream for r in rows)


def stack_open_streams(sims: dict[str, RunningSim]) -> int:
    return sims["local"].sim.stats.open_streams


# -- 9. SIGKILL mid-load, then a restart on the same database ---------------------------


@pytest.mark.slow
async def test_sigkill_mid_load_loses_no_acknowledged_row(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    servers = SimServers(nursery)
    sims = await servers.start_all()
    db = tmp_path / "ledger.db"
    config, log = tmp_path / "llmswitch.toml", tmp_path / "gateway.log"
    port = closed_port()
    # The shipped store defaults (flush_interval_s 0.25), not the tests' quick flushes.
    write_config(config, sims["local"].openai_base_url, port, db)
    argv = ["-m", "llmswitch", "serve", "--config", str(config)]
    proc = await open_gateway(argv, log)
    kill_after = random.uniform(0.5, 1.5)
    acked: list[str] = []
    try:
        await wait_until_serving(f"http://127.0.0.1:{port}", proc, log)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

            async def send_sequentially() -> None:
                body = {"model": "small", "messages": HELLO}
                for _ in range(10_000):
                    try:
                        r = await http.post(CHAT, json=body)
                    except httpx.TransportError:
                        return  # killed mid-request: not acknowledged
                    assert r.status_code == 200
                    assert r.json()["choices"][0]["message"]["content"] == ECHO
                    acked.append(r.headers["x-request-id"])

            with trio.fail_after(20):
                async with trio.open_nursery() as load:
                    load.start_soon(send_sequentially)
                    await trio.sleep(kill_after)
                    proc.kill()  # SIGKILL: no drain, no final flush
                    assert await proc.wait() == -signal.SIGKILL
    finally:
        await stop_process(proc)
    assert len(acked) >= 10, "too few requests before the kill to say anything"

    # Restart on the same database, let it start up, then stop it cleanly.
    port = closed_port()
    write_config(config, sims["local"].openai_base_url, port, db)
    proc = await open_gateway(argv, log)
    try:
        await wait_until_serving(f"http://127.0.0.1:{port}", proc, log)
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            assert await proc.wait() == 0, read(log)
    finally:
        await stop_process(proc)
    stored = [r.request_id for r in await db_rows(db)]
    assert len(stored) == len(set(stored)), "a row was stored twice"
    missing = set(acked) - set(stored)
    assert not missing, (
        f"SIGKILL after {kill_after:.2f}s lost {len(missing)} of {len(acked)} acknowledged rows"
    )
    # At most the request in flight at the kill has a row its client never saw.
    assert len(set(stored) - set(acked)) <= 1


# -- the drain and a client's pooled keep-alive connections -----------------------------
# Found while writing the crash-loop test: hypercorn keeps idle keep-alive connections open
# through the drain, so any client with a connection pool (every SDK) holds the exit for
# the whole grace_s, and a request sent on a pooled connection whose previous response
# finished during the drain is never answered.

KEEPALIVE_GRACE_S = 6


async def start_subprocess_gateway(
    nursery: trio.Nursery, tmp_path: Path, knobs: ModelKnobs
) -> tuple[trio.Process, str, Path]:
    servers = SimServers(nursery)
    sims = await servers.start_all(knobs)
    port, db = closed_port(), tmp_path / "ledger.db"
    config, log = tmp_path / "llmswitch.toml", tmp_path / "gateway.log"
    write_config(config, sims["local"].openai_base_url, port, db, grace_s=KEEPALIVE_GRACE_S)
    proc = await open_gateway(["-m", "llmswitch", "serve", "--config", str(config)], log)
    url = f"http://127.0.0.1:{port}"
    await wait_until_serving(url, proc, log)
    return proc, url, log


@pytest.mark.slow
async def test_sigterm_exits_promptly_with_an_idle_pooled_connection(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    proc, url, _log = await start_subprocess_gateway(nursery, tmp_path, ModelKnobs())
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            r = await http.post(CHAT, json={"model": "small", "messages": HELLO})
            assert r.status_code == 200
            # The client keeps its connection in its pool, idle, as SDK clients do.
            proc.send_signal(signal.SIGTERM)
            signalled = trio.current_time()
            with trio.move_on_after(KEEPALIVE_GRACE_S + 5):
                await proc.wait()
            took = trio.current_time() - signalled
    finally:
        await stop_process(proc)
    assert proc.returncode == 0
    assert took < KEEPALIVE_GRACE_S / 2, f"exit took {took:.1f}s with nothing in flight"


@pytest.mark.slow
async def test_request_on_a_pooled_connection_during_the_drain_is_not_left_hanging(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    proc, url, _log = await start_subprocess_gateway(nursery, tmp_path, ModelKnobs(ttft_s=0.5))
    body = {"model": "small", "messages": HELLO}
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            async with trio.open_nursery() as n:

                async def sigterm_soon() -> None:
                    await trio.sleep(0.2)
                    proc.send_signal(signal.SIGTERM)

                n.start_soon(sigterm_soon)
                first = await http.post(CHAT, json=body)  # in flight when SIGTERM lands
            assert first.status_code == 200
            # Either an answer or a prompt error the client can act on (retry elsewhere);
            # not a request left unanswered until the grace period ends.
            started = trio.current_time()
            with trio.move_on_after(KEEPALIVE_GRACE_S + 5):
                with contextlib.suppress(httpx.TransportError):
                    await http.post(CHAT, json=body)
            took = trio.current_time() - started
        with trio.fail_after(KEEPALIVE_GRACE_S + 5):
            await proc.wait()
    finally:
        await stop_process(proc)
    assert took < 2, f"the request on the pooled connection waited {took:.1f}s"
