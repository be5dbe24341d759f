"""The request skeleton every simulated wire format shares: body, log, watcher, faults.

Every HTTP request runs in its own nursery next to a watcher that waits for
http.disconnect: hypercorn does not cancel an app when its client leaves, so without
the watcher a hanging or slow stream would outlive its client. The apps keep only their
wire format: routes, request parsing and how bodies and errors are spelled.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .asgi import (
    BodyTooLarge,
    ClientGone,
    Headers,
    Receive,
    Scope,
    Send,
    read_body,
    send_json,
    wait_for_disconnect,
)
from .backend import SimBackend
from .chat_request import ChatRequest
from .exchange import CONTROL_PREFIX, Exchange, model_in_body
from .knobs import ModelKnobs
from .reply import ReplyPlan, plan_reply

DEFAULT_BODY_LIMIT = 8 * 1024 * 1024
MODEL_PREFIX = "/v1/models/"

Handler = Callable[[Exchange], Awaitable[None]]


class Routes:
    """Handlers by (method, path); GET /v1/models/{id} goes to *model*, the rest to *refuse*.

    *refuse* answers 405 for a known path with another method, else 404.
    """

    def __init__(
        self,
        table: dict[tuple[str, str], Handler],
        *,
        model: Callable[[Exchange, str], Awaitable[None]],
        refuse: Callable[[Exchange, int], Awaitable[None]],
    ) -> None:
        self._table = table
        self._paths = {path for _, path in table}
        self._model = model
        self._refuse = refuse

    async def serve(self, exchange: Exchange) -> None:
        path = exchange.path
        handler = self._table.get((exchange.method, path))
        if handler is not None:
            await handler(exchange)
        elif exchange.method == "GET" and path.startswith(MODEL_PREFIX):
            await self._model(exchange, path[len(MODEL_PREFIX) :])
        else:
            await self._refuse(exchange, 405 if path in self._paths else 404)


class WireApp:
    """ASGI app serving one SimBackend; a subclass spells one wire format.

    Subclasses route in ``_dispatch``, spell errors in ``_error``, and render answers in
    ``_complete`` / ``_stream``; requests under /_sim/ and lifespan go to ``_control``.
    """

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.backend = backend
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX):
            await self._serve(scope, receive, send)
        else:
            await self._control(scope, receive, send)

    # -- what a wire format supplies ------------------------------------------------

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

    async def _dispatch(self, exchange: Exchange) -> None:
        raise NotImplementedError

    def _error(self, status: int, retry_after_s: float | None) -> tuple[Any, Headers]:
        """(error body, extra headers) of a simulated failure with this status."""
        raise NotImplementedError

    def _model_of(self, exchange: Exchange) -> str | None:
        """The model a request names, for the request log."""
        return model_in_body(exchange)

    async def _complete(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        raise NotImplementedError

    async def _stream(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        raise NotImplementedError

    # -- the shared skeleton --------------------------------------------------------

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read and log the body, then dispatch while watching for the client leaving."""
        backend = self.backend
        exchange = Exchange(scope, send, backend)
        try:
            try:
                exchange.set_body(await read_body(receive, self.body_limit))
            except ClientGone:
                if exchange.counted:
                    backend.stats.disconnects += 1
                return
            except BodyTooLarge:
                await send_json(exchange.send, 413, self._error(413, None)[0])
                return
            if exchange.counted:
                backend.requests.append(exchange.recorded(self._model_of(exchange)))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, receive, exchange, nursery.cancel_scope)
                await self._dispatch(exchange)
                nursery.cancel_scope.cancel()
        finally:
            exchange.settle()

    async def _watch(self, receive: Receive, exchange: Exchange, scope: trio.CancelScope) -> None:
        """Cancel the handler when the client goes away (ends hangs and streams)."""
        await wait_for_disconnect(receive)
        if exchange.counted and not exchange.finished:
            self.backend.stats.disconnects += 1
        scope.cancel()

    async def _fault(self, exchange: Exchange, knobs: ModelKnobs) -> bool:
        """Apply hang / error_status / error_rate; True when the request got its answer."""
        backend = self.backend
        stats = backend.stats
        if knobs.hang:
            stats.faults["hang"] += 1
            stats.hanging += 1
            backend.notify()
            try:
                await trio.sleep_forever()
            finally:
                stats.hanging -= 1
                backend.notify()
        if knobs.error_status is not None:
            stats.faults["error_status"] += 1
            body, headers = self._error(knobs.error_status, knobs.retry_after_s)
            await send_json(exchange.send, knobs.error_status, body, headers)
            return True
        if backend.should_inject_error(knobs):
            stats.faults["error_rate"] += 1
            body, headers = self._error(500, None)
            await send_json(exchange.send, 500, body, headers)
            return True
        return False

    async def _answer(self, exchange: Exchange, request: ChatRequest, model: str) -> None:
        """Reply to a parsed request for a served model: faults, then stream or body."""
        knobs = self.backend.knobs_for(model)
        if await self._fault(exchange, knobs):
            return
        plan = plan_reply(request, knobs)
        if request.stream:
            await self._stream(exchange, request, knobs, plan)
        else:
            await self._complete(exchange, request, knobs, plan)


def retry_headers(retry_after_s: float | None, *, millis: bool = True) -> Headers:
    """retry-after in whole seconds, and retry-after-ms unless the API sends only that."""
    if retry_after_s is None:
        return []
    headers = [(b"retry-after", str(math.ceil(retry_after_s)).encode())]
    if millis:
        headers.append((b"retry-after-ms", str(round(retry_after_s * 1000)).encode()))
    return headers
