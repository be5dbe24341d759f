"""Decide what a simulated model answers: canned or echoed text, or a tool call.

Both the stream and the non-stream path render the same plan, so a streamed answer
always reassembles to exactly the non-stream one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .chat_request import ChatRequest
from .knobs import ModelKnobs
from .tokens import count_prompt_tokens, split_tokens


@dataclass(frozen=True, slots=True)
class ToolCallPlan:
    name: str
    arguments: str
    fragments: list[str]


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """The answer as a list of pieces, one per streamed delta."""

    text_tokens: list[str]
    tool_call: ToolCallPlan | None
    finish_reason: str
    prompt_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.text_tokens)

    @property
    def pieces(self) -> list[str]:
        """What gets streamed, one delta each: text tokens or argument fragments."""
        return self.tool_call.fragments if self.tool_call else self.text_tokens

    @property
    def completion_tokens(self) -> int:
        if self.tool_call is not None:
            return 1 + len(self.tool_call.fragments)  # the name plus the arguments
        return len(self.text_tokens)


def plan_reply(request: ChatRequest, knobs: ModelKnobs) -> ReplyPlan:
    """What the model answers to this request under these knobs."""
    prompt_tokens = count_prompt_tokens(request.messages)
    tool = _chosen_tool(request) if knobs.tool_call else None
    if tool is not None:
        name, parameters = tool
        arguments = json.dumps(sample_arguments(parameters))
        call = ToolCallPlan(name, arguments, split_tokens(arguments))
        return ReplyPlan([], call, "tool_calls", prompt_tokens)
    text = knobs.reply if knobs.reply is not None else f"echo: {request.last_user_text()}"
    tokens = split_tokens(text)
    finish_reason = "stop"
    if request.max_tokens is not None and len(tokens) > request.max_tokens:
        tokens = tokens[: request.max_tokens]
        finish_reason = "length"
    return ReplyPlan(tokens, None, finish_reason, prompt_tokens)


def _chosen_tool(request: ChatRequest) -> tuple[str, dict[str, Any]] | None:
    """The forced tool (tool_choice) if any, else the first; None when tools are off."""
    functions = [
        tool["function"]
        for tool in request.tools
        if isinstance(tool.get("function"), dict) and isinstance(tool["function"].get("name"), str)
    ]
    if not functions or request.tool_choice == "none":
        return None
    chosen = functions[0]
    choice = request.tool_choice
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        chosen = next((f for f in functions if f["name"] == wanted), chosen)
    parameters = chosen.get("parameters")
    return chosen["name"], parameters if isinstance(parameters, dict) else {}


def sample_arguments(schema: dict[str, Any]) -> dict[str, Any]:
    """Plausible arguments for a JSON-schema object (required properties, else all)."""
    value = _sample(schema, depth=0)
    return value if isinstance(value, dict) else {}


def _sample(schema: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > 6:
        return "sample"
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _sample(options[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        required = schema.get("required")
        names = [n for n in required if n in properties] if isinstance(required, list) else []
        return {name: _sample(properties[name], depth + 1) for name in names or properties}
    if kind == "array":
        items = schema.get("items")
        return [_sample(items, depth + 1)] if isinstance(items, dict) else []
    return _SCALARS.get(kind, "sample") if isinstance(kind, str) else "sample"


_SCALARS: dict[str, Any] = {
    "string": "sample",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "null": None,
}
