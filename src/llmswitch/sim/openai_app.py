"""The simulator's ASGI 3 app: OpenAI-compatible routes, Ollama probes, /_sim control.

Request handling, faults and pacing are shared (serving, pacing); this module keeps the
OpenAI wire format and the control routes the other formats' apps delegate to.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from . import ollama_wire
from .asgi import SSE_TYPE, Headers, Receive, Scope, Send, send_json, send_response
from .backend import SimBackend, UnknownModelError
from .chat_request import ChatRequest, RequestError, parse_chat_request, parse_json
from .exchange import CONTROL_PREFIX, NO_BODY, Exchange
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
from .pacing import EncodedStream, send_complete, send_stream, stream_cut
from .reply import ReplyPlan
from .serving import DEFAULT_BODY_LIMIT, Routes, WireApp, retry_headers


class OpenAISimApp(WireApp):
    """ASGI app serving one SimBackend over the OpenAI wire format."""

    def __init__(self, backend: SimBackend, *, body_limit: int = DEFAULT_BODY_LIMIT) -> None:
        super().__init__(backend, body_limit=body_limit)
        self._routes = Routes(
            {
                ("POST", "/v1/chat/completions"): self._chat,
                ("GET", "/v1/models"): self._models,
                ("GET", "/api/tags"): self._ollama_tags,
                ("POST", "/api/show"): self._ollama_show,
                ("GET", "/api/version"): self._ollama_version,
                ("GET", "/"): self._root,
                ("GET", "/_sim/stats"): self._sim_stats,
                ("GET", "/_sim/knobs"): self._sim_get_knobs,
                ("POST", "/_sim/knobs"): self._sim_set_knobs,
                ("POST", "/_sim/reset"): self._sim_reset,
            },
            model=self._model,
            refuse=self._refuse,
        )

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/_sim/ routes are served like any other (uncounted); lifespan is acknowledged."""
        if scope["type"] == "http":
            await self._serve(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _dispatch(self, exchange: Exchange) -> None:
        path = exchange.path
        if not path.startswith(CONTROL_PREFIX) and not self._authorized(exchange):
            # Providers quote the key they were given (OpenAI masks its middle; a careless
            # server may not): the gateway must never pass it on.
            given = exchange.headers.get("authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {given}." if given else None
            await send_json(exchange.send, 401, error_for_status(401, message))
            return
        await self._routes.serve(exchange)

    async def _refuse(self, exchange: Exchange, status: int) -> None:
        method, path = exchange.method, exchange.path
        if status == 405:
            body = error_body(f"Method {method} not allowed for {path}.")
        else:
            body = error_body(f"Invalid URL ({method} {path})", code="unknown_url")
        await send_json(exchange.send, status, body)

    def _authorized(self, exchange: Exchange) -> bool:
        key = self.backend.api_key
        return key is None or exchange.headers.get("authorization") == f"Bearer {key}"

    def _error(self, status: int, retry_after_s: float | None) -> tuple[Any, Headers]:
        return error_for_status(status), retry_headers(retry_after_s)

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
            if exchange.body is NO_BODY:
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
        await self._answer(exchange, request, model)

    async def _complete(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
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
            None if knobs.no_usage else usage_object(plan.prompt_tokens, plan.completion_tokens),
        )
        headers = [(b"x-request-id", _request_id())]
        await send_complete(self.backend, exchange, knobs, plan, body, headers=headers)

    async def _stream(
        self, exchange: Exchange, request: ChatRequest, knobs: ModelKnobs, plan: ReplyPlan
    ) -> None:
        """SSE chunks; stall_after leaves the stream open."""
        include_usage = request.include_usage and not knobs.no_usage
        encoder = ChunkEncoder(new_completion_id(), int(time.time()), request.model, include_usage)
        call = plan.tool_call
        head = encoder.role("" if call is None else None)
        if call is not None:
            head += encoder.tool_call_start(new_tool_call_id(), call.name)
        render = encoder.tool_arguments if call is not None else encoder.content
        shape = stream_cut(knobs, len(plan.pieces))
        tail = encoder.finish(plan.finish_reason)
        if include_usage:
            tail += encoder.usage(usage_object(plan.prompt_tokens, plan.completion_tokens))
        stream = EncodedStream(
            SSE_TYPE,
            [render(piece) for piece in plan.pieces[: shape.count]],
            tail + DONE,
            head,
            [(b"x-request-id", _request_id())],
        )
        await send_stream(self.backend, exchange, knobs, shape, stream)

    # -- Ollama probes and root -------------------------------------------------

    async def _ollama_tags(self, exchange: Exchange) -> None:
        if await self._fault(exchange, self.backend.default_knobs):
            return
        body = ollama_wire.tags(self.backend.models, self.backend.created)
        await send_json(exchange.send, 200, body)

    async def _ollama_show(self, exchange: Exchange) -> None:
        """Ollama takes ``model`` (``name`` before 0.5); errors are ``{"error": text}``."""
        if await self._fault(exchange, self.backend.default_knobs):
            return
        body = exchange.body if isinstance(exchange.body, dict) else {}
        asked = body.get("model", body.get("name"))
        if not isinstance(asked, str) or not asked:
            await send_json(exchange.send, 400, {"error": "model is required"})
            return
        model = self.backend.resolve_model(asked)
        if model is None:
            await send_json(exchange.send, 404, ollama_wire.not_found(asked))
            return
        await send_json(exchange.send, 200, ollama_wire.show(model, self.backend.created))

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


def _request_id() -> bytes:
    return b"req_sim" + secrets.token_hex(8).encode()
