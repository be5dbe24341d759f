"""Redis for the fleet's tests: a prefix of their own on the system Redis, or a private
redis-server to kill and restart (never the system's)."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import coredis
import trio

from tests.e2e.harness import closed_port

SYSTEM_REDIS = "redis://127.0.0.1:6379/0"


def test_prefix() -> str:
    return f"llmswitch-test-{uuid.uuid4().hex[:12]}"


test_prefix.__test__ = False  # type: ignore[attr-defined]


@asynccontextmanager
async def own_prefix() -> AsyncIterator[str]:
    """A fresh prefix on the system Redis; its keys are deleted afterwards."""
    prefix = test_prefix()
    try:
        yield prefix
    finally:
        with trio.move_on_after(5) as cleanup:
            cleanup.shield = True
            async with coredis.Redis.from_url(SYSTEM_REDIS, decode_responses=True) as r:
                keys = [k async for k in r.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await r.delete(keys)


class RedisServer:
    """A private redis-server on a free loopback port; with ``data_dir``, it keeps its
    data across a SIGKILL (an append-only file synced on every write), as a production
    Redis configured for it would."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.port = closed_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = data_dir
        self._proc: trio.Process | None = None

    async def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        if self._dir is None:
            args += ["--appendonly", "no"]
        else:
            args += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self._dir)]
        self._proc = await trio.lowlevel.open_process(
            ["redis-server", *args], stdout=subprocess.DEVNULL
        )
        with trio.fail_after(10):
            while not await self._pong():  # noqa: ASYNC110 (a server, not an event)
                await trio.sleep(0.05)

    async def _pong(self) -> bool:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        except OSError:
            return False
        async with stream:
            await stream.send_all(b"PING\r\n")
            return (await stream.receive_some(16)).startswith(b"+PONG")

    def pause(self) -> None:
        """SIGSTOP: a Redis that hangs, its connections open and silent."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    async def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as in a crash."""
        if self._proc is not None:
            self._proc.kill()
            with trio.move_on_after(10) as waiting:
                waiting.shield = True
                await self._proc.wait()
            self._proc = None


@asynccontextmanager
async def redis_server(data_dir: Path | None = None) -> AsyncIterator[RedisServer]:
    server = RedisServer(data_dir)
    try:
        yield server
    finally:
        await server.kill()
