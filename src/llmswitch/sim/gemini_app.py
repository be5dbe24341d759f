"""The simulator's ASGI app for the Gemini API wire format.

Serves one :class:`SimBackend` (the same knobs, counters and reply logic as the OpenAI
app) under ``/v1beta`` (and ``/v1``):

- ``POST /v1beta/models/{model}:generateContent``
- ``POST /v1beta/models/{model}:streamGenerateContent?alt=sse`` (without ``alt=sse``: the
  JSON-array stream Gemini sends by default)
- ``POST /v1beta/models/{model}:countTokens``
- ``GET /v1beta/models`` and ``GET /v1beta/models/{model}``

With an ``api_key`` the backend wants it in ``x-goog-api-key`` (or ``?key=``), answering
like Gemini: 403 PERMISSION_DENIED when it is missing, 400 INVALID_ARGUMENT with reason
API_KEY_INVALID when it is wrong. ``/_sim/*`` control and lifespan are served by an
inner :class:`OpenAISimApp` over the same backend.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from . import gemini_wire as gw
from .asgi import SSE_TYPE, Headers, Receive, Scope, Send, dumps, send_json, send_response
from .backend import SimBackend
from .chat_request import ChatRequest
from .exchange import Exchange
from .gemini_request import GeminiRequestError, parse_generate_request, parse_json
from .knobs import ModelKnobs
from .openai_app import OpenAISimApp
from .pacing import EncodedStream, send_complete, send_stream, stream_cut
from .reply import ReplyPlan
from .serving import DEFAULT_BODY_LIMIT, WireApp, retry_headers
from .tokens import count_prompt_tokens

_JSON_STREAM_TYPE = b"application/json; charset=UTF-8"
_METHODS = ("generateContent", "streamGenerateContent")


class GeminiSimApp(WireApp):
    """ASGI app serving one SimBackend over the Gemini API wire format."""

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        super().__init__(backend, body_limit=body_limit)
        self._openai = OpenAISimApp(backend, body_limit=body_limit)

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._openai(scope, receive, send)

    def _model_of(self, exchange: Exchange) -> str | None:
        return _split_path(exchange.path)[1]

    # -- routing ----------------------------------------------------------------

    async def _dispatch(self, exchange: Exchange) -> None:
        query = _query(exchange)
        if exchange.path == "/" and exchange.method == "GET":
            text = f"llmswitch sim {self.backend.name!r} (gemini) is running".encode()
            await send_response(exchange.send, 200, text, b"text/plain; charset=utf-8")
            return
        version, model, method = _split_path(exchange.path)
        if version is None:
            await self._not_found(exchange)
            return
        if not await self._authorized(exchange, query):
            return
        if model is None:
            if exchange.method != "GET":
                await self._not_allowed(exchange)
                return
            await self._models(exchange)
        elif method is None:
            if exchange.method != "GET":
                await self._not_allowed(exchange)
                return
            await self._model(exchange, model, version)
        elif method in _METHODS or method == "countTokens":
            if exchange.method != "POST":
                await self._not_allowed(exchange)
                return
            if method == "countTokens":
                await self._count_tokens(exchange, model, version)
            else:
                stream = method == "streamGenerateContent"
                await self._generate(exchange, model, version, method, stream)
        else:
            await self._not_found(exchange)

    async def _authorized(self, exchange: Exchange, query: dict[str, list[str]]) -> bool:
        """True when the key is right (or none is needed); else the error went out."""
        key = self.backend.api_key
        if key is None:
            return True
        given = exchange.headers.get("x-goog-api-key") or next(iter(query.get("key", ())), "")
        if given == key:
            return True
        body = gw.api_key_invalid() if given else gw.api_key_missing()
        await send_json(exchange.send, 400 if given else 403, body)
        return False

    async def _not_found(self, exchange: Exchange) -> None:
        message = f"The requested URL {exchange.path} was not found on this server."
        await send_json(exchange.send, 404, gw.error_body(404, message))

    async def _not_allowed(self, exchange: Exchange) -> None:
        message = f"Method {exchange.method} not allowed for {exchange.path}."
        await send_json(exchange.send, 405, gw.error_body(405, message, "INVALID_ARGUMENT"))

    def _error(self, status: int, retry_after_s: float | None) -> tuple[Any, Headers]:
        body = gw.error_for_status(status, retry_after_s)
        return body, retry_headers(retry_after_s, millis=False)

    # -- models -----------------------------------------------------------------

    async def _models(self, exchange: Exchange) -> None:
        if await self._fault(exchange, self.backend.default_knobs):
            return
        await send_json(exchange.send, 200, gw.model_list(self.backend.models))

    async def _model(self, exchange: Exchange, requested: str, version: str) -> None:
        model = self.backend.resolve_model(requested)
        if model is None:
            await send_json(exchange.send, 404, gw.model_not_found(requested, version, "get"))
            return
        await send_json(exchange.send, 200, gw.model_object(model))

    # -- generation -------------------------------------------------------------

    def _parse(self, exchange: Exchange, model: str, stream: bool) -> ChatRequest:
        body = exchange.body if isinstance(exchange.body, dict) else parse_json(exchange.raw)
        return parse_generate_request(body, model, stream)

    async def _count_tokens(self, exchange: Exchange, requested: str, version: str) -> None:
        try:
            body = exchange.body if isinstance(exchange.body, dict) else parse_json(exchange.raw)
            inner = body.get("generateContentRequest") if isinstance(body, dict) else None
            request = parse_generate_request(inner or body, requested, False)
        except GeminiRequestError as exc:
            await send_json(exchange.send, exc.status, gw.error_body(exc.status, exc.message))
            return
        if self.backend.resolve_model(requested) is None:
            body = gw.model_not_found(requested, version, "countTokens")
            await send_json(exchange.send, 404, body)
            return
        total = count_prompt_tokens(request.messages)
        await send_json(exchange.send, 200, {"totalTokens": total})

    async def _generate(
        self,
        exchange: Exchange,
        requested: str,
        version: str,
        method: str,
        stream: bool,
    ) -> None:
        backend = self.backend
        try:
            request = self._parse(exchange, requested, stream)
        except GeminiRequestError as exc:
            await send_json(exchange.send, exc.status, gw.error_body(exc.status, exc.message))
            return
        backend.stats.by_model[requested] += 1
        model = backend.resolve_model(requested)
        if model is None:
            await send_json(exchange.send, 404, gw.model_not_found(requested, version, method))
            return
        await self._answer(exchange, request, model)

    async def _complete(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        call = plan.tool_call
        if call is not None:
            parts = [gw.function_call_part(call.name, json.loads(call.arguments))]
        else:
            parts = [{"text": plan.text}]
        body = gw.response(
            parts,
            request.model,
            gw.new_response_id(),
            gw.usage_metadata(plan.prompt_tokens, plan.completion_tokens),
            gw.finish_reason(plan.finish_reason),
        )
        await send_complete(self.backend, exchange, knobs, plan, body, events=_event_count(plan))

    async def _stream(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """Events, the last one carrying finishReason (the tail only closes the array).

        Text streams one event per token; a function call comes whole in one event, as
        Gemini sends it. cut_after ends the connection after that many events, before the
        finishReason.
        """
        sse = "sse" in _query(exchange).get("alt", ())  # else Gemini's JSON-array stream
        events = _stream_events(plan, request.model)
        shape = stream_cut(knobs, len(events))
        if not shape.cut:
            events[-1] = _finished(events[-1], plan)
        stream = EncodedStream(
            SSE_TYPE if sse else _JSON_STREAM_TYPE,
            [_encode(event, index, sse) for index, event in enumerate(events[: shape.count])],
            b"" if sse else b"]",
            tail_with_last=True,
        )
        await send_stream(self.backend, exchange, knobs, shape, stream)


def _query(exchange: Exchange) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(exchange.query)


def _split_path(path: str) -> tuple[str | None, str | None, str | None]:
    """(API version, model, method) of /VERSION/models[/MODEL[:METHOD]]; Nones if not."""
    for version in gw.API_VERSIONS:
        prefix = f"/{version}/models"
        if path == prefix:
            return version, None, None
        if path.startswith(prefix + "/") and len(path) > len(prefix) + 1:
            name = path[len(prefix) + 1 :]
            model, sep, method = name.rpartition(":")
            if sep and model:
                return version, model, method
            return version, name, None
    return None, None, None


def _event_count(plan: ReplyPlan) -> int:
    """How many events the answer streams as: one per text token, one for a call."""
    return 1 if plan.tool_call is not None else max(1, len(plan.text_tokens))


def _stream_events(plan: ReplyPlan, model: str) -> list[dict[str, Any]]:
    """The streamed deltas (never empty), each with the usage so far."""
    response_id = gw.new_response_id()
    call = plan.tool_call
    if call is not None:
        part = gw.function_call_part(call.name, json.loads(call.arguments))
        usage = gw.usage_metadata(plan.prompt_tokens, plan.completion_tokens)
        return [gw.response([part], model, response_id, usage)]
    tokens = plan.text_tokens or [""]
    return [
        gw.response(
            [{"text": token}],
            model,
            response_id,
            gw.usage_metadata(plan.prompt_tokens, min(index + 1, len(plan.text_tokens))),
        )
        for index, token in enumerate(tokens)
    ]


def _finished(event: dict[str, Any], plan: ReplyPlan) -> dict[str, Any]:
    candidate = dict(event["candidates"][0], finishReason=gw.finish_reason(plan.finish_reason))
    return dict(event, candidates=[candidate])


def _encode(event: dict[str, Any], index: int, sse: bool) -> bytes:
    if sse:
        return gw.sse_event(event)
    return (b"[" if index == 0 else b",\r\n") + dumps(event)
