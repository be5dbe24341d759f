"""One simulated request/response and the counters it moves, shared by every wire format.

Counters are settled just before the last bytes go out, so a client holding a complete
answer already sees final counters (no race in in-process asserts).
"""

from __future__ import annotations

import contextlib
from typing import Any

from .asgi import Message, Scope, Send, header_map
from .backend import SimBackend
from .chat_request import RequestError, parse_json
from .stats import RecordedRequest

CONTROL_PREFIX = "/_sim/"


class _NoBody:
    """Marks a body that was absent or not JSON (the chat routes answer 400)."""


NO_BODY = _NoBody()


class Exchange:
    """One request/response and its bookkeeping (control requests are not counted)."""

    __slots__ = (
        "_backend",
        "_send",
        "_settled",
        "body",
        "counted",
        "finished",
        "headers",
        "method",
        "path",
        "query",
        "raw",
        "status",
    )

    def __init__(self, scope: Scope, send: Send, backend: SimBackend) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query: str = scope.get("query_string", b"").decode("latin-1")
        self.headers = header_map(scope)
        self.counted = not self.path.startswith(CONTROL_PREFIX)
        self.raw = b""
        self.body: Any = NO_BODY
        self.status: int | None = None
        self.finished = False
        self._settled = False
        self._backend = backend
        self._send = send
        if self.counted:
            stats = backend.stats
            stats.total += 1
            stats.by_path[self.path] += 1
            stats.in_flight += 1
            backend.notify()

    def set_body(self, raw: bytes) -> None:
        self.raw = raw
        if raw:
            with contextlib.suppress(RequestError):
                self.body = parse_json(raw)

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self.counted:
                self._backend.stats.by_status[message["status"]] += 1
        elif not message.get("more_body", False):
            self.finished = True
            self.settle()
        await self._send(message)

    def settle(self) -> None:
        """Leave the in-flight gauge (once)."""
        if self.counted and not self._settled:
            self._settled = True
            self._backend.stats.in_flight -= 1
            self._backend.notify()

    def recorded(self, model: str | None) -> RecordedRequest:
        """The request-log entry: the parsed body, else its text (None when empty)."""
        body = self.body
        if body is NO_BODY:
            body = self.raw.decode("utf-8", "replace") if self.raw else None
        return RecordedRequest(
            method=self.method, path=self.path, headers=self.headers, body=body, model=model
        )


def model_in_body(exchange: Exchange) -> str | None:
    """The "model" field of a JSON object body (OpenAI and Anthropic name it there)."""
    body = exchange.body
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None
