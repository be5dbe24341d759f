"""A hostile upstream on a loopback port: raw trio sockets, so it can break every rule.

Each connection's request is read (head and ``Content-Length`` body), then the test's
``reply`` writes whatever it likes. ``sent`` counts the bytes the gateway accepted, so a
test can show the gateway stopped reading instead of taking a 96 MiB answer whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

MIB = 1024 * 1024
CHUNK = b"x" * 65536


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def head(status: int, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


Handler = Callable[["Evil", Request, trio.SocketStream], Awaitable[None]]


async def small_listing(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    """A well-behaved answer to a health probe."""
    await evil.send(stream, head(200, {"Content-Length": "11"}) + b'{"data":[]}')


async def nothing(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    """Hang up without a word."""


@dataclass
class Evil:
    """What the upstream does: ``reply`` to requests (POST), ``probe`` to probes (GET)."""

    reply: Handler = nothing
    probe: Handler = small_listing
    port: int = 0
    sent: int = 0
    seen: list[Request] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def send(self, stream: trio.SocketStream, data: bytes) -> None:
        await stream.send_all(data)
        self.sent += len(data)

    async def send_filler(self, stream: trio.SocketStream, size: int, fill: bytes = CHUNK) -> None:
        """``size`` bytes of ``fill``, as long as the gateway keeps reading."""
        while size > 0:
            piece = fill[:size]
            await self.send(stream, piece)
            size -= len(piece)


async def _read_request(stream: trio.SocketStream) -> Request | None:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = await stream.receive_some(65536)
        if not data:
            return None
        buf += data
    top, _, body = buf.partition(b"\r\n\r\n")
    first, *lines = top.decode("latin-1").split("\r\n")
    method, path, _ = first.split(" ", 2)
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        body += await stream.receive_some(65536)
    return Request(method, path, headers, body)


async def _connection(evil: Evil, stream: trio.SocketStream) -> None:
    async with stream:
        try:
            request = await _read_request(stream)
            if request is None:
                return
            evil.seen.append(request)
            handler = evil.probe if request.method == "GET" else evil.reply
            await handler(evil, request, stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the gateway hung up: what the tests want to see


async def serve_evil(nursery: trio.Nursery, evil: Evil) -> Evil:
    """Serve ``evil`` on a fresh loopback port until the nursery ends."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    evil.port = listeners[0].socket.getsockname()[1]

    async def handle(stream: trio.SocketStream) -> None:
        await _connection(evil, stream)

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return evil
