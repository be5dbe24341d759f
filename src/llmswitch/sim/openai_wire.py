"""OpenAI chat-completions wire format: response objects, stream chunks, errors.

Pure functions over plain data, no I/O. The shapes follow what api.openai.com sends,
so the official SDK parses them and the gateway's relay sees real-world bytes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from .asgi import dumps

DONE = b"data: [DONE]\n\n"

# Default error type and code per status, as OpenAI uses them.
_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to use this resource."),
    404: ("invalid_request_error", None, "Not found."),
    408: ("server_error", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    413: ("invalid_request_error", None, "Request body too large."),
    422: ("invalid_request_error", None, "Unprocessable request."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (simulated)."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def new_completion_id() -> str:
    return "chatcmpl-sim" + secrets.token_hex(10)


def new_tool_call_id() -> str:
    return "call_sim" + secrets.token_hex(10)


def error_body(
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """OpenAI error envelope: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_for_status(status: int, message: str | None = None) -> dict[str, Any]:
    """The error body OpenAI would send with this status (simulated faults use it)."""
    type_, code, default_message = _ERROR_KINDS.get(
        status,
        ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}."),
    )
    return error_body(message or default_message, type_, code)


def model_object(model: str, created: int, owned_by: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": owned_by}


def model_list(models: Iterable[str], created: int, owned_by: str) -> dict[str, Any]:
    return {"object": "list", "data": [model_object(m, created, owned_by) for m in models]}


def usage_object(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def tool_call_object(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def chat_completion(
    completion_id: str,
    created: int,
    model: str,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """A non-stream `chat.completion` object; without ``usage`` when there is none."""
    completion = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_sim",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    return completion if usage is None else completion | {"usage": usage}


_SLOT = "__llmswitch_sim_slot__"


class ChunkEncoder:
    """Encodes the SSE events of one streamed completion.

    The content chunk is pre-encoded around a slot once per stream, so each token costs
    one json string escape instead of building and dumping a whole dict.
    """

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool):
        self._id = completion_id
        self._created = created
        self._model = model
        self._include_usage = include_usage
        template = self._event({"content": _SLOT}, None)
        prefix, _, suffix = template.partition(dumps(_SLOT))
        self._content_prefix = prefix
        self._content_suffix = suffix

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "system_fingerprint": "fp_sim",
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk

    def _event(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + dumps(self._chunk([choice])) + b"\n\n"

    def role(self, content: str | None = "") -> bytes:
        """First event: the assistant role; content "" for text, null before a tool call."""
        return self._event({"role": "assistant", "content": content}, None)

    def content(self, text: str) -> bytes:
        return self._content_prefix + dumps(text) + self._content_suffix

    def tool_call_start(self, call_id: str, name: str) -> bytes:
        """The tool call's header: index, id, type and function name, empty arguments."""
        call = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._event({"tool_calls": [call]}, None)

    def tool_arguments(self, fragment: str) -> bytes:
        return self._event(
            {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}, None
        )

    def finish(self, finish_reason: str) -> bytes:
        return self._event({}, finish_reason)

    def usage(self, usage: dict[str, Any]) -> bytes:
        """The include_usage event: empty choices and the usage object."""
        chunk = self._chunk([])
        chunk["usage"] = usage
        return b"data: " + dumps(chunk) + b"\n\n"
