"""Anthropic Messages wire format for the simulator: requests, messages, stream events.

Pure functions over plain data, no I/O. Shapes follow what api.anthropic.com sends, so
the official ``anthropic`` SDK parses them and the gateway's translator sees real bytes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .asgi import dumps
from .chat_request import ChatRequest, RequestError

# Error type and default message per status, as Anthropic documents them.
_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (simulated)."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}

STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
}


def new_message_id() -> str:
    return "msg_sim" + secrets.token_hex(10)


def new_tool_use_id() -> str:
    return "toolu_sim" + secrets.token_hex(10)


def new_request_id() -> str:
    return "req_sim" + secrets.token_hex(10)


def error_body(type_: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope: {"type": "error", "error": {"type", "message"}, ...}."""
    return {
        "type": "error",
        "error": {"type": type_, "message": message},
        "request_id": new_request_id(),
    }


def error_for_status(status: int, message: str | None = None) -> dict[str, Any]:
    """The error body Anthropic would send with this status (simulated faults use it)."""
    type_, default = _ERROR_KINDS.get(
        status,
        ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}."),
    )
    return error_body(type_, message or default)


def model_object(model: str, created: int) -> dict[str, Any]:
    created_at = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": model, "display_name": model, "created_at": created_at}


def model_list(models: Iterable[str], created: int) -> dict[str, Any]:
    data = [model_object(m, created) for m in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def usage_object(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_object(
    message_id: str,
    model: str,
    content: list[dict[str, Any]],
    stop_reason: str | None,
    usage: dict[str, Any],
) -> dict[str, Any]:
    """A Messages API ``message`` object (the whole non-stream answer)."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


# -- requests -------------------------------------------------------------------------


def _invalid(message: str) -> RequestError:
    return RequestError(400, message)


def _text_of_system(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return " ".join(
            b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def parse_messages_request(body: Any) -> ChatRequest:
    """Validate a decoded POST /v1/messages body, as the simulator's common ChatRequest.

    Tools and tool_choice are given their OpenAI shape, so sim/reply.py plans the answer
    exactly as it does for the OpenAI wire; the system prompt counts as a message.
    """
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _invalid("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("max_tokens: Input should be a valid integer greater than 0")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: Field required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise _invalid(f"messages.{index}.content: Field required")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _invalid("stream: Input should be a valid boolean")
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise _invalid("tools: Input should be a valid list")
    openai_tools = [
        {
            "type": "function",
            "function": {"name": t.get("name"), "parameters": t.get("input_schema") or {}},
        }
        for t in tools
    ]
    system = _text_of_system(body.get("system"))
    counted = [{"role": "system", "content": system}, *messages] if system else messages
    return ChatRequest(
        model=model,
        messages=counted,
        stream=stream,
        include_usage=True,
        max_tokens=max_tokens,
        tools=openai_tools,
        tool_choice=_openai_tool_choice(body.get("tool_choice")),
        body=body,
    )


def _openai_tool_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return None
    kind = choice.get("type")
    if kind == "none":
        return "none"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name")}}
    if kind == "any":
        return "required"
    return "auto"


# -- stream events --------------------------------------------------------------------


def event(name: str, payload: dict[str, Any]) -> bytes:
    """One SSE event: the ``event:`` line (the SDK skips events without it) and the data."""
    return b"event: " + name.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


_SLOT = "__llmswitch_sim_slot__"

PING = b'event: ping\ndata: {"type": "ping"}\n\n'
MESSAGE_STOP = event("message_stop", {"type": "message_stop"})


class EventEncoder:
    """Encodes the SSE events of one streamed message; block index 0 is the only block."""

    def __init__(self, message_id: str, model: str) -> None:
        self._id = message_id
        self._model = model
        # The text delta is pre-encoded around a slot: one JSON string escape per token.
        delta = {"type": "text_delta", "text": _SLOT}
        template = event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )
        self._text_prefix, _, self._text_suffix = template.partition(dumps(_SLOT))

    def message_start(self, input_tokens: int) -> bytes:
        message = message_object(self._id, self._model, [], None, usage_object(input_tokens, 1))
        return event("message_start", {"type": "message_start", "message": message})

    def text_start(self) -> bytes:
        block = {"type": "text", "text": ""}
        return event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )

    def tool_start(self, tool_id: str, name: str) -> bytes:
        block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
        return event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )

    def text(self, text: str) -> bytes:
        return self._text_prefix + dumps(text) + self._text_suffix

    def arguments(self, fragment: str) -> bytes:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        return event(
            "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
        )

    def block_stop(self) -> bytes:
        return event("content_block_stop", {"type": "content_block_stop", "index": 0})

    def message_delta(self, stop_reason: str, output_tokens: int) -> bytes:
        return event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )


def tool_input(arguments: str) -> Any:
    """The tool_use block's input object for the plan's JSON arguments."""
    return json.loads(arguments)
