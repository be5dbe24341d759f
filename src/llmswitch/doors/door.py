"""The doors as the front end uses them: read, answer, stream and error per dialect.

``/v1/chat/completions`` is the OpenAI door (the identity);
``/v1/messages`` is the Anthropic one, for the ``anthropic`` SDK and Claude-Code-style
clients, routed through the same brain to whichever backend is chosen.
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


async def _same(events: AsyncIterator[bytes], ex: Exchange) -> AsyncIterator[bytes]:
    # aclosing: a client that leaves closes this generator, and through it the relay's,
    # whose cleanup (upstream closed, ledger row written) must run now, not at GC.
    async with aclosing(events):  # type: ignore[type-var]
        async for chunk in events:
            yield chunk


OPENAI = FrontDoor(
    read=lambda body: body,
    answer=lambda payload, ex: payload,
    stream=_same,
    error=_openai_error,
)


def _read_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return messages_to_openai(body)
    except DoorError as exc:
        raise GatewayError(400, str(exc), param=exc.param, code="invalid_request") from None


def _served_model(ex: Exchange) -> str:
    return ex.served_by.model.id if ex.served_by else str(ex.requested_model)


def _anthropic_answer(payload: bytes, ex: Exchange) -> bytes:
    return json.dumps(openai_to_message(json.loads(payload), _served_model(ex))).encode()


async def _anthropic_stream(events: AsyncIterator[bytes], ex: Exchange) -> AsyncIterator[bytes]:
    # message_start carries the prompt's size before the upstream has reported it.
    writer = MessageStreamWriter(
        _served_model(ex),
        message_id=f"msg_{ex.request_id}",
        input_tokens=estimate_tokens(prompt_chars(ex.body)),
    )
    async with aclosing(events):  # type: ignore[type-var]
        async for chunk in events:
            out = writer.feed_sse(chunk)
            if out:
                yield out
    if not writer.closed:
        yield writer.finish()


def _anthropic_error(err: GatewayError, headers: dict[str, str]) -> Response:
    body = anthropic_error(err.status, err.message, headers.get("X-Request-Id"))
    return Response(json.dumps(body), err.status, {**headers, **err.headers}, content_type=JSON)


ANTHROPIC = FrontDoor(
    read=_read_anthropic,
    answer=_anthropic_answer,
    stream=_anthropic_stream,
    error=_anthropic_error,
)
