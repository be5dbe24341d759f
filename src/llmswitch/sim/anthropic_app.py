"""The simulator's ASGI app for Anthropic's Messages API: /v1/messages and /v1/models.

Same SimBackend, knobs, stats and pacing as the OpenAI app, rendered in Anthropic's wire
format. The /_sim control routes are served by an OpenAISimApp on the same backend, so a
test drives either format the same way.

A stream sends its head (message_start, content_block_start, ping) together with the
first token, after ttft_s, as the OpenAI app does; cut_after drops the connection after
that many deltas, with no content_block_stop, message_delta or message_stop.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .anthropic_wire import (
    MESSAGE_STOP,
    PING,
    STOP_REASONS,
    EventEncoder,
    error_body,
    error_for_status,
    message_object,
    model_list,
    model_object,
    new_message_id,
    new_request_id,
    new_tool_use_id,
    parse_messages_request,
    tool_input,
    usage_object,
)
from .asgi import (
    SSE_TYPE,
    BodyTooLarge,
    ClientGone,
    Headers,
    Receive,
    Scope,
    Send,
    dumps,
    end_stream,
    read_body,
    send_json,
    send_piece,
    send_response,
    start_stream,
    wait_for_disconnect,
)
from .backend import SimBackend
from .chat_request import ChatRequest, RequestError, parse_json
from .knobs import ModelKnobs
from .openai_app import CONTROL_PREFIX, DEFAULT_BODY_LIMIT, Exchange, OpenAISimApp
from .reply import ReplyPlan, plan_reply
from .stats import RecordedRequest
from .tokens import count_prompt_tokens

Handler = Callable[[Exchange], Awaitable[None]]


class AnthropicSimApp:
    """ASGI app serving one SimBackend over Anthropic's Messages API."""

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.backend = backend
        self.body_limit = body_limit
        self._control = OpenAISimApp(backend, body_limit=body_limit)
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/messages"): self._messages,
            ("POST", "/v1/messages/count_tokens"): self._count_tokens,
            ("GET", "/v1/models"): self._models,
        }
        self._paths = {path for _, path in self._routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(CONTROL_PREFIX):
            await self._control(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._control(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, send, self.backend)
        try:
            try:
                exchange.set_body(await read_body(receive, self.body_limit))
            except ClientGone:
                self.backend.stats.disconnects += 1
                return
            except BodyTooLarge:
                await send_json(exchange.send, 413, error_for_status(413))
                return
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
        if not exchange.finished:
            self.backend.stats.disconnects += 1
        scope.cancel()

    def _record(self, exchange: Exchange) -> None:
        body = exchange.body
        if not isinstance(body, dict | list):
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
        if not self._authorized(exchange):
            await _send_error(exchange, 401, "authentication_error", _auth_message(exchange))
            return
        if path == "/" and exchange.method == "GET":
            body = f"llmswitch sim {self.backend.name!r} (anthropic) is running".encode()
            await send_response(exchange.send, 200, body, b"text/plain; charset=utf-8")
            return
        if not exchange.headers.get("anthropic-version"):
            await _send_error(
                exchange, 400, "invalid_request_error", "anthropic-version: header is required"
            )
            return
        handler = self._routes.get((exchange.method, path))
        if handler is not None:
            await handler(exchange)
        elif exchange.method == "GET" and path.startswith("/v1/models/"):
            await self._model(exchange, path[len("/v1/models/") :])
        elif path in self._paths:
            await _send_error(
                exchange, 405, "invalid_request_error", f"Method {exchange.method} not allowed"
            )
        else:
            await _send_error(exchange, 404, "not_found_error", "Not Found")

    def _authorized(self, exchange: Exchange) -> bool:
        """The key as x-api-key (Anthropic's scheme) or as a bearer token (recent SDKs)."""
        key = self.backend.api_key
        if key is None:
            return True
        headers = exchange.headers
        return headers.get("x-api-key") == key or headers.get("authorization") == f"Bearer {key}"

    # -- faults -----------------------------------------------------------------------

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
                [*_request_id_header(), *_retry_headers(knobs.retry_after_s)],
            )
            return True
        if backend.should_inject_error(knobs):
            stats.faults["error_rate"] += 1
            await send_json(exchange.send, 500, error_for_status(500), _request_id_header())
            return True
        return False

    # -- routes -----------------------------------------------------------------------

    async def _models(self, exchange: Exchange) -> None:
        if await self._fault(exchange, self.backend.default_knobs):
            return
        backend = self.backend
        await send_json(exchange.send, 200, model_list(backend.models, backend.created))

    async def _model(self, exchange: Exchange, requested: str) -> None:
        model = self.backend.resolve_model(requested)
        if model is None:
            await _send_error(exchange, 404, "not_found_error", f"model: {requested}")
            return
        await send_json(exchange.send, 200, model_object(model, self.backend.created))

    async def _parse(self, exchange: Exchange) -> tuple[ChatRequest, str] | None:
        """The request and its served model, or None once an error answer went out."""
        try:
            if not isinstance(exchange.body, dict):
                parse_json(exchange.raw)  # raises the 400 for unparseable JSON
            request = parse_messages_request(exchange.body)
        except RequestError as exc:
            await _send_error(exchange, exc.status, "invalid_request_error", exc.message)
            return None
        self.backend.stats.by_model[request.model] += 1
        model = self.backend.resolve_model(request.model)
        if model is None:
            await _send_error(exchange, 404, "not_found_error", f"model: {request.model}")
            return None
        return request, model

    async def _count_tokens(self, exchange: Exchange) -> None:
        body = exchange.body
        if isinstance(body, dict) and "max_tokens" not in body:
            body = dict(body, max_tokens=1)  # count_tokens takes no max_tokens
            exchange.body = body
        parsed = await self._parse(exchange)
        if parsed is not None:
            tokens = count_prompt_tokens(parsed[0].messages)
            await send_json(exchange.send, 200, {"input_tokens": tokens}, _request_id_header())

    async def _messages(self, exchange: Exchange) -> None:
        parsed = await self._parse(exchange)
        if parsed is None:
            return
        request, model = parsed
        knobs = self.backend.knobs_for(model)
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
        content: list[dict[str, Any]] = []
        if plan.tool_call is not None:
            call = plan.tool_call
            content.append(
                {
                    "type": "tool_use",
                    "id": new_tool_use_id(),
                    "name": call.name,
                    "input": tool_input(call.arguments),
                }
            )
        elif plan.text:
            content.append({"type": "text", "text": plan.text})
        body = message_object(
            new_message_id(),
            request.model,
            content,
            STOP_REASONS[plan.finish_reason],
            usage_object(plan.prompt_tokens, plan.completion_tokens),
        )
        headers = _request_id_header()
        if knobs.cut_after is not None and knobs.cut_after <= len(plan.pieces):
            data = dumps(body)
            self.backend.stats.faults["cut"] += 1
            await start_stream(
                exchange.send,
                200,
                b"application/json",
                [(b"content-length", str(len(data)).encode()), *headers],
            )
            await send_piece(exchange.send, data[: len(data) // 2])
            return  # returning without more_body=False makes hypercorn drop the socket
        await send_json(exchange.send, 200, body, headers)

    async def _stream(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """SSE answer paced by ttft_s / tokens_per_s, cut short by cut_after."""
        backend = self.backend
        stats = backend.stats
        started = trio.current_time()
        await start_stream(
            exchange.send,
            200,
            SSE_TYPE,
            [(b"cache-control", b"no-cache"), *_request_id_header()],
        )
        stats.open_streams += 1
        stream_open = True
        backend.notify()
        try:
            encoder = EventEncoder(new_message_id(), request.model)
            call = plan.tool_call
            head = encoder.message_start(plan.prompt_tokens)
            render: Callable[[str], bytes]
            if call is None:
                head += encoder.text_start() + PING
                render = encoder.text
            else:
                head += encoder.tool_start(new_tool_use_id(), call.name) + PING
                head += encoder.arguments("")  # the API opens tool input with an empty delta
                render = encoder.arguments
            pieces = plan.pieces
            cut_after = knobs.cut_after
            cut = cut_after is not None and cut_after <= len(pieces)
            count = cut_after if cut_after is not None and cut else len(pieces)
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
                # Unpaced: one write, so the simulator's own cost stays out of benchmarks.
                pending = head + b"".join([render(piece) for piece in pieces[:count]])
            if cut:
                stats.faults["cut"] += 1
                if pending:
                    await send_piece(exchange.send, pending)
                return  # hypercorn closes the socket: no message_stop
            tail = encoder.block_stop()
            tail += encoder.message_delta(STOP_REASONS[plan.finish_reason], plan.completion_tokens)
            stream_open = False
            stats.open_streams -= 1
            await end_stream(exchange.send, pending + tail + MESSAGE_STOP)
        finally:
            if stream_open:
                stats.open_streams -= 1
            backend.notify()


async def _send_error(exchange: Exchange, status: int, type_: str, message: str) -> None:
    await send_json(exchange.send, status, error_body(type_, message), _request_id_header())


def _auth_message(exchange: Exchange) -> str:
    headers = exchange.headers
    if "x-api-key" in headers or "authorization" in headers:
        return "invalid x-api-key"
    return "x-api-key header is required"


def _request_id_header() -> Headers:
    return [(b"request-id", new_request_id().encode())]


def _retry_headers(retry_after_s: float | None) -> Headers:
    if retry_after_s is None:
        return []
    return [
        (b"retry-after", str(math.ceil(retry_after_s)).encode()),
        (b"retry-after-ms", str(round(retry_after_s * 1000)).encode()),
    ]
