"""The requests real agent harnesses sent (tests/data/harness/), as routing reads them.

Routing reads OpenAI chat bodies: each door turns its dialect into one first. Anthropic
captures go through the Anthropic door's reader; Responses captures through a reading of
their items that is enough for routing (messages, function calls and their outputs).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from llmswitch.doors.anthropic import messages_to_openai

DATA = Path(__file__).resolve().parent.parent / "data" / "harness"
HARNESSES = ("openclaw", "claude-code", "codex", "opencode")


@cache
def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def captured(name: str) -> dict[str, Any]:
    """One stored request, ``{"method", "path", "headers", "body"}``, by ``harness/file``."""
    return json.loads(json.dumps(_load(DATA / f"{name}.json")))  # a fresh copy


def all_captures() -> Iterator[str]:
    for harness in HARNESSES:
        for path in sorted((DATA / harness).glob("*.json")):
            yield f"{harness}/{path.stem}"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))


def _from_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    # Claude Code sends "role": "system" messages among the others; they read as system text.
    inline = [m for m in body["messages"] if m.get("role") == "system"]
    body = {**body, "messages": [m for m in body["messages"] if m.get("role") != "system"]}
    out = messages_to_openai(body)
    out["messages"][1:1] = [{"role": "system", "content": _text(m["content"])} for m in inline]
    return out


def _parts(content: Any) -> Any:
    if isinstance(content, str):
        return content
    return [
        {"type": "text", "text": p["text"]}
        for p in content
        if p.get("type") in ("input_text", "output_text")
    ]


def _from_responses(body: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if body.get("instructions"):
        messages.append({"role": "system", "content": body["instructions"]})
    for item in body["input"]:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item["role"], "content": _parts(item["content"])})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function"}
            call["function"] = {"name": item["name"], "arguments": item["arguments"]}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": str(item["output"])}
            )
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t.get("parameters")}}
        for t in body.get("tools", ())
        if t.get("type") == "function"
    ]
    return {"model": body["model"], "messages": messages, "tools": tools}


def chat_body(request: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat body the gateway's door makes of a captured request."""
    path = str(request["path"]).split("?")[0]
    body = dict(request["body"])
    if path.endswith("/messages"):
        return _from_anthropic(body)
    if path.endswith("/responses"):
        return _from_responses(body)
    return body


def chat_request(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(headers, chat body) of one stored request."""
    request = captured(name)
    return dict(request["headers"]), chat_body(request)
