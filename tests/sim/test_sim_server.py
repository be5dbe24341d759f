"""Serving helpers: ephemeral ports, several backends at once, stop on cancel, the CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
from functools import partial
from typing import Any

import httpx
import openai
import pytest
import trio

from llmswitch.sim import ModelKnobs, RunningSim, SimBackend, SimSpec, run_sims, serve_sim
from llmswitch.sim.__main__ import backend_from_args, build_parser

USER: Any = [{"role": "user", "content": "ping"}]


async def test_run_sims_starts_each_backend(nursery: trio.Nursery) -> None:
    specs = [
        SimSpec("local", ["tiny"], knobs=ModelKnobs(reply="local says hi")),
        SimSpec("cloud", ["huge", "huger"], model_knobs={"huger": {"reply": "expensive"}}),
    ]
    running: dict[str, RunningSim] = await nursery.start(run_sims, specs)

    assert set(running) == {"local", "cloud"}
    assert running["local"].port != running["cloud"].port
    async with httpx.AsyncClient() as http:
        for name, expected in [("local", ["tiny"]), ("cloud", ["huge", "huger"])]:
            listed = (await http.get(running[name].openai_base_url + "/models")).json()
            assert [m["id"] for m in listed["data"]] == expected
    async with openai.AsyncOpenAI(
        base_url=running["cloud"].openai_base_url, api_key="x", max_retries=0
    ) as client:
        out = await client.chat.completions.create(model="huger", messages=USER)
    assert out.choices[0].message.content == "expensive"
    assert running["local"].sim.stats.total == 1
    assert running["cloud"].sim.stats.total == 2


async def test_run_sims_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="unique"):
        await run_sims([SimSpec("a", ["m"]), SimSpec("a", ["n"])])


async def test_serve_sim_stops_when_cancelled_and_port_can_be_reused() -> None:
    sim = SimBackend(["m"])
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            running: RunningSim = await nursery.start(serve_sim, sim)
            async with httpx.AsyncClient() as http:
                assert (await http.get(running.base_url + "/")).status_code == 200
            nursery.cancel_scope.cancel()

        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(running.base_url + "/")

        # A backend "comes back" on the same port.
        async with trio.open_nursery() as nursery:
            again: RunningSim = await nursery.start(serve_sim, sim, "127.0.0.1", running.port)
            async with httpx.AsyncClient() as http:
                assert (await http.get(again.base_url + "/v1/models")).status_code == 200
            nursery.cancel_scope.cancel()
    assert again.port == running.port
    assert sim.stats.total == 2


def test_cli_arguments_build_the_backend() -> None:
    argv = "--port 9001 --model qwen-small --model big-model --ttft 0.05 --tps 50"
    args = build_parser().parse_args([*argv.split(), "--error-rate", "0.1", "--seed", "3"])
    sim = backend_from_args(args)
    assert args.port == 9001
    assert sim.models == ("qwen-small", "big-model")
    assert sim.default_knobs == ModelKnobs(ttft_s=0.05, tokens_per_s=50, error_rate=0.1)


@pytest.mark.slow
async def test_cli_serves_until_sigint() -> None:
    command = [sys.executable, "-m", "llmswitch.sim", "--model", "cli-model", "--reply", "ok"]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(trio.run_process, command, stdout=subprocess.PIPE, check=False)
            )
            assert process.stdout is not None
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive_some(4096)
            base_url = line.decode().split(" on ")[1].split()[0]
            async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as c:
                out = await c.chat.completions.create(model="cli-model", messages=USER)
            assert out.choices[0].message.content == "ok"
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
