"""Reading what a client sends: every mistake is a 400 that says what is wrong, never a 500.

Parsing is bounded by design: JSON nested deeper than :data:`MAX_JSON_DEPTH` is refused
(Python's parser and encoder recurse, and 5,000 levels raised RecursionError on every
door), and ``NaN`` and ``Infinity`` are refused (they are not JSON, and upstreams reject
them). A chat body's types are then checked strictly by ``doors.openai_chat``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from llmswitch.front.errors import GatewayError, bad_request

#: Deepest nesting of arrays and objects accepted; chat bodies with tool schemas use ~20.
MAX_JSON_DEPTH: Final = 100


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _too_deep(value: Any) -> bool:
    """Whether arrays and objects nest deeper than MAX_JSON_DEPTH; iterative, so it cannot
    itself run out of stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def parse_json_object(raw: str | bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; GatewayError 400 (``invalid_json``) saying what is wrong."""
    too_deep = bad_request(
        f"request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels",
        code="invalid_json",
    )
    try:
        body = json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN and Infinity
        raise bad_request(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object", code="invalid_json")
    if _too_deep(body):
        raise too_deep
    return body


def too_large(max_bytes: int) -> GatewayError:
    return GatewayError(413, f"request body exceeds {max_bytes} bytes", code="request_too_large")
