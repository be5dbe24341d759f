"""Several worker processes on one port (``server.workers``), and the parent that keeps them.

One process serves on one core. With ``server.workers = N`` the process started by
``llmswitch serve`` becomes a parent that serves nothing itself::

    parent: checks the config, the store and the port once, then holds the port
    ├── worker 0: a whole gateway (main.run_gateway), bound with SO_REUSEPORT
    ├── worker 1: ...                   the kernel spreads new connections over them
    └── signal watcher: SIGTERM/SIGINT → ``stop`` to every worker (a 2nd: stop now);
        SIGHUP → ``reload`` to every worker

A worker that exits when no stop was ordered is restarted after a backoff, under the
actor supervisor's rule (runtime/restarts.py): past ``max_restarts`` crashes within
``window_s`` the parent gives up, drains the others and exits 3, for systemd to start
afresh. The workers share budgets, limits, breakers, keys and settings through Redis
(``cluster.redis_url``, needed for ``workers > 1``); each has its own journal
directory (store/journal.py), names itself in its log lines and in /debug.

Orders go down a pipe (the worker's stdin), not as signals: workers ignore SIGTERM,
SIGINT and SIGHUP, because a Ctrl-C reaches the whole process group and a systemd stop
the whole cgroup, and a worker would take the parent's relay for a second signal. When
the parent dies, even by SIGKILL, the pipe ends and each worker drains and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from llmswitch.config import Config
from llmswitch.main import ORDER_RELOAD, ORDER_STOP, preflight, run_gateway
from llmswitch.runtime.restarts import (
    RestartPolicy,
    fleet_exit_code,
    gives_up,
    recent_crashes,
    restart_delay,
)

log = logging.getLogger(__name__)

#: The exit code on file for a worker that could not be started (as a shell says it).
EXIT_NOT_STARTED = 127
#: Signals a worker leaves to its parent (see the module docstring).
PARENT_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with SO_REUSEPORT, never listening: the workers'
    own sockets join it, and port 0 becomes one number for all of them.

    A plain bind first: SO_REUSEPORT alone would silently share the port with another
    fleet of the same user. EADDRINUSE is raised as a lone process would raise it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, port))
        port = probe.getsockname()[1]
    held = socket.socket(family, socket.SOCK_STREAM)
    try:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind((host, port))
    except OSError:
        held.close()
        raise
    return held


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


@dataclass(eq=False)
class WorkerSlot:
    """One worker's place in the fleet: its live process, its crashes and its end."""

    id: int
    process: trio.Process | None = None
    crashes: tuple[float, ...] = ()
    restarts: int = 0
    exit_code: int | None = None


class Fleet:
    """The parent: starts ``server.workers`` workers, restarts the ones that die."""

    def __init__(
        self,
        config: Config,
        command: Callable[[int, int], list[str]],
        policy: RestartPolicy | None = None,
    ) -> None:
        self.config = config
        self._command = command
        self.policy = policy or RestartPolicy()
        self.slots = [WorkerSlot(i) for i in range(config.server.workers)]
        self.gave_up: str | None = None
        self.stops = 0
        self._stopping = trio.Event()

    async def run(self, port: int) -> int:
        """Keep the workers until they have all ended; the parent's exit code."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._watch_signals)
            async with trio.open_nursery() as workers:
                for slot in self.slots:
                    workers.start_soon(self._keep, slot, port)
            nursery.cancel_scope.cancel()
        if self.gave_up:
            log.critical("exiting: %s", self.gave_up)
        codes = [slot.exit_code or 0 for slot in self.slots]
        return fleet_exit_code(self.gave_up is not None, codes)

    async def stop(self, why: str) -> None:
        """Order every worker to drain (a second stop: to stop now)."""
        self.stops += 1
        log.info("%s: %s the workers", why, "draining" if self.stops == 1 else "stopping")
        self._stopping.set()
        await self._tell_all(ORDER_STOP)

    async def _tell_all(self, order: bytes) -> None:
        for slot in self.slots:
            if slot.process is not None:
                await _tell(slot.process, order)

    async def _watch_signals(self, *, task_status: trio.TaskStatus[None]) -> None:
        with trio.open_signal_receiver(*PARENT_SIGNALS) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: the workers reload")
                    await self._tell_all(ORDER_RELOAD)
                else:
                    await self.stop(signal.Signals(signum).name)

    async def _keep(self, slot: WorkerSlot, port: int) -> None:
        """Run worker ``slot`` until a stop, restarting it when it dies before one."""
        while True:
            code, ended = await self._run_once(slot, port)
            if self._stopping.is_set():
                slot.exit_code = code
                log.info("worker %d ended (%s)", slot.id, ended)
                return
            slot.crashes = recent_crashes(slot.crashes, trio.current_time(), self.policy.window_s)
            if gives_up(slot.crashes, self.policy):
                self.gave_up = (
                    f"worker {slot.id} died {len(slot.crashes)} times within "
                    f"{self.policy.window_s:g}s; last: {ended}"
                )
                slot.exit_code = code
                await self.stop("gave up")
                return
            slot.restarts += 1
            delay = restart_delay(slot.crashes, self.policy)
            log.error(
                "worker %d died (%s); restart %d in %.1fs", slot.id, ended, slot.restarts, delay
            )
            with trio.move_on_after(delay):
                await self._stopping.wait()
            if self._stopping.is_set():
                return

    async def _run_once(self, slot: WorkerSlot, port: int) -> tuple[int, str]:
        """One life of worker ``slot``: its exit code and how it ended. A worker that
        cannot even be started (out of processes or descriptors) died at once."""
        try:
            process = await trio.lowlevel.open_process(
                self._command(slot.id, port), stdin=subprocess.PIPE
            )
        except OSError as exc:
            return EXIT_NOT_STARTED, f"not started: {exc.strerror or exc}"
        slot.process = process
        log.info("worker %d started (pid %d)", slot.id, process.pid)
        for _ in range(self.stops):  # stops ordered while it was starting
            await _tell(process, ORDER_STOP)
        code = await process.wait()
        slot.process = None
        return code, describe_exit(code)


async def _tell(process: trio.Process, order: bytes) -> None:
    """Send ``order``; a worker that has just died cannot hear it, and needs not."""
    assert process.stdin is not None
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await process.stdin.send_all(order + b"\n")


def worker_command(config_path: str, log_level: str) -> Callable[[int, int], list[str]]:
    """How the parent starts worker ``n`` on ``port``: this interpreter, the same file."""

    def command(worker: int, port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llmswitch",
            "--log-level",
            log_level,
            "serve",
            "--config",
            config_path,
            "--port",
            str(port),
            "--worker",
            str(worker),
        ]

    return command


async def run_fleet(config: Config, config_path: str) -> int:
    """``llmswitch serve`` with ``server.workers > 1``: the parent, until the workers end."""
    await preflight(config)
    held = hold_port(config.server.host, config.server.port)
    with held:
        port = held.getsockname()[1]
        level = logging.getLevelName(logging.getLogger().level).lower()
        fleet = Fleet(config, worker_command(config_path, level))
        log.info("llmswitch: %d workers on %s:%d", config.server.workers, config.server.host, port)
        return await fleet.run(port)


def as_worker(config: Config, config_path: str, worker: int) -> Callable[[], Awaitable[int]]:
    """Worker ``worker``'s start (``serve --worker N``, run by the parent only)."""
    for signum in PARENT_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)

    async def start() -> int:
        orders = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        return await run_gateway(
            config, config_path=config_path, worker=worker, orders=orders, handle_signals=False
        )

    return start
