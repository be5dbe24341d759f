"""The HA pair (README, Fleet): two instances on two ports sharing Redis; one is SIGKILLed
under load and the clients carry on, by their own fallback (two base URLs) or through
nginx or HAProxy in front, configured with the snippets shipped in ops/pair/.

Real ``llmswitch serve`` processes in front of the simulators, the system Redis under
the test's own prefix, and Debian's nginx and haproxy on loopback ports of the test's
own (skipped where they are not installed; .ci/run installs them).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio

from llmswitch.config import StoreConfig
from llmswitch.sim.knobs import ModelKnobs
from llmswitch.sim.server import RunningSim
from llmswitch.store import open_store
from llmswitch.store.journal import read_segment
from llmswitch.store.request_log import recent_rows
from tests.e2e.harness import (
    closed_port,
    fleet_config,
    fleet_prefix,
    model,
    serving_process,
    start_sims,
    wait_until_serving,
    write_config,
)
from tests.e2e.test_budget import HELLO, MAX_TOKENS, PRICES, WORST

OPS = Path(__file__).resolve().parents[2] / "ops" / "pair"
#: Requests in flight at once (per way in), and how many must end after the kill.
CONCURRENCY = 4
AFTER_KILL = 24
#: The rate limit of the client key "ide", a minute: the pair's, not each instance's.
RPM = 6
#: Calls to the priced model on the instance that is then killed.
METERED_CALLS = 5
#: A request begun this long after the kill must not fail: by then the kernel has closed
#: the dead instance's sockets, and a proxy has seen its idle connections end.
SETTLE_S = 1.0


@dataclass
class Pair:
    urls: list[str]
    procs: list[trio.Process]


@asynccontextmanager
async def running_pair(
    sims: dict[str, RunningSim], tmp_path: Path, store_url: str | None = None, **sections: Any
) -> AsyncIterator[Pair]:
    """Instances a and b, one fleet in Redis, each with its own SQLite store (two hosts'
    worth), or both on PostgreSQL at ``store_url``; ``sections`` go into both configs."""
    prefix, ports = fleet_prefix(), [closed_port(), closed_port()]
    async with AsyncExitStack() as stack:
        procs = []
        for name, port in zip("ab", ports, strict=True):
            config = tmp_path / f"{name}.toml"
            db = tmp_path / f"{name}.db"
            store = {"path": str(db), "flush_interval_s": 0.05}
            store |= {"url": store_url} if store_url else {}
            write_config(config, fleet_config(sims, port, db, prefix, store=store, **sections))
            procs.append(await stack.enter_async_context(serving_process(config)))
        pair = Pair([f"http://127.0.0.1:{port}" for port in ports], procs)
        for url, proc in zip(pair.urls, procs, strict=True):
            await wait_until_serving(url, proc)
        yield pair


def client(url: str, key: str = "x") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=30)


async def ask(c: openai.AsyncOpenAI) -> str:
    answer = await c.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello"}]
    )
    return answer.choices[0].message.content or ""


async def debug(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        data: dict[str, Any] = (await http.get(url + "/debug")).json()
        return data


@dataclass
class Outcome:
    via: str
    after_kill: bool
    ok: bool


async def load_and_kill(
    ways: Mapping[str, Callable[[], Awaitable[Any]]], victim: trio.Process, kill_after: int
) -> list[Outcome]:
    """Requests, CONCURRENCY at a time by each way in; SIGKILL ``victim`` after
    ``kill_after`` answers, then go on until each way has had AFTER_KILL requests begun
    SETTLE_S after the kill."""
    outcomes: list[Outcome] = []
    killed_at: float | None = None

    def settled(via: str) -> int:
        return sum(o.after_kill and o.via == via for o in outcomes)

    async def one_loop(via: str, ask_once: Callable[[], Awaitable[Any]]) -> None:
        nonlocal killed_at
        while settled(via) < AFTER_KILL:
            began = trio.current_time()
            after = killed_at is not None and began >= killed_at + SETTLE_S
            try:
                await ask_once()
                ok = True
            except (openai.APIConnectionError, openai.APIStatusError):
                ok = False
            outcomes.append(Outcome(via, after, ok))
            if killed_at is None and len(outcomes) >= kill_after:
                victim.send_signal(signal.SIGKILL)
                killed_at = trio.current_time()

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            for via, ask_once in ways.items():
                for _ in range(CONCURRENCY):
                    nursery.start_soon(one_loop, via, ask_once)
    return outcomes


async def test_one_of_a_pair_killed_under_load_costs_no_request_limit_budget_or_row(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    monkeypatch.setenv("LOAD_KEY", "sk-load-pair-test")  # the instances inherit them
    monkeypatch.setenv("IDE_KEY", "sk-ide-pair-test")
    keys = [
        {"name": "load", "key_env": "LOAD_KEY"},
        {"name": "ide", "key_env": "IDE_KEY", "rpm": RPM},
    ]
    money = {
        "models": [model("small", "local", 20), model("big", "cloud", 90, **PRICES)],
        "routing": {"metered_cloud": ["*"]},
        "budget": {"daily_usd": 100 * WORST},
    }
    sims = await start_sims(nursery, ModelKnobs(ttft_s=0.05))
    async with running_pair(sims, tmp_path, pg_url, clients=keys, **money) as pair:
        first, second = (client(url, "sk-load-pair-test") for url in pair.urls)
        ide_a, ide_b = (client(url, "sk-ide-pair-test") for url in pair.urls)
        began = trio.current_time()
        for _ in range(4):
            await ask(ide_a)  # 4 of the key's 6 a minute, on a
        for _ in range(METERED_CALLS):  # a spends on the priced model
            await first.chat.completions.create(model="big", messages=HELLO, max_tokens=MAX_TOKENS)
        spent_on_a = (await debug(pair.urls[0]))["budget"]["spent_day_usd"]
        assert spent_on_a > 0
        victim = (await debug(pair.urls[0]))["fleet"]["id"]

        async def either() -> str:
            # The client's own fallback: the first base URL, else the second.
            try:
                return await ask(first)
            except openai.APIConnectionError:
                return await ask(second)

        outcomes = await load_and_kill({"two urls": either}, pair.procs[0], kill_after=12)
        # Not one request failed, not even those a was answering when it died.
        assert all(o.ok for o in outcomes)
        assert await pair.procs[0].wait() == -signal.SIGKILL

        statuses = []
        for _ in range(RPM):
            try:
                await ask(ide_b)
                statuses.append(200)
            except openai.RateLimitError as exc:
                statuses.append(exc.status_code)
        # b knows what a took: 2 are left, plus what the bucket refilled meanwhile (one
        # request per 60/RPM s); on its own, b would have granted all 6.
        refilled = math.ceil((trio.current_time() - began) * RPM / 60)
        assert 1 <= statuses.count(200) <= RPM - 4 + refilled
        assert statuses.count(429) == RPM - statuses.count(200)
        # b counts what a spent (b spent nothing on the priced model itself).
        with trio.fail_after(10):
            while (await debug(pair.urls[1]))["budget"]["spent_day_usd"] < spent_on_a:  # noqa: ASYNC110
                await trio.sleep(0.2)

        # b's /debug shows a gone, once its presence has expired (5 s).
        with trio.fail_after(30):
            while True:
                peers = {p["id"]: p["state"] for p in (await debug(pair.urls[1]))["fleet"]["peers"]}
                if peers.get(victim) == "gone":
                    break
                await trio.sleep(0.5)
        assert (await debug(pair.urls[1]))["cluster"]["state"] == "up"
        for c in (first, second, ide_a, ide_b):
            await c.close()
        pair.procs[1].send_signal(signal.SIGTERM)  # b drains: its rows go to PostgreSQL
        with trio.fail_after(30):
            assert await pair.procs[1].wait() == 0

    # Every answer the clients got has its row: in the pair's one request log, or still
    # in a's journal (a SIGKILLed instance ships it when it starts again).
    answered = 4 + METERED_CALLS + len(outcomes) + len(statuses)
    async with open_store(StoreConfig(url=pg_url)) as pg:
        logged = {row.request_id for row in await recent_rows(pg, 100_000)}
    kept = await trio.to_thread.run_sync(journalled, tmp_path / "a.db.journal")
    assert len(logged | kept) >= answered


def journalled(directory: Path) -> set[str]:
    """The request ids of the rows still in a journal directory."""
    return {row.request_id for p in directory.glob("*.jsonl") for row in read_segment(p)}


# -- nginx and HAProxy in front, with the shipped snippets -------------------------------

#: The addresses the snippets name: the proxy, then instances a and b.
SNIPPET_ADDRESSES = ("127.0.0.1:8000", "127.0.0.1:8080", "127.0.0.1:8081")


def render(snippet: str, proxy_port: int, pair: Pair) -> str:
    """The snippet on the test's ports: every address it names must be there."""
    ports = [proxy_port, *(int(url.rsplit(":", 1)[1]) for url in pair.urls)]
    for address, port in zip(SNIPPET_ADDRESSES, ports, strict=True):
        assert snippet.count(address) == 1, f"{address} in the snippet"
        snippet = snippet.replace(address, f"127.0.0.1:{port}")
    return snippet


def nginx_conf(tmp: Path, proxy_port: int, pair: Pair) -> list[str]:
    snippet = render((OPS / "nginx.conf").read_text("utf-8"), proxy_port, pair)
    temps = " ".join(f"{kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy"))
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"daemon off;\nmaster_process off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\naccess_log off;\n{temps}\n"
        f"fastcgi_temp_path {tmp}/f; uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;\n"
        f"{snippet}\n}}\n",
        "utf-8",
    )
    return ["nginx", "-p", str(tmp), "-e", f"{tmp}/error.log", "-c", str(conf)]


def haproxy_conf(tmp: Path, proxy_port: int, pair: Pair) -> list[str]:
    snippet = render((OPS / "haproxy.cfg").read_text("utf-8"), proxy_port, pair)
    conf = tmp / "haproxy.cfg"
    conf.write_text(
        "global\n    maxconn 256\n\ndefaults\n    mode http\n    timeout connect 2s\n"
        f"    timeout client 60s\n    timeout server 60s\n\n{snippet}",
        "utf-8",
    )
    return ["haproxy", "-db", "-f", str(conf)]


FRONTS = {"nginx": nginx_conf, "haproxy": haproxy_conf}


def installed(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


async def test_nginx_and_haproxy_with_the_shipped_snippets_survive_a_killed_instance(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    binaries = {name: installed(name) for name in FRONTS}
    if None in binaries.values():
        missing = " ".join(name for name, path in binaries.items() if path is None)
        pytest.skip(f"no {missing}: apt-get install nginx-light haproxy (.ci/run does)")
    sims = await start_sims(nursery, ModelKnobs(ttft_s=0.05))
    async with running_pair(sims, tmp_path) as pair, AsyncExitStack() as proxies:
        clients: dict[str, openai.AsyncOpenAI] = {}
        for name, binary in binaries.items():
            assert binary is not None
            port, home = closed_port(), tmp_path / name
            home.mkdir()
            argv = FRONTS[name](home, port, pair)
            proxy = await proxies.enter_async_context(running(binary, argv[1:], home / "log"))
            url = f"http://127.0.0.1:{port}"
            await wait_until_serving(url, proxy)
            clients[name] = client(url)
            proxies.push_async_callback(clients[name].close)
        ways = {name: partial(ask, c) for name, c in clients.items()}
        outcomes = await load_and_kill(ways, pair.procs[0], kill_after=16)
    for name in FRONTS:
        mine = [o for o in outcomes if o.via == name]
        # Only requests a was answering when it died may fail (neither proxy sends a POST
        # that reached one instance to the other); every later one is served by b.
        assert sum(not o.ok for o in mine) <= CONCURRENCY, name
        assert all(o.ok for o in mine if o.after_kill), name


@asynccontextmanager
async def running(binary: str, args: list[str], log: Path) -> AsyncIterator[trio.Process]:
    """A proxy in the foreground, its output in ``log``; killed when the test is done."""
    with log.open("wb") as out:
        proc = await trio.lowlevel.open_process(
            [binary, *args], stdout=out, stderr=subprocess.STDOUT, env=os.environ
        )
    try:
        yield proc
    finally:
        proc.kill()
        await proc.wait()
