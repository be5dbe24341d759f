"""The simulator's ASGI app for Anthropic's Messages API: /v1/messages and /v1/models.

Same SimBackend, knobs, stats and pacing as the OpenAI app, rendered in Anthropic's wire
format. The /_sim control routes are served by an OpenAISimApp on the same backend, so a
test drives either format the same way.

A stream sends its head (message_start, content_block_start, ping) together with the
first token, after ttft_s, as the OpenAI app does; cut_after drops the connection after
that many deltas, with no content_block_stop, message_delta or message_stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import anthropic_wire as aw
from .asgi import SSE_TYPE, Headers, Receive, Scope, Send, send_json, send_response
from .backend import SimBackend
from .chat_request import ChatRequest, RequestError, parse_json
from .exchange import Exchange
from .knobs import ModelKnobs
from .openai_app import OpenAISimApp
from .pacing import EncodedStream, StreamCut, send_complete, send_stream, stream_cut
from .reply import ReplyPlan
from .serving import DEFAULT_BODY_LIMIT, Routes, WireApp, retry_headers
from .tokens import count_prompt_tokens


class AnthropicSimApp(WireApp):
    """ASGI app serving one SimBackend over Anthropic's Messages API."""

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        super().__init__(backend, body_limit=body_limit)
        self._openai = OpenAISimApp(backend, body_limit=body_limit)
        self._routes = Routes(
            {
                ("POST", "/v1/messages"): self._messages,
                ("POST", "/v1/messages/count_tokens"): self._count_tokens,
                ("GET", "/v1/models"): self._models,
            },
            model=self._model,
            refuse=self._refuse,
        )

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._openai(scope, receive, send)

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
        await self._routes.serve(exchange)

    async def _refuse(self, exchange: Exchange, status: int) -> None:
        if status == 405:
            message = f"Method {exchange.method} not allowed"
            await _send_error(exchange, 405, "invalid_request_error", message)
        else:
            await _send_error(exchange, 404, "not_found_error", "Not Found")

    def _authorized(self, exchange: Exchange) -> bool:
        """The key as x-api-key (Anthropic's scheme) or as a bearer token (recent SDKs)."""
        key = self.backend.api_key
        if key is None:
            return True
        headers = exchange.headers
        return headers.get("x-api-key") == key or headers.get("authorization") == f"Bearer {key}"

    def _error(self, status: int, retry_after_s: float | None) -> tuple[Any, Headers]:
        return aw.error_for_status(status), [*_request_id_header(), *retry_headers(retry_after_s)]

    # -- routes -----------------------------------------------------------------------

    async def _models(self, exchange: Exchange) -> None:
        if await self._fault(exchange, self.backend.default_knobs):
            return
        backend = self.backend
        await send_json(exchange.send, 200, aw.model_list(backend.models, backend.created))

    async def _model(self, exchange: Exchange, requested: str) -> None:
        model = self.backend.resolve_model(requested)
        if model is None:
            await _send_error(exchange, 404, "not_found_error", f"model: {requested}")
            return
        await send_json(exchange.send, 200, aw.model_object(model, self.backend.created))

    async def _parse(self, exchange: Exchange) -> tuple[ChatRequest, str] | None:
        """The request and its served model, or None once an error answer went out."""
        try:
            if not isinstance(exchange.body, dict):
                parse_json(exchange.raw)  # raises the 400 for unparseable JSON
            request = aw.parse_messages_request(exchange.body)
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
        await self._answer(exchange, *parsed)

    async def _complete(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        content: list[dict[str, Any]] = []
        if plan.tool_call is not None:
            call = plan.tool_call
            content.append(
                {
                    "type": "tool_use",
                    "id": aw.new_tool_use_id(),
                    "name": call.name,
                    "input": aw.tool_input(call.arguments),
                }
            )
        elif plan.text:
            content.append({"type": "text", "text": plan.text})
        body = aw.message_object(
            aw.new_message_id(),
            request.model,
            content,
            aw.STOP_REASONS[plan.finish_reason],
            aw.usage_object(plan.prompt_tokens, plan.completion_tokens),
        )
        headers = _request_id_header()
        await send_complete(self.backend, exchange, knobs, plan, body, headers=headers)

    async def _stream(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """SSE events; the head (message_start, content_block_start, ping) rides with the
        first delta, and a cut stream has no content_block_stop or message_stop."""
        encoder = aw.EventEncoder(aw.new_message_id(), request.model)
        call = plan.tool_call
        head = encoder.message_start(plan.prompt_tokens)
        render: Callable[[str], bytes]
        if call is None:
            head += encoder.text_start() + aw.PING
            render = encoder.text
        else:
            head += encoder.tool_start(aw.new_tool_use_id(), call.name) + aw.PING
            head += encoder.arguments("")  # the API opens tool input with an empty delta
            render = encoder.arguments
        shape = stream_cut(knobs, len(plan.pieces))
        tail = encoder.block_stop()
        tail += encoder.message_delta(aw.STOP_REASONS[plan.finish_reason], plan.completion_tokens)
        tail += aw.MESSAGE_STOP
        failing = knobs.stream_error_after
        if failing is not None and failing <= shape.count:
            shape = StreamCut(failing, cut=False, stall=False)
            tail = aw.event("error", aw.error_body("overloaded_error", "Overloaded"))
        stream = EncodedStream(
            SSE_TYPE,
            [render(piece) for piece in plan.pieces[: shape.count]],
            tail,
            head,
            _request_id_header(),
        )
        await send_stream(self.backend, exchange, knobs, shape, stream)


async def _send_error(exchange: Exchange, status: int, type_: str, message: str) -> None:
    await send_json(exchange.send, status, aw.error_body(type_, message), _request_id_header())


def _auth_message(exchange: Exchange) -> str:
    headers = exchange.headers
    if "x-api-key" in headers or "authorization" in headers:
        return "invalid x-api-key"
    return "x-api-key header is required"


def _request_id_header() -> Headers:
    return [(b"request-id", aw.new_request_id().encode())]
