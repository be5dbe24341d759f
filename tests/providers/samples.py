"""Requests, tools and recorded answers the wire and simulator tests share.

One definition of the weather and clock tools (OpenAI's format unless named otherwise),
so the provider tests and the simulator tests exercise the same shapes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "providers"

USER: list[dict[str, Any]] = [{"role": "user", "content": "hello brave new world"}]
STRING: dict[str, Any] = {"type": "string"}
UNIT: dict[str, Any] = {"type": "string", "enum": ["celsius", "fahrenheit"]}


def object_schema(*required: str, closed: bool = False, **properties: Any) -> dict[str, Any]:
    """A JSON schema object; *closed* adds additionalProperties: false."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    return schema


def function_tool(
    name: str, parameters: dict[str, Any], description: str | None = None
) -> dict[str, Any]:
    """An OpenAI function tool."""
    function: dict[str, Any] = {"name": name}
    if description is not None:
        function["description"] = description
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def weather_schema(*, closed: bool = False) -> dict[str, Any]:
    """The simulator tests' weather parameters: city and unit required, days optional."""
    return object_schema(
        "city", "unit", closed=closed, city=STRING, unit=UNIT, days={"type": "integer"}
    )


def weather_tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return function_tool("get_weather", parameters, "Weather for a city")


CLOCK_TOOL = function_tool("get_time", object_schema())


def data_bytes(wire: str, name: str) -> bytes:
    """A recorded answer under tests/data/providers/<wire>/."""
    return (DATA / wire / name).read_bytes()


def data_json(wire: str, name: str) -> Any:
    return json.loads((DATA / wire / name).read_text(encoding="utf-8"))


def openai_events(data: bytes) -> list[Any]:
    """The JSON payloads of OpenAI SSE bytes; "[DONE]" stays a string."""
    out: list[Any] = []
    for raw in data.split(b"\n\n"):
        if not raw:
            continue
        assert raw.startswith(b"data: "), raw
        payload = raw[len(b"data: ") :]
        out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return out
