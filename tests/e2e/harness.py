"""A real stack for end-to-end tests: simulators and the gateway on loopback ports.

Everything runs in the test's own trio loop over real sockets (httpx's ASGITransport
would buffer whole bodies and hide streaming and disconnect behaviour).
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import tomli_w
import trio

from llmswitch.actors.ledger import Flush
from llmswitch.config import Config, parse_config
from llmswitch.gateway import Gateway
from llmswitch.main import run_gateway
from llmswitch.sim.backend import SimBackend
from llmswitch.sim.knobs import ModelKnobs
from llmswitch.sim.server import RunningSim, serve_sim
from llmswitch.store.db import open_db
from llmswitch.store.request_log import RequestRow, recent_rows

# Three localities and a few models, like the demo, but answering instantly.
SIM_MODELS = {
    "local": ["small", "medium"],
    "lan": ["coder"],
    "cloud": ["big"],
}


def closed_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def model(id_: str, backend: str, quality: int, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "backend": backend, "quality": quality, **extra}


def default_models() -> list[dict[str, Any]]:
    return [
        model("small", "local", 20, aliases=["fast"], fallbacks=["medium"]),
        model("medium", "local", 45),
        model("coder", "lan", 60),
        model("big", "cloud", 90, cost_input_per_mtok=1.0, cost_output_per_mtok=2.0),
    ]


@dataclass
class Stack:
    gw: Gateway
    url: str
    sims: dict[str, RunningSim]
    db_path: Path

    def client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key="test", max_retries=0, **kwargs
        )

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    def sim(self, name: str) -> SimBackend:
        return self.sims[name].sim

    async def rows(self) -> list[RequestRow]:
        """Every ledger row, after flushing what is pending."""
        await self.gw.ledger.call(Flush(), timeout=10)
        async with open_db(self.db_path) as db:
            return list(reversed(await recent_rows(db, 100_000)))


def stack_config(
    sims: dict[str, RunningSim],
    db_path: Path,
    *,
    models: list[dict[str, Any]] | None = None,
    extra_backends: list[dict[str, Any]] | None = None,
    wires: Mapping[str, str] = {},
    key_envs: Mapping[str, str] = {},
    **sections: Any,
) -> Config:
    backends = [
        {
            "name": name,
            "kind": wires.get(name, "openai"),
            "base_url": base_url(running, wires.get(name, "openai")),
            "locality": name,
            "first_token_s": 5,
            "idle_s": 5,
            "total_s": 10,
        }
        | ({"api_key_env": key_envs[name]} if name in key_envs else {})
        for name, running in sims.items()
    ] + (extra_backends or [])
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "grace_s": 10},
        "store": {"path": str(db_path), "flush_interval_s": 0.05},
        "health": {"interval_s": 60},
        "backends": backends,
        "models": models if models is not None else default_models(),
    }
    for key, value in sections.items():
        data[key] = value
    return parse_config(data, source="test")


#: Every machine here and in CI runs it (.ci/run starts one if not); tests take a prefix.
SYSTEM_REDIS = "redis://127.0.0.1:6379/0"


def fleet_prefix() -> str:
    """A Redis key prefix of the test's own, so tests share the system Redis safely."""
    return f"llmswitch-test-{uuid.uuid4().hex}"


def fleet_config(
    sims: dict[str, RunningSim],
    port: int,
    db_path: Path,
    prefix: str,
    server: Mapping[str, Any] = {},
    **sections: Any,
) -> Config:
    """The stack's config on a fixed port, in the fleet ``prefix`` on the system Redis;
    ``server`` adds to its [server], ``sections`` as in :func:`stack_config`."""
    return stack_config(
        sims,
        db_path,
        server={"host": "127.0.0.1", "port": port, "grace_s": 20, **server},
        cluster={"redis_url": SYSTEM_REDIS, "prefix": prefix},
        **sections,
    )


async def start_sims(
    nursery: trio.Nursery, knobs: ModelKnobs | None = None, wires: Mapping[str, str] = {}
) -> dict[str, RunningSim]:
    """One simulator per locality; ``wires`` picks a backend's wire format (default openai)."""
    sims: dict[str, RunningSim] = {}
    for name, models in SIM_MODELS.items():
        backend = SimBackend(models, name=name, knobs=knobs or ModelKnobs(), seed=1)
        kind = wires.get(name, "openai")
        sims[name] = await nursery.start(partial(serve_sim, backend, wire=SIM_WIRE.get(kind, kind)))
    return sims


# Ollama's chat is its OpenAI-compatible /v1, which the OpenAI simulator serves with /api/tags.
SIM_WIRE = {"ollama": "openai"}


def base_url(running: RunningSim, wire: str) -> str:
    return running.base_url + "/v1beta" if wire == "gemini" else running.openai_base_url


def write_config(path: Path, config: Config) -> None:
    """``config`` as a TOML file that loads back to it (what a reload reads)."""
    path.write_text(tomli_w.dumps(config.model_dump(mode="json", exclude_none=True)), "utf-8")


async def start_stack(
    nursery: trio.Nursery,
    tmp_path: Path,
    knobs: ModelKnobs | None = None,
    wires: Mapping[str, str] = {},
    config_file: Path | None = None,
    **config: Any,
) -> Stack:
    """The stack; with ``config_file``, its config is written there first, for reloads."""
    sims = await start_sims(nursery, knobs, wires)
    db_path = tmp_path / "ledger.db"
    cfg = stack_config(sims, db_path, wires=wires, **config)
    if config_file is not None:
        write_config(config_file, cfg)
    path = None if config_file is None else str(config_file)
    gw, url = await nursery.start(
        lambda task_status: run_gateway(
            cfg, config_path=path, handle_signals=False, task_status=task_status
        )
    )
    return Stack(gw, url, sims, db_path)


@asynccontextmanager
async def serving_process(config_file: Path) -> AsyncIterator[trio.Process]:
    """``llmswitch serve --config config_file`` as a process, killed if the test leaves it
    running (a worker parent's workers then drain and exit: their pipe from it ends)."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "llmswitch", "serve", "--config", str(config_file)],
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def wait_until_serving(url: str, proc: trio.Process | None = None) -> None:
    """Until ``url``'s /health answers 200 (ready); ``proc`` must not exit meanwhile."""
    async with httpx.AsyncClient(timeout=5) as http:
        with trio.fail_after(60):
            while True:
                assert proc is None or proc.returncode is None, "exited during start-up"
                try:
                    if (await http.get(url + "/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)
