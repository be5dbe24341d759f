"""The simulator's ASGI 3 app: OpenAI-compatible routes, Ollama probes, /_sim control.

Every HTTP request runs in its own nursery next to a watcher that waits for
http.disconnect: hypercorn does not cancel an app when its client leaves, so without
the watcher a hanging or slow stream would outlive its client.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import ollama_wire
from .asgi import (
    SSE_TYPE,
    BodyTooLarge,
    ClientGone,
    Headers,
    Message,
    Receive,
    Scope,
    Send,
    dumps,
    end_stream,
    header_map,
    read_body,
    send_json,
    send_piece,
    send_response,
    start_stream,
    wait_for_disconnect,
)
from .backend import SimBackend, UnknownModelError
from .chat_request import ChatRequest, RequestError, parse_chat_request, parse_json
from .knobs import KnobError, ModelKnobs
from .openai_wire import (
    DONE,
    ChunkEncoder,
    chat_completion,
    error_body,
    error_for_status,
    model_list,
    model_object,
    new_completion_id,
    new_tool_call_id,
    tool_call_object,
    usage_object,
)
from .reply import ReplyPlan, plan_reply
from .stats import RecordedRequest

CONTROL_PREFIX = "/_sim/"
DEFAULT_BODY_LIMIT = 8 * 1024 * 1024


class _NoBody:
    """Marks a body that was absent or not JSON (the chat route answers 400)."""


_NO_BODY = _NoBody()


class Exchange:
    """One request/response and its bookkeeping.

    Counters are settled just before the last bytes go out, so a client holding a
    complete answer already sees final counters (no race in in-process asserts).
    """

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
        "raw",
        "status",
    )

    def __init__(self, scope: Scope, send: Send, backend: SimBackend) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = header_map(scope)
        self.counted = not self.path.startswith(CONTROL_PREFIX)
        self.raw = b""
        self.body: Any = _NO_BODY
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


Handler = Callable[[Exchange], Awaitable[None]]


class OpenAISimApp:
    """ASGI app serving one SimBackend over the OpenAI wire format."""

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.backend = backend
        self.body_limit = body_limit
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("GET", "/v1/models"): self._models,
            ("GET", "/api/tags"): self._ollama_tags,
            ("GET", "/api/version"): self._ollama_version,
            ("GET", "/"): self._root,
            ("GET", "/_sim/stats"): self._sim_stats,
            ("GET", "/_sim/knobs"): self._sim_get_knobs,
            ("POST", "/_sim/knobs"): self._sim_set_knobs,
            ("POST", "/_sim/reset"): self._sim_reset,
        }
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, send, self.backend)
        try:
            try:
                exchange.set_body(await read_body(receive, self.body_limit))
            except ClientGone:
                if exchange.counted:
                    self.backend.stats.disconnects += 1
                return
            except BodyTooLarge:
                await send_json(exchange.send, 413, error_for_status(413))
                return
            if exchange.counted:
                self._record(exchange)
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

    def _record(self, exchange: Exchange) -> None:
        body = exchange.body
        if body is _NO_BODY:
            body = exchange.raw.decode("utf-8", "replace") if exchange.raw else None
        model = body.get("model") if isinstance(body, dict) else None
        self.backend.requests.append(
            RecordedRequest(
                method=exchange.method,
                path=exchange.path,
                headers=exchange.headers,
                body=body,
                model=model if isinstance(model, str) else None,
            )
        )

    async def _dispatch(self, exchange: Exchange) -> None:
        path = exchange.path
        if not path.startswith(CONTROL_PREFIX) and not self._authorized(exchange):
            await send_json(exchange.send, 401, error_for_status(401))
            return
        handler = self._routes.get((exchange.method, path))
        if handler is not None:
            await handler(exchange)
        elif exchange.method == "GET" and path.startswith("/v1/models/"):
            await self._model(exchange, path[len("/v1/models/") :])
        elif path in self._paths:
            await send_json(
                exchange.send,
                405,
                error_body(f"Method {exchange.method} not allowed for {path}."),
            )
        else:
            await send_json(
                exchange.send,
                404,
                error_body(f"Invalid URL ({exchange.method} {path})", code="unknown_url"),
            )

    def _authorized(self, exchange: Exchange) -> bool:
        key = self.backend.api_key
        return key is None or exchange.headers.get("authorization") == f"Bearer {key}"

    # -- faults -----------------------------------------------------------------

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
            await send_json(
                exchange.send,
                knobs.error_status,
                error_for_status(knobs.error_status),
                _retry_headers(knobs.retry_after_s),
            )
            return True
        if backend.should_inject_error(knobs):
            stats.faults["error_rate"] += 1
            await send_json(exchange.send, 500, error_for_status(500))
            return True
        return False

    # -- OpenAI routes ----------------------------------------------------------

    async def _models(self, exchange: Exchange) -> None:
        if await self._fault(exchange, self.backend.default_knobs):
            return
        backend = self.backend
        await send_json(
            exchange.send, 200, model_list(backend.models, backend.created, backend.name)
        )

    async def _model(self, exchange: Exchange, requested: str) -> None:
        backend = self.backend
        model = backend.resolve_model(requested)
        if model is None:
            await send_json(exchange.send, 404, _model_not_found(requested))
            return
        await send_json(exchange.send, 200, model_object(model, backend.created, backend.name))

    async def _chat(self, exchange: Exchange) -> None:
        backend = self.backend
        try:
            if exchange.body is _NO_BODY:
                parse_json(exchange.raw)  # raises the 400 for unparseable JSON
            request = parse_chat_request(exchange.body)
        except RequestError as exc:
            await send_json(
                exchange.send,
                exc.status,
                error_body(exc.message, exc.type, exc.code, exc.param),
            )
            return
        backend.stats.by_model[request.model] += 1
        model = backend.resolve_model(request.model)
        if model is None:
            await send_json(exchange.send, 404, _model_not_found(request.model))
            return
        knobs = backend.knobs_for(model)
        if await self._fault(exchange, knobs):
            return
        plan = plan_reply(request, knobs)
        if request.stream:
            await self._stream(exchange, request, knobs, plan)
        else:
            await self._complete(exchange, request, knobs, plan)

    async def _complete(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """Non-stream answer, sent when the last token would have been generated."""
        delay = knobs.ttft_s
        if knobs.tokens_per_s > 0 and len(plan.pieces) > 1:
            delay += (len(plan.pieces) - 1) / knobs.tokens_per_s
        if delay > 0:
            await trio.sleep(delay)
        message: dict[str, Any] = {"role": "assistant", "content": plan.text, "refusal": None}
        if plan.tool_call is not None:
            call = plan.tool_call
            message["content"] = None
            message["tool_calls"] = [
                tool_call_object(new_tool_call_id(), call.name, call.arguments)
            ]
        body = chat_completion(
            new_completion_id(),
            int(time.time()),
            request.model,
            message,
            plan.finish_reason,
            usage_object(plan.prompt_tokens, plan.completion_tokens),
        )
        headers = [(b"x-request-id", _request_id())]
        if knobs.cut_after is not None and knobs.cut_after <= len(plan.pieces):
            await self._cut_json(exchange, body, headers)
            return
        await send_json(exchange.send, 200, body, headers)

    async def _cut_json(self, exchange: Exchange, body: dict[str, Any], headers: Headers) -> None:
        """Announce the full length, send half the body, then drop the connection.

        Same rule as streams: an answer with fewer pieces than cut_after is not cut.
        """
        data = dumps(body)
        self.backend.stats.faults["cut"] += 1
        await start_stream(
            exchange.send,
            200,
            b"application/json",
            [(b"content-length", str(len(data)).encode()), *headers],
        )
        await send_piece(exchange.send, data[: len(data) // 2])
        # Returning without more_body=False makes hypercorn close the socket mid-body.

    async def _stream(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """SSE answer paced by ttft_s / tokens_per_s, cut short by cut_after or stalled
        (connection left open) by stall_after."""
        backend = self.backend
        stats = backend.stats
        started = trio.current_time()
        await start_stream(
            exchange.send,
            200,
            SSE_TYPE,
            [(b"cache-control", b"no-cache"), (b"x-request-id", _request_id())],
        )
        stats.open_streams += 1
        stream_open = True
        backend.notify()
        try:
            encoder = ChunkEncoder(
                new_completion_id(), int(time.time()), request.model, request.include_usage
            )
            call = plan.tool_call
            head = encoder.role("" if call is None else None)
            if call is not None:
                head += encoder.tool_call_start(new_tool_call_id(), call.name)
            render = encoder.tool_arguments if call is not None else encoder.content
            pieces = plan.pieces
            cut_after = knobs.cut_after
            cut = cut_after is not None and cut_after <= len(pieces)
            count = cut_after if cut_after is not None and cut else len(pieces)
            stall = knobs.stall_after is not None and knobs.stall_after <= count
            if knobs.stall_after is not None and stall:
                # A stall at or before the cut point wins: the connection stays open.
                count, cut = knobs.stall_after, False
            first_at = started + knobs.ttft_s
            tps = knobs.tokens_per_s
            pending = b""
            if first_at > trio.current_time():
                await trio.sleep_until(first_at)
            if tps > 0:
                # Paced: one write per token, on an absolute schedule (no drift).
                for index in range(count):
                    due = first_at + index / tps
                    if due > trio.current_time():
                        await trio.sleep_until(due)
                    data = render(pieces[index])
                    await send_piece(exchange.send, head + data if index == 0 else data)
                if count == 0 and not cut:
                    pending = head
            elif count or not cut:
                # Unpaced: everything in one write; per-event writes would make the
                # simulator's own cost dominate what benchmarks measure.
                pending = head + b"".join([render(piece) for piece in pieces[:count]])
            if cut:
                stats.faults["cut"] += 1
                if pending:
                    await send_piece(exchange.send, pending)
                return  # hypercorn closes the socket: no finish chunk, no [DONE]
            if stall:
                stats.faults["stall"] += 1
                if pending:
                    await send_piece(exchange.send, pending)
                backend.notify()
                await trio.sleep_forever()  # until the client leaves (the watcher cancels)
            tail = encoder.finish(plan.finish_reason)
            if request.include_usage:
                tail += encoder.usage(usage_object(plan.prompt_tokens, plan.completion_tokens))
            stream_open = False
            stats.open_streams -= 1
            await end_stream(exchange.send, pending + tail + DONE)
        finally:
            if stream_open:
                stats.open_streams -= 1
            backend.notify()

    # -- Ollama probes and root -------------------------------------------------

    async def _ollama_tags(self, exchange: Exchange) -> None:
        if await self._fault(exchange, self.backend.default_knobs):
            return
        body = ollama_wire.tags(self.backend.models, self.backend.created)
        await send_json(exchange.send, 200, body)

    async def _ollama_version(self, exchange: Exchange) -> None:
        await send_json(exchange.send, 200, ollama_wire.version())

    async def _root(self, exchange: Exchange) -> None:
        body = f"llmswitch sim {self.backend.name!r} is running".encode()
        await send_response(exchange.send, 200, body, b"text/plain; charset=utf-8")

    # -- /_sim control ----------------------------------------------------------

    async def _sim_stats(self, exchange: Exchange) -> None:
        await send_json(exchange.send, 200, self.backend.stats.to_dict())

    async def _sim_get_knobs(self, exchange: Exchange) -> None:
        await send_json(exchange.send, 200, self.backend.knobs_snapshot())

    async def _sim_set_knobs(self, exchange: Exchange) -> None:
        """POST {"model": name|null, "reset": bool?, ...knob fields}."""
        body = exchange.body
        if not isinstance(body, dict):
            await send_json(exchange.send, 400, error_body("Expected a JSON object."))
            return
        changes = dict(body)
        model = changes.pop("model", None)
        reset = changes.pop("reset", False)
        if model is not None and not isinstance(model, str):
            await send_json(exchange.send, 400, error_body("'model' must be a string or null."))
            return
        try:
            if reset:
                self.backend.reset_knobs(model)
            self.backend.set_knobs(model, **changes)
        except KnobError as exc:
            await send_json(exchange.send, 400, error_body(str(exc)))
            return
        except UnknownModelError:
            await send_json(exchange.send, 404, _model_not_found(str(model)))
            return
        await send_json(exchange.send, 200, self.backend.knobs_snapshot())

    async def _sim_reset(self, exchange: Exchange) -> None:
        self.backend.reset()
        await send_json(exchange.send, 200, {"ok": True})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _model_not_found(model: str) -> dict[str, Any]:
    return error_body(
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def _retry_headers(retry_after_s: float | None) -> Headers:
    if retry_after_s is None:
        return []
    return [
        (b"retry-after", str(math.ceil(retry_after_s)).encode()),
        (b"retry-after-ms", str(round(retry_after_s * 1000)).encode()),
    ]


def _request_id() -> bytes:
    return b"req_sim" + secrets.token_hex(8).encode()
