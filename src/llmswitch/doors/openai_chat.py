"""The OpenAI chat-completions dialect: what the pipeline's body must hold.

Every door's request becomes this shape, so the check runs on every door's output too.
Only what routing relies on is checked; everything else passes through to the upstream.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmswitch.front.errors import bad_request


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatBody(BaseModel):
    """Only what routing relies on is checked; everything else passes through upstream."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validate_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Check what routing relies on; GatewayError 400 naming the field."""
    try:
        ChatBody.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        param = _field_path(err["loc"])
        raise bad_request(f"{param}: {err['msg']}", param=param) from None
    return body
