"""Accepting connections: a cap on how many are open, and a deadline on every write.

hypercorn's own ``serve()`` accepts without limit and writes to a client shielded and
without a deadline. A client that stops reading then holds its connection, its request
handler and, for a stream, its upstream connection for ever: no timeout of the app can
reach a write that is shielded. A thousand such clients (or a thousand slow ones) use up
the descriptors, and the gateway stops answering anyone (reproduced at a soft NOFILE of
1024). So llmswitch runs its own accept loop around hypercorn's connection handler:

- at most :func:`connection_cap` connections are open; at the cap the loop stops
  accepting (the kernel's backlog holds the rest) until one closes;
- a connection whose client hung up ends at once (hypercorn kept an idle one open
  until ``keep_alive_s``);
- every write to a client has a deadline (:class:`Connection`, ``server.send_timeout_s``;
  a stream sets it to its backend's ``idle_s``): past it the connection is closed, which
  ends the exchange, so its handler is cancelled and its upstream closed;
- running out of descriptors while accepting pauses accepting, said once, never a crash.

Every connection therefore ends in bounded time: headers within ``keep_alive_s`` (the
hypercorn idle timer), a body within ``body_timeout_s``, each write within the deadline.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

log = logging.getLogger(__name__)

#: Descriptors kept for everything that is not a client connection (the ledger and its
#: journal, listeners, logs, the pools' idle upstream sockets).
RESERVED_FDS = 64
#: How long accepting pauses when the process is out of descriptors.
ACCEPT_PAUSE_S = 0.1
#: accept() errors that mean "out of a resource for now", not "broken listener".
SHORTAGE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_cap(max_connections: int, nofile: int) -> int:
    """Connections open at once: ``max_connections``, or fewer if descriptors are short.

    A connection may hold a second descriptor (its request's upstream socket), so the
    open-file limit less :data:`RESERVED_FDS` allows half as many connections.
    """
    return max(1, min(max_connections, (nofile - RESERVED_FDS) // 2))


class Connection(trio.abc.HalfCloseableStream):
    """A client's socket whose every write has a deadline.

    A write that has not gone out within ``send_timeout_s`` closes the socket and raises
    BrokenResourceError, as a client that hung up would: hypercorn then ends the exchange.
    The deadline holds inside hypercorn's shielded send, which only outer scopes cannot
    cancel. ``socket`` is there because hypercorn reads the peer's address from it.
    """

    def __init__(self, stream: trio.SocketStream, send_timeout_s: float) -> None:
        self._stream = stream
        self.socket = stream.socket
        self.send_timeout_s = send_timeout_s

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        with trio.move_on_after(self.send_timeout_s) as waited:
            await self._stream.send_all(data)
        if waited.cancelled_caught:
            await trio.aclose_forcefully(self._stream)
            raise trio.BrokenResourceError(
                f"the client took nothing for {self.send_timeout_s:g}s; connection closed"
            )

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self._stream.receive_some(max_bytes)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()


class _Served(TCPServer):
    """hypercorn's connection handler, ending as soon as the client has gone.

    hypercorn keeps an idle connection whose client hung up (its descriptor and its slot)
    until ``keep_alive_s`` runs out: only its keep-alive timer ends it. Nothing more can
    come in once reading has ended, so the timer is stopped then; a request still being
    answered (the timer is off while it runs) ends the connection when it is done.
    """

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


#: The connection a request came in on, for a handler that needs another write deadline.
current_connection: ContextVar[Connection | None] = ContextVar("current_connection", default=None)


def set_send_timeout(seconds: float) -> None:
    """Give the current request's writes ``seconds`` each (no-op outside a connection)."""
    conn = current_connection.get()
    if conn is not None:
        conn.send_timeout_s = seconds


class Listener:
    """Accepts up to ``cap`` connections at once and serves each with hypercorn."""

    def __init__(self, cap: int, send_timeout_s: float) -> None:
        self.cap = cap
        self.send_timeout_s = send_timeout_s
        self._slots = trio.Semaphore(cap)
        self.refused_accepts = 0

    @property
    def open(self) -> int:
        return self.cap - self._slots.value

    def snapshot(self) -> dict[str, Any]:
        return {"open": self.open, "cap": self.cap, "send_timeout_s": self.send_timeout_s}

    async def accept_forever(
        self,
        listener: trio.SocketListener,
        serve_one: Callable[[Connection], Awaitable[None]],
        nursery: trio.Nursery,
    ) -> None:
        short = False
        while True:
            await self._slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as exc:
                self._slots.release()
                if exc.errno not in SHORTAGE_ERRNOS:
                    raise
                self.refused_accepts += 1
                if not short:
                    log.warning("cannot accept a connection (%s); pausing accepts", exc.strerror)
                short = True
                await trio.sleep(ACCEPT_PAUSE_S)
                continue
            if short:
                log.info("accepting connections again")
                short = False
            nursery.start_soon(self._serve, serve_one, Connection(stream, self.send_timeout_s))

    async def _serve(
        self, serve_one: Callable[[Connection], Awaitable[None]], conn: Connection
    ) -> None:
        current_connection.set(conn)
        try:
            await serve_one(conn)
        finally:
            self._slots.release()


async def serve(
    app: Any,
    config: HypercornConfig,
    listener: Listener,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``config.bind`` until ``shutdown_trigger`` returns.

    As hypercorn's ``serve()``: the ASGI lifespan around it all; on shutdown accepting
    stops, idle connections close, and open ones get ``config.graceful_timeout``.
    """
    asgi = wrap_app(app, config.wsgi_max_body_size, "asgi")
    state: dict[str, Any] = {}
    lifespan = Lifespan(asgi, config, state)
    context = WorkerContext(None)
    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as connections:
            sockets = config.create_sockets().insecure_sockets
            listeners = []
            for sock in sockets:
                sock.listen(config.backlog)
                listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))

            async def serve_one(conn: Connection) -> None:
                await _Served(asgi, config, context, ConnectionState(state.copy()), conn)  # type: ignore[arg-type]

            task_status.started(
                [f"http://{repr_socket_addr(s.family, s.getsockname())}" for s in sockets]
            )
            async with trio.open_nursery() as accepting:
                for each in listeners:
                    accepting.start_soon(listener.accept_forever, each, serve_one, connections)
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
            for each in listeners:
                await each.aclose()
            await context.terminated.set()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
