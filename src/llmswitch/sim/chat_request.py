"""Parse and check a chat-completions request body the way OpenAI rejects bad ones.

The gateway's error handling is tested against these answers, so a malformed request
gets the same status and error shape a real backend would give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .tokens import content_text


class RequestError(Exception):
    """A request OpenAI would reject: status plus an OpenAI-style error."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """The parts of a chat request the simulator acts on."""

    model: str
    messages: list[Any]
    stream: bool
    include_usage: bool
    max_tokens: int | None
    tools: list[dict[str, Any]]
    tool_choice: Any
    body: dict[str, Any]

    def last_user_text(self) -> str:
        """Text of the last user message ("" when there is none)."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


def parse_json(raw: bytes) -> Any:
    """Decode a JSON body or raise the 400 OpenAI sends for unparseable JSON."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means "
            "you aren't using your HTTP library correctly.)",
        ) from exc


def parse_chat_request(body: Any) -> ChatRequest:
    """Validate a decoded POST /v1/chat/completions body."""
    if not isinstance(body, dict):
        raise RequestError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(
            400, "'messages' must be a non-empty array of message objects.", param="messages"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(
                400, f"messages[{index}] must be an object with a 'role'.", param="messages"
            )
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    include_usage = bool(stream and isinstance(options, dict) and options.get("include_usage"))
    max_tokens = _max_tokens(body)
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RequestError(400, "'tools' must be an array of tool objects.", param="tools")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        tools=tools,
        tool_choice=body.get("tool_choice"),
        body=body,
    )


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(400, f"'{key}' must be a positive integer.", param=key)
        return value
    return None
