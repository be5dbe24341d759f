"""The HTTP layer's own hygiene, below the app: what hypercorn leaves to its application.

:func:`close_when_unread` answers ``Connection: close`` whenever a response starts before
the request's body was all received (a 404, 405 or 413, a refused key, a shed 503): the
rest of the body would otherwise be read as the next request's start, and over h11 the
keep-alive connection wedged, its next request hanging for ever. The last part of such an
answer is sent shielded: hypercorn closes the connection from inside that send, and
quart-trio cancels the handler as soon as hypercorn reports the stream closed, which
cancelled the close half-way and left the connection open (reproduced).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import trio

Message = MutableMapping[str, Any]
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _has_body(scope: dict[str, Any]) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def close_when_unread(app: ASGIApp) -> ASGIApp:
    """``app`` adding ``Connection: close`` to answers that start before the body is in."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body_in = not _has_body(scope)
        closing = False

        async def tracking_receive() -> Message:
            nonlocal body_in
            message: Message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_in = True
            return message

        async def closing_send(message: Message) -> None:
            nonlocal closing
            if message["type"] == "http.response.start" and not body_in:
                closing = True
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"connection" for name, _ in headers):
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            if closing and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await app(scope, tracking_receive, closing_send)

    return guarded
