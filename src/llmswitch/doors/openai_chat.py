"""The OpenAI chat-completions dialect: what the pipeline's body must hold.

Every door's request becomes this shape, so the check runs on every door's output too.
Only what routing and relaying rely on is checked, strictly (``"stream": "false"`` is a
mistake, not a stream; a content part's ``text`` is a string); everything else passes
through to the upstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmswitch.front.errors import bad_request

#: Largest ``max_tokens`` accepted: far above any context window, far below overflow.
MAX_TOKENS_LIMIT: Final = 100_000_000


class _Strict(BaseModel):
    # Strict: JSON types as sent; a string is never read as a boolean or a number.
    model_config = ConfigDict(extra="allow", strict=True)


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]


class StreamOptions(_Strict):
    include_usage: bool | None = None


class ChatBody(_Strict):
    """Only what routing and relaying rely on is checked; the rest passes through upstream."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    tools: list[Any] | None = None
    metadata: dict[str, Any] | None = None


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _check_content(messages: list[Any]) -> None:
    """Each message's content is a string, null, or a list of typed parts with string text."""
    for i, message in enumerate(messages):
        content = message.get("content")
        if content is None or isinstance(content, str):
            continue
        where = f"messages[{i}].content"
        if not isinstance(content, list):
            raise bad_request(f"{where}: must be a string or an array of content parts", where)
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                param = f"{where}[{j}].type"
                raise bad_request(f"{param}: a content part needs a string type", param)
            if "text" in part and not isinstance(part["text"], str):
                param = f"{where}[{j}].text"
                raise bad_request(f"{param}: must be a string", param)


def validate_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Check an OpenAI chat-completions body; GatewayError 400 naming the field."""
    try:
        ChatBody.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = _field_path(err["loc"])
        raise bad_request(f"{param}: {err['msg']}", param=param) from None
    _check_content(body["messages"])
    return body
