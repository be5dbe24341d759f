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
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import trio

from llmswitch.sim.knobs import ModelKnobs
from llmswitch.sim.server import RunningSim
from tests.e2e.harness import (
    closed_port,
    fleet_config,
    fleet_prefix,
    serving_process,
    start_sims,
    wait_until_serving,
    write_config,
)

OPS = Path(__file__).resolve().parents[2] / "ops" / "pair"
#: Requests in flight at once, and how many must succeed after the kill.
CONCURRENCY = 4
AFTER_KILL = 24
#: A request begun this long after the kill must not fail: by then the kernel has closed
#: the dead instance's sockets, and a proxy has seen its idle connections end.
SETTLE_S = 1.0


@dataclass
class Pair:
    urls: list[str]
    procs: list[trio.Process]


@asynccontextmanager
async def running_pair(
    sims: dict[str, RunningSim], tmp_path: Path, **sections: Any
) -> AsyncIterator[Pair]:
    """Instances a and b, one fleet in Redis, each with its own store (two hosts' worth);
    ``sections`` go into both configs."""
    prefix, ports = fleet_prefix(), [closed_port(), closed_port()]
    async with AsyncExitStack() as stack:
        procs = []
        for name, port in zip("ab", ports, strict=True):
            config = tmp_path / f"{name}.toml"
            db = tmp_path / f"{name}.db"
            write_config(config, fleet_config(sims, port, db, prefix, **sections))
            procs.append(await stack.enter_async_context(serving_process(config)))
        pair = Pair([f"http://127.0.0.1:{port}" for port in ports], procs)
        for url, proc in zip(pair.urls, procs, strict=True):
            await wait_until_serving(url, proc)
        yield pair


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)


async def ask(c: openai.AsyncOpenAI) -> str:
    answer = await c.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hello"}]
    )
    return answer.choices[0].message.content or ""


@dataclass
class Outcome:
    after_kill: bool
    ok: bool


async def load_and_kill(
    ask_once: Callable[[], Any], victim: trio.Process, kill_after: int
) -> list[Outcome]:
    """Requests, CONCURRENCY at a time; SIGKILL ``victim`` after ``kill_after`` answers,
    then go on until AFTER_KILL requests begun SETTLE_S after the kill have ended."""
    outcomes: list[Outcome] = []
    killed_at: float | None = None

    def settled() -> int:
        return sum(o.after_kill for o in outcomes)

    async def one_loop() -> None:
        nonlocal killed_at
        while settled() < AFTER_KILL:
            began = trio.current_time()
            after = killed_at is not None and began >= killed_at + SETTLE_S
            try:
                await ask_once()
                ok = True
            except (openai.APIConnectionError, openai.APIStatusError):
                ok = False
            outcomes.append(Outcome(after, ok))
            if killed_at is None and len(outcomes) >= kill_after:
                victim.send_signal(signal.SIGKILL)
                killed_at = trio.current_time()

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            for _ in range(CONCURRENCY):
                nursery.start_soon(one_loop)
    return outcomes


async def test_a_client_with_two_base_urls_carries_on_when_one_instance_is_killed(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    sims = await start_sims(nursery, ModelKnobs(ttft_s=0.05))
    async with running_pair(sims, tmp_path) as pair:
        first, second = client(pair.urls[0]), client(pair.urls[1])

        async def either() -> str:
            # The client's own fallback: the first base URL, else the second.
            try:
                return await ask(first)
            except openai.APIConnectionError:
                return await ask(second)

        outcomes = await load_and_kill(either, pair.procs[0], kill_after=12)
        # Not one request failed, not even those a was answering when it died.
        assert all(o.ok for o in outcomes)
        assert await pair.procs[0].wait() == -signal.SIGKILL
        assert (await debug(pair.urls[1]))["cluster"]["state"] == "up"
        await first.close()
        await second.close()


async def debug(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        data: dict[str, Any] = (await http.get(url + "/debug")).json()
        return data


RPM = 6


async def test_the_survivor_keeps_the_pairs_rate_limit_and_sees_its_peer_gone(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDE_KEY", "sk-ide-pair-test")  # the instances inherit it
    sims = await start_sims(nursery)
    ide = [{"name": "ide", "key_env": "IDE_KEY", "rpm": RPM}]
    async with running_pair(sims, tmp_path, clients=ide) as pair:
        a, b = (
            openai.AsyncOpenAI(base_url=u + "/v1", api_key="sk-ide-pair-test", max_retries=0)
            for u in pair.urls
        )
        began = trio.current_time()
        for _ in range(4):
            await ask(a)  # 4 of the key's 6 a minute, on a
        victim = (await debug(pair.urls[0]))["fleet"]["id"]
        pair.procs[0].send_signal(signal.SIGKILL)
        await pair.procs[0].wait()

        statuses = []
        for _ in range(RPM):
            try:
                await ask(b)
                statuses.append(200)
            except openai.RateLimitError as exc:
                statuses.append(exc.status_code)
        # b knows what a took: 2 are left, plus what the bucket refilled meanwhile (one
        # request per 60/RPM s); on its own, b would have granted all 6.
        refilled = math.ceil((trio.current_time() - began) * RPM / 60)
        assert 1 <= statuses.count(200) <= RPM - 4 + refilled
        assert statuses.count(429) == RPM - statuses.count(200)

        # b's /debug shows a gone, once its presence has expired (5 s).
        with trio.fail_after(30):
            while True:
                peers = {p["id"]: p["state"] for p in (await debug(pair.urls[1]))["fleet"]["peers"]}
                if peers.get(victim) == "gone":
                    break
                await trio.sleep(0.5)
        await a.close()
        await b.close()


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


@pytest.mark.parametrize("front", sorted(FRONTS))
async def test_a_proxy_with_the_shipped_snippet_survives_a_killed_instance(
    nursery: trio.Nursery, tmp_path: Path, front: str
) -> None:
    binary = installed(front)
    if binary is None:
        pytest.skip(f"no {front}: apt-get install {front} (.ci/run installs it)")
    sims = await start_sims(nursery, ModelKnobs(ttft_s=0.05))
    async with running_pair(sims, tmp_path) as pair:
        proxy_port = closed_port()
        argv = FRONTS[front](tmp_path, proxy_port, pair)
        with (tmp_path / f"{front}.log").open("wb") as log:
            proxy = await trio.lowlevel.open_process(
                [binary, *argv[1:]], stdout=log, stderr=subprocess.STDOUT, env=os.environ
            )
        url = f"http://127.0.0.1:{proxy_port}"
        try:
            await wait_until_serving(url)
            through = client(url)
            outcomes = await load_and_kill(lambda: ask(through), pair.procs[0], kill_after=12)
            await through.close()
        finally:
            proxy.kill()
            await proxy.wait()
    # Only requests a was answering when it died may fail (the proxy does not send a POST
    # that reached one instance to the other); every later one is served by b.
    assert sum(not o.ok for o in outcomes) <= CONCURRENCY
    assert all(o.ok for o in outcomes if o.after_kill)
