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
import math
import urllib.parse
from typing import Any

import trio

from . import gemini_wire as gw
from .asgi import (
    JSON_TYPE,
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
from .chat_request import ChatRequest
from .gemini_request import GeminiRequestError, parse_generate_request, parse_json
from .knobs import ModelKnobs
from .openai_app import CONTROL_PREFIX, DEFAULT_BODY_LIMIT, Exchange, OpenAISimApp
from .reply import ReplyPlan, plan_reply
from .stats import RecordedRequest
from .tokens import count_prompt_tokens

_JSON_STREAM_TYPE = b"application/json; charset=UTF-8"
_METHODS = ("generateContent", "streamGenerateContent")


class GeminiSimApp:
    """ASGI app serving one SimBackend over the Gemini API wire format."""

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        self.backend = backend
        self.body_limit = body_limit
        self._control = OpenAISimApp(backend, body_limit=body_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX):
            await self._http(scope, receive, send)
        else:  # /_sim/* control and lifespan
            await self._control(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        exchange = Exchange(scope, send, self.backend)
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            try:
                exchange.set_body(await read_body(receive, self.body_limit))
            except ClientGone:
                self.backend.stats.disconnects += 1
                return
            except BodyTooLarge:
                await send_json(exchange.send, 413, gw.error_for_status(413))
                return
            self._record(exchange)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch, receive, exchange, nursery.cancel_scope)
                await self._dispatch(exchange, query)
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
        _, model, _ = _split_path(exchange.path)
        self.backend.requests.append(
            RecordedRequest(
                method=exchange.method,
                path=exchange.path,
                headers=exchange.headers,
                body=body,
                model=model,
            )
        )

    # -- routing ----------------------------------------------------------------

    async def _dispatch(self, exchange: Exchange, query: dict[str, list[str]]) -> None:
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
                sse = "sse" in query.get("alt", ())
                await self._generate(exchange, model, version, method, stream, sse)
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
                gw.error_for_status(knobs.error_status, knobs.retry_after_s),
                _retry_headers(knobs.retry_after_s),
            )
            return True
        if backend.should_inject_error(knobs):
            stats.faults["error_rate"] += 1
            await send_json(exchange.send, 500, gw.error_for_status(500))
            return True
        return False

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
        sse: bool,
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
        knobs = backend.knobs_for(model)
        if await self._fault(exchange, knobs):
            return
        plan = plan_reply(request, knobs)
        if stream:
            await self._stream(exchange, requested, knobs, plan, sse)
        else:
            await self._complete(exchange, requested, knobs, plan)

    async def _complete(
        self, exchange: Exchange, model: str, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """Non-stream answer, sent when the last token would have been generated."""
        delay = knobs.ttft_s
        if knobs.tokens_per_s > 0 and len(plan.pieces) > 1:
            delay += (len(plan.pieces) - 1) / knobs.tokens_per_s
        if delay > 0:
            await trio.sleep(delay)
        call = plan.tool_call
        if call is not None:
            parts = [gw.function_call_part(call.name, json.loads(call.arguments))]
        else:
            parts = [{"text": plan.text}]
        body = gw.response(
            parts,
            model,
            gw.new_response_id(),
            gw.usage_metadata(plan.prompt_tokens, plan.completion_tokens),
            gw.finish_reason(plan.finish_reason),
        )
        if knobs.cut_after is not None and knobs.cut_after <= _event_count(plan):
            await self._cut_json(exchange, body)
            return
        await send_json(exchange.send, 200, body)

    async def _cut_json(self, exchange: Exchange, body: dict[str, Any]) -> None:
        """Announce the full length, send half the body, then drop the connection."""
        data = dumps(body)
        self.backend.stats.faults["cut"] += 1
        await start_stream(
            exchange.send, 200, JSON_TYPE, [(b"content-length", str(len(data)).encode())]
        )
        await send_piece(exchange.send, data[: len(data) // 2])
        # Returning without more_body=False makes hypercorn close the socket mid-body.

    async def _stream(
        self, exchange: Exchange, model: str, knobs: ModelKnobs, plan: ReplyPlan, sse: bool
    ) -> None:
        """Events paced by ttft_s / tokens_per_s, the last one carrying finishReason.

        Text streams one event per token; a function call comes whole in one event, as
        Gemini sends it. cut_after ends the connection after that many events, before the
        finishReason.
        """
        backend = self.backend
        stats = backend.stats
        started = trio.current_time()
        await start_stream(
            exchange.send,
            200,
            SSE_TYPE if sse else _JSON_STREAM_TYPE,
            [(b"cache-control", b"no-cache")],
        )
        stats.open_streams += 1
        stream_open = True
        backend.notify()
        try:
            events = _stream_events(plan, model)
            cut_after = knobs.cut_after
            cut = cut_after is not None and cut_after <= len(events)
            count = cut_after if cut_after is not None and cut else len(events)
            if not cut:
                events[-1] = _finished(events[-1], plan)
            encoded = [_encode(event, index, sse) for index, event in enumerate(events[:count])]
            tail = b"" if sse else b"]"
            first_at = started + knobs.ttft_s
            tps = knobs.tokens_per_s
            if first_at > trio.current_time():
                await trio.sleep_until(first_at)
            if tps > 0:
                # Paced: one write per event, on an absolute schedule (no drift).
                for index, data in enumerate(encoded):
                    due = first_at + index / tps
                    if due > trio.current_time():
                        await trio.sleep_until(due)
                    if not cut and index == count - 1:
                        stream_open = False
                        stats.open_streams -= 1
                        await end_stream(exchange.send, data + tail)
                    else:
                        await send_piece(exchange.send, data)
                if cut:
                    stats.faults["cut"] += 1
                return
            data = b"".join(encoded)
            if cut:
                stats.faults["cut"] += 1
                if data:
                    await send_piece(exchange.send, data)
                return  # hypercorn closes the socket: no finishReason
            stream_open = False
            stats.open_streams -= 1
            await end_stream(exchange.send, data + tail)
        finally:
            if stream_open:
                stats.open_streams -= 1
            backend.notify()


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


def _retry_headers(retry_after_s: float | None) -> Headers:
    if retry_after_s is None:
        return []
    return [(b"retry-after", str(math.ceil(retry_after_s)).encode())]
