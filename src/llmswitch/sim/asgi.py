"""Minimal ASGI 3 plumbing for the simulator: no framework, so the sim stays cheap.

The simulator is the baseline the benchmarks subtract from the gateway's numbers; a
framework's routing and request objects would show up as fake gateway overhead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

JSON_TYPE = b"application/json"
SSE_TYPE = b"text/event-stream; charset=utf-8"


class ClientGone(Exception):
    """The client disconnected before the request body was complete."""


class BodyTooLarge(Exception):
    """The request body exceeded the simulator's limit."""


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8, as OpenAI sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


async def read_body(receive: Receive, limit: int) -> bytes:
    """Collect the whole request body; raise ClientGone or BodyTooLarge."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the server reports http.disconnect (call after the body is read)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def header_map(scope: Scope) -> dict[str, str]:
    """Request headers as a dict with lower-case names (last value wins)."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON_TYPE,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """A complete, non-streamed response with a content-length."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def send_json(
    send: Send, status: int, obj: Any, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    await send_response(send, status, dumps(obj), JSON_TYPE, headers)


async def start_stream(
    send: Send, status: int, content_type: bytes, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Response head for a body sent in pieces (chunked transfer encoding)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *headers],
        }
    )


async def send_piece(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def end_stream(send: Send, data: bytes = b"") -> None:
    await send({"type": "http.response.body", "body": data, "more_body": False})
