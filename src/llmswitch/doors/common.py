"""What every door's translator shares: the refusal it raises and JSON shape checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from llmswitch.providers.common import token_count


class DoorError(ValueError):
    """A request its dialect's API would refuse: answered 400 naming the field.

    ``param`` names the offending field the way the gateway's OpenAI errors do
    (``messages[1].content[0].type``, ``input[2].call_id``).
    """

    status = 400

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def is_list(value: Any) -> TypeGuard[Sequence[Any]]:
    """A JSON array (a str is a Sequence too, and never one)."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def int_or_zero(value: Any) -> int:
    """A token count of an upstream's usage, 0 when absent or not a plausible count."""
    return token_count(value) or 0


def copy_sampling(body: Mapping[str, Any], out: dict[str, Any]) -> None:
    """``temperature``, ``top_p`` and ``stream``, named alike in every dialect, onto ``out``.

    A stream always asks for usage: the ledger wants real counts.
    """
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DoorError(f"{key}: must be a number", key)
        out[key] = value
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise DoorError("stream: must be a boolean", "stream")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
