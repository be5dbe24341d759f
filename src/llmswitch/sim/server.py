"""Serve simulated backends on real sockets with hypercorn's trio worker.

Real sockets matter: httpx's ASGITransport buffers whole bodies, so streaming,
disconnect and cut-connection behaviour can only be tested over loopback TCP.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from .anthropic_app import AnthropicSimApp
from .backend import SimBackend
from .gemini_app import GeminiSimApp
from .knobs import ModelKnobs
from .openai_app import OpenAISimApp

#: The wire format a simulator speaks → its ASGI app class (one line per format).
SIM_APPS: dict[str, Callable[[SimBackend], Any]] = {
    "openai": OpenAISimApp,
    "gemini": GeminiSimApp,
    "anthropic": AnthropicSimApp,
}

# Our own logger object: handing hypercorn a Logger keeps it from reconfiguring the
# global "hypercorn.error" logger that the gateway's own server uses.
_error_log = logging.getLogger("llmswitch.sim.server")


@dataclass(frozen=True, slots=True)
class RunningSim:
    """Where a started simulator listens."""

    sim: SimBackend
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:40123 (Ollama probes, /_sim control)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The URL to give an OpenAI client: base_url + "/v1"."""
        return self.base_url + "/v1"


def make_config(host: str, port: int, graceful_timeout: float) -> Config:
    """Hypercorn config for a simulator: no access log, quick graceful shutdown."""
    config = Config()
    bind_host = f"[{host}]" if ":" in host else host
    config.bind = [f"{bind_host}:{port}"]
    config.accesslog = None
    config.errorlog = _error_log
    config.graceful_timeout = graceful_timeout
    config.keep_alive_timeout = 30
    config.backlog = 1024
    config.include_server_header = False
    return config


async def serve_sim(
    sim: SimBackend,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    graceful_timeout: float = 0.5,
    wire: str = "openai",
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[RunningSim] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve one simulator until cancelled (or shutdown_trigger returns).

    Port 0 binds an ephemeral port; `await nursery.start(serve_sim, sim)` returns the
    RunningSim with the actual port, read back from hypercorn's bound socket.
    """
    app = SIM_APPS[wire](sim)
    config = make_config(host, port, graceful_timeout)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            partial(serve, cast(Any, app), config, shutdown_trigger=shutdown_trigger)
        )
        bound_port = int(binds[0].rsplit(":", 1)[1])
        task_status.started(RunningSim(sim, host, bound_port))


@dataclass(frozen=True)
class SimSpec:
    """One simulated backend to start: its name, models, port and knobs."""

    name: str
    models: Sequence[str]
    port: int = 0
    knobs: ModelKnobs = field(default_factory=ModelKnobs)
    model_knobs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    api_key: str | None = None
    seed: int | None = None

    def build(self) -> SimBackend:
        return SimBackend(
            self.models,
            name=self.name,
            knobs=self.knobs,
            model_knobs=self.model_knobs,
            api_key=self.api_key,
            seed=self.seed,
        )


async def run_sims(
    specs: Sequence[SimSpec],
    host: str = "127.0.0.1",
    *,
    task_status: trio.TaskStatus[dict[str, RunningSim]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Start several simulated backends; report {name: RunningSim} once all listen."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"simulator names must be unique: {names}")
    async with trio.open_nursery() as nursery:
        running: dict[str, RunningSim] = {}
        for spec in specs:
            running[spec.name] = await nursery.start(
                partial(serve_sim, spec.build(), host, spec.port)
            )
        task_status.started(running)


def demo_specs(base_port: int = 0) -> list[SimSpec]:
    """Three backends for `llmswitch demo`: a fast local box, a LAN box, a cloud API.

    base_port 0 gives ephemeral ports; otherwise base_port, +1, +2.
    """

    def port(offset: int) -> int:
        return base_port + offset if base_port else 0

    return [
        SimSpec(
            "local",
            ["qwen2.5:0.5b", "llama3.2:3b"],
            port(0),
            ModelKnobs(ttft_s=0.02, tokens_per_s=150.0),
        ),
        SimSpec(
            "lan",
            ["qwen2.5-coder:14b"],
            port(1),
            ModelKnobs(ttft_s=0.08, tokens_per_s=60.0),
        ),
        SimSpec(
            "cloud",
            ["gpt-4o-mini", "gpt-4o"],
            port(2),
            ModelKnobs(ttft_s=0.3, tokens_per_s=80.0),
        ),
    ]
