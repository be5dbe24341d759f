"""The doors as the front end uses them: read, answer, stream and error per dialect.

``/v1/chat/completions`` is the OpenAI door (the identity); ``/v1/messages`` is the
Anthropic one, for the ``anthropic`` SDK and Claude Code; ``/v1/responses`` the OpenAI
Responses one, for Codex and the ``openai`` SDK's ``responses``. Each is routed through
the same brain to whichever backend is chosen. On every door the answer's ``model`` is
the gateway's model id (the upstream's own name is in ``X-Router-Upstream-Model``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from quart import Response

from llmswitch.doors.anthropic import (
    MessageStreamWriter,
    anthropic_error,
    messages_to_openai,
    openai_to_message,
)
from llmswitch.doors.common import DoorError
from llmswitch.doors.responses import (
    ResponseShell,
    ResponseStreamWriter,
    openai_to_response,
    responses_to_openai,
)
from llmswitch.doors.sse import ChunkWriter
from llmswitch.front.chat import Exchange
from llmswitch.front.errors import GatewayError
from llmswitch.providers.openai import estimate_tokens, prompt_chars

JSON = "application/json"


@dataclass(frozen=True)
class FrontDoor:
    read: Callable[[dict[str, Any]], dict[str, Any]]
    answer: Callable[[bytes, Exchange], bytes]
    stream: Callable[[AsyncIterator[bytes], Exchange], AsyncIterator[bytes]]
    error: Callable[[GatewayError, dict[str, str]], Response]


def _openai_error(err: GatewayError, headers: dict[str, str]) -> Response:
    return Response(
        json.dumps(err.body()), err.status, {**headers, **err.headers}, content_type=JSON
    )


def _served_model(ex: Exchange) -> str:
    return ex.served_by.model.id if ex.served_by else str(ex.requested_model)


def _model_renamer(ex: Exchange) -> Callable[[bytes], bytes]:
    """Puts the gateway's model id where the upstream wrote its own name.

    A ``"model": "<name>"`` pair can only be a JSON key and its value (inside a string the
    quotes would be escaped), so replacing the bytes of both spacings is exact; events
    reach here whole.
    """
    if ex.served_by is None or ex.served_by.model.upstream_name == ex.served_by.model.id:
        return lambda data: data
    upstream = json.dumps(ex.served_by.model.upstream_name).encode()
    served = json.dumps(ex.served_by.model.id).encode()
    pairs = [(b'"model":' + sp + upstream, b'"model":' + sp + served) for sp in (b"", b" ")]

    def rename(data: bytes) -> bytes:
        for old, new in pairs:
            data = data.replace(old, new)
        return data

    return rename


async def _openai_stream(events: AsyncIterator[bytes], ex: Exchange) -> AsyncIterator[bytes]:
    rename = _model_renamer(ex)
    # aclosing: a client that leaves closes this generator, and through it the relay's,
    # whose cleanup (upstream closed, ledger row written) must run now, not at GC.
    async with aclosing(events):  # type: ignore[type-var]
        async for chunk in events:
            yield rename(chunk)


OPENAI = FrontDoor(
    read=lambda body: body,
    answer=lambda payload, ex: _model_renamer(ex)(payload),
    stream=_openai_stream,
    error=_openai_error,
)


def _reader(
    translate: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A door's ``read``: its translator, with a refusal turned into a 400."""

    def read(body: dict[str, Any]) -> dict[str, Any]:
        try:
            return translate(body)
        except DoorError as exc:
            raise GatewayError(400, str(exc), param=exc.param, code="invalid_request") from None

    return read


async def _translated(events: AsyncIterator[bytes], writer: ChunkWriter) -> AsyncIterator[bytes]:
    async with aclosing(events):  # type: ignore[type-var]
        async for chunk in events:
            out = writer.feed_sse(chunk)
            if out:
                yield out
    if not writer.closed:
        yield writer.finish()


def _anthropic_answer(payload: bytes, ex: Exchange) -> bytes:
    return json.dumps(openai_to_message(json.loads(payload), _served_model(ex))).encode()


def _anthropic_stream(events: AsyncIterator[bytes], ex: Exchange) -> AsyncIterator[bytes]:
    # message_start carries the prompt's size before the upstream has reported it.
    writer = MessageStreamWriter(
        _served_model(ex),
        message_id=f"msg_{ex.request_id}",
        input_tokens=estimate_tokens(prompt_chars(ex.body)),
    )
    return _translated(events, writer)


def _anthropic_count(body: dict[str, Any]) -> int:
    """``/v1/messages/count_tokens``: the estimate the gateway routes on, tools included."""
    chat = ANTHROPIC.read({"max_tokens": 1, **body})
    return estimate_tokens(prompt_chars(chat) + len(json.dumps(chat.get("tools") or [])))


def _anthropic_error(err: GatewayError, headers: dict[str, str]) -> Response:
    """The error in Anthropic's shape; "no model can serve this" stops Claude Code at once.

    Claude Code retries ``overloaded_error`` and every 5xx for minutes (measured: 10
    requests in 150 s, no answer). Exhaustion is not overload: it goes out as
    ``api_error`` with ``x-should-retry: false``, which the Anthropic SDKs and Claude Code
    obey, so the user hears at once that nothing can serve the request.
    """
    extra = {**headers, **err.headers}
    type_ = None
    if err.code == "no_candidates":
        type_ = "api_error"
        extra["x-should-retry"] = "false"
    body = anthropic_error(err.status, err.message, headers.get("X-Request-Id"), type_)
    return Response(json.dumps(body), err.status, extra, content_type=JSON)


ANTHROPIC = FrontDoor(
    read=_reader(messages_to_openai),
    answer=_anthropic_answer,
    stream=_anthropic_stream,
    error=_anthropic_error,
)
ANTHROPIC_COUNT = _anthropic_count


def _shell(ex: Exchange) -> ResponseShell:
    return ResponseShell(ex.client_body, _served_model(ex), id=f"resp_{ex.request_id}")


def _responses_answer(payload: bytes, ex: Exchange) -> bytes:
    estimate = estimate_tokens(prompt_chars(ex.body))
    return json.dumps(openai_to_response(json.loads(payload), _shell(ex), estimate)).encode()


def _responses_stream(events: AsyncIterator[bytes], ex: Exchange) -> AsyncIterator[bytes]:
    writer = ResponseStreamWriter(_shell(ex), estimate_tokens(prompt_chars(ex.body)))
    return _translated(events, writer)


RESPONSES = FrontDoor(
    read=_reader(responses_to_openai),
    answer=_responses_answer,
    stream=_responses_stream,
    error=_openai_error,
)


def door_for_path(path: str) -> FrontDoor:
    """The dialect a path's answers (errors included) are written in."""
    return ANTHROPIC if path.startswith("/v1/messages") else OPENAI
