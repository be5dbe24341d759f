"""Build the supervision tree and serve; shut down in order.

Nesting makes the shutdown order visible::

    root nursery (llmswitch's own)
    ├── signal watcher: 1st SIGTERM/SIGINT → drain; 2nd → cancel everything now
    │   (a worker of several follows its parent's orders instead: see workers.py)
    ├── reloader: SIGHUP → live reload (see reloader.py); closes clients a reload retired
    ├── cluster link (with cluster.redis_url): Redis up or degraded, reconnecting
    ├── supervisor: ledger, health, limits, pool, classifier, router (started in order)
    ├── fleet (with cluster.redis_url): tells peers our changes, hands theirs to the
    │   actors, renews our presence; leaves the roster before the actors stop
    └── front.listen.serve(): capped accepts, hypercorn per connection; on drain stops
        accepting; in-flight requests get grace_s

After serve() returns, the actors stop in reverse order (the ledger flushes last), and
the exit code says whether the supervisor had to give up.

The supervisor runs here, outside serve(), because quart-trio cancels ``app.nursery``
as soon as ``after_serving`` ends, which would kill the actors before the drain.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
from functools import partial
from urllib.parse import urlsplit

import trio
from hypercorn.config import Config as HypercornConfig

from llmswitch.actors.keys import keyring
from llmswitch.actors.pool import Clients
from llmswitch.config import Config
from llmswitch.front.access import KeyRing, bind_refusal
from llmswitch.front.access_log import use_format
from llmswitch.front.app import create_app
from llmswitch.front.hygiene import close_when_unread
from llmswitch.front.listen import Listener, connection_cap, serve
from llmswitch.gateway import Gateway
from llmswitch.selfcheck import start_warnings
from llmswitch.store.connect import open_store
from llmswitch.store.keys import load_keys
from llmswitch.store.request_log import instance_name

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_GAVE_UP = 3
#: Where to stop when the hard limit is "unlimited" (Linux's default fs.nr_open).
NOFILE_UNLIMITED_TARGET = 1 << 20


def raise_nofile_limit() -> int:
    """Raise the soft limit on open files to the hard limit; the soft limit now in force.

    Every connection, upstream socket and database file takes a descriptor, and the usual
    soft limit of 1024 is reached by about a thousand idle connections; the hard limit
    (``LimitNOFILE`` in ops/llmswitch.service) is what the operator allows.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NOFILE_UNLIMITED_TARGET if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-file limit from %d to %d: %s", soft, target, exc)
            return soft
        log.info("open-file limit raised from %d to %d", soft, target)
        return target
    return soft


class StartRefused(Exception):
    """The config would expose the gateway; the message is the one-line reason."""


def check_exposure(config: Config, keys: KeyRing) -> None:
    """Refuse an open bind (StartRefused); warn about what is allowed but risky or broken."""
    refusal = bind_refusal(config, keys)
    if refusal is not None:
        raise StartRefused(refusal)
    if config.server.open_lan:
        log.warning(
            "server.open_lan = true: %s:%s serves anyone who can reach it",
            config.server.host,
            config.server.port,
        )
    for line in start_warnings(config, os.environ):
        log.warning("%s", line)


#: After the grace period, how long streams get to send their closing error event.
CUT_FLUSH_S = 1.0


def hypercorn_config(config: Config) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [f"{config.server.host}:{config.server.port}"]
    # run_gateway ends the drain itself (grace, then the cut); hypercorn's own deadline
    # must not come first, or streams would be cancelled without their error event.
    hc.graceful_timeout = config.server.grace_s + CUT_FLUSH_S + 1
    hc.accesslog = None
    hc.keep_alive_timeout = config.server.keep_alive_s
    # Several workers each bind the port with SO_REUSEPORT (hypercorn sets it for > 1).
    hc.workers = config.server.workers
    return hc


async def preflight(config: Config, worker: int | None = None) -> None:
    """What every start checks before it binds: the log format, the store (migrated on
    open), an exposed bind. The parent of several workers runs it once before any worker."""
    use_format(config.log.format, worker)
    async with open_store(config.store) as db:
        check_exposure(config, keyring(config, await load_keys(db)))


async def run_gateway(
    config: Config,
    *,
    config_path: str | None = None,
    handle_signals: bool = True,
    worker: int | None = None,
    orders: trio.abc.ReceiveStream | None = None,
    task_status: trio.TaskStatus[tuple[Gateway, str]] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Serve until told to stop; return the process exit code.

    ``task_status`` reports the gateway and its base URL once it accepts connections.
    ``config_path`` is the file a reload (SIGHUP, ``POST /admin/reload``) reads again.
    Tests stop it with ``gateway.stop_requested.set()``, exactly as a signal would.
    ``worker`` and ``orders``: this is worker ``worker`` of ``server.workers``, and takes
    its stop and reload orders from its parent on ``orders`` (:func:`_follow_parent`)
    instead of from signals.
    """
    await preflight(config, worker)
    nofile = raise_nofile_limit()
    cap = connection_cap(config.server.max_connections, nofile)
    if cap < config.server.max_connections:
        log.warning(
            "serving at most %d connections (server.max_connections %d): open-file limit %d",
            cap,
            config.server.max_connections,
            nofile,
        )
    async with Clients(config.backends) as clients, trio.open_nursery() as root:
        gw = Gateway(config, clients, config_path, worker or 0)
        gw.listener = Listener(cap, config.server.send_timeout_s)
        if orders is not None:
            await root.start(_follow_parent, gw, root.cancel_scope, orders)
        elif handle_signals:
            await root.start(_watch_signals, gw, root.cancel_scope)
        reload_on_sighup = handle_signals and orders is None
        await root.start(partial(gw.reloader.run, handle_signals=reload_on_sighup))
        if gw.link is not None:
            await root.start(gw.link.run)
        await root.start(gw.supervisor.run)
        if gw.fleet is not None:
            await root.start(gw.fleet.run)

        async def drain() -> None:
            await gw.stop_requested.wait()
            gw.draining = True
            log.info("draining: no new connections; in-flight requests finish")

        app = create_app(gw)
        async with trio.open_nursery() as front:
            binds = await front.start(
                lambda task_status: serve(
                    gw.asgi(close_when_unread(app)),  # type: ignore[arg-type]
                    hypercorn_config(config),
                    gw.listener,
                    shutdown_trigger=drain,
                    task_status=task_status,
                )
            )
            log.info("llmswitch listening on %s", binds[0])
            port = urlsplit(binds[0]).port or config.server.port
            gw.instance = instance_name(
                socket.gethostname(), port, gw.worker, config.server.workers
            )
            if gw.fleet is not None:
                gw.fleet.address = binds[0]
            task_status.started((gw, binds[0]))
            await gw.stop_requested.wait()
            # serve() has stopped accepting. Once the last exchange has ended, close what
            # is left (idle keep-alive connections) instead of waiting out the grace period.
            with trio.move_on_after(config.server.grace_s):
                await gw.drained()
            # Grace is over: open streams end with an error event and a "shutdown" row.
            gw.expire_grace()
            with trio.move_on_after(CUT_FLUSH_S):
                await gw.drained()
            front.cancel_scope.cancel()
        # serve() has returned: the drain is over. Stop the actors, newest first.
        if gw.fleet is not None:
            await gw.fleet.stop()
        await gw.supervisor.stop()
        gw.journal.close()
        root.cancel_scope.cancel()
    if gw.supervisor.gave_up:
        log.critical("exiting: %s", gw.supervisor.gave_up)
        return EXIT_GAVE_UP
    return EXIT_OK


async def _watch_signals(
    gw: Gateway,
    root: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            _stop(gw, root, signal.Signals(signum).name)


def _stop(gw: Gateway, root: trio.CancelScope, why: str) -> None:
    """The first stop order drains; the second cancels everything now."""
    if gw.stop_requested.is_set():
        log.warning("second stop (%s): stopping now", why)
        root.cancel()
        return
    log.info("%s: draining for up to %ss", why, gw.config.server.grace_s)
    gw.stop_requested.set()


#: The parent's orders to a worker, one a line on the worker's stdin (workers.py).
ORDER_STOP = b"stop"
ORDER_RELOAD = b"reload"


async def _follow_parent(
    gw: Gateway,
    root: trio.CancelScope,
    orders: trio.abc.ReceiveStream,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """A worker's signal watcher: its parent's orders, read from a pipe.

    The parent relays its SIGTERM/SIGINT as ``stop`` and SIGHUP as ``reload``. Workers
    ignore those signals themselves, so a Ctrl-C (sent to the whole process group) or a
    systemd stop (sent to the whole cgroup) reaches each worker once, through the parent,
    and is not taken for a second signal. The pipe's end (the parent died, even by
    SIGKILL) drains the worker: no orphan keeps serving.
    """
    task_status.started()
    pending = b""
    async with orders:
        while True:
            data = await orders.receive_some()
            if not data:
                break
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                if line == ORDER_STOP:
                    _stop(gw, root, "parent: stop")
                elif line == ORDER_RELOAD:
                    await gw.reloader.reload_unasked("parent: reload")
    if not gw.stop_requested.is_set():
        _stop(gw, root, "parent gone")
