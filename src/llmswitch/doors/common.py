"""What every door's translator shares: the refusal it raises and JSON shape checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard


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
    """An integer field of an upstream's usage, 0 when absent or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
