"""Fixtures: a simulator on an ephemeral loopback port, and clients pointed at it.

A test module picks the wire format by overriding ``sim_wire`` (and ``sim`` for its models).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import httpx
import openai
import pytest
import trio

from llmswitch.sim import RunningSim, SimBackend, serve_sim


@pytest.fixture
def sim() -> SimBackend:
    return SimBackend(["qwen-small", "big-model"], name="test", seed=1)


@pytest.fixture
def sim_wire() -> str:
    return "openai"


@pytest.fixture
async def running(nursery: trio.Nursery, sim: SimBackend, sim_wire: str) -> RunningSim:
    started: RunningSim = await nursery.start(partial(serve_sim, sim, wire=sim_wire))
    return started


@pytest.fixture
async def client(running: RunningSim) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=running.openai_base_url, api_key="x", max_retries=0, timeout=10
    ) as sdk:
        yield sdk


@pytest.fixture
async def http(running: RunningSim) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.base_url, timeout=10) as raw:
        yield raw
