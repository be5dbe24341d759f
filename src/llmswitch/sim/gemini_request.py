"""Parse and check a GenerateContentRequest the way the Gemini API rejects bad ones.

The request is then seen as a :class:`ChatRequest`, so the simulator's reply logic
(echo, canned replies, max tokens, tool calls) is the same whatever the wire format.
Unknown fields are rejected like Gemini's proto-JSON parser does: an OpenAI field that
leaks through a translation is a 400 here, as it would be upstream.
"""

from __future__ import annotations

import json
from typing import Any

from .chat_request import ChatRequest

# Fields of a GenerateContentRequest; proto JSON accepts camelCase and snake_case names.
_REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "system_instruction",
        "tools",
        "toolConfig",
        "tool_config",
        "safetySettings",
        "safety_settings",
        "generationConfig",
        "generation_config",
        "cachedContent",
        "cached_content",
        "model",
    }
)
_DATA_FIELDS = {
    "text": "text",
    "inlineData": "inlineData",
    "inline_data": "inlineData",
    "fileData": "fileData",
    "file_data": "fileData",
    "functionCall": "functionCall",
    "function_call": "functionCall",
    "functionResponse": "functionResponse",
    "function_response": "functionResponse",
    "executableCode": "executableCode",
    "executable_code": "executableCode",
    "codeExecutionResult": "codeExecutionResult",
    "code_execution_result": "codeExecutionResult",
}
_PART_EXTRAS = frozenset(
    {"thought", "thoughtSignature", "thought_signature", "videoMetadata", "video_metadata"}
)
_ROLES = frozenset({"user", "model", "function"})


class GeminiRequestError(Exception):
    """A request Gemini would reject: HTTP status and message (status name derived)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _invalid(message: str) -> GeminiRequestError:
    return GeminiRequestError(400, message)


def _unknown(name: str, where: str) -> GeminiRequestError:
    at = f" at '{where}'" if where else ""
    return _invalid(f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.')


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj[camel] if camel in obj else obj.get(snake)


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid("Invalid JSON payload received. Unexpected token.") from exc


def _part_kind(part: Any, where: str) -> str:
    if not isinstance(part, dict):
        raise _invalid(f"Invalid value at '{where}', expected an object.")
    kinds = []
    for key in part:
        if key in _DATA_FIELDS:
            kinds.append(_DATA_FIELDS[key])
        elif key not in _PART_EXTRAS:
            raise _unknown(key, where)
    if len(kinds) != 1:
        raise _invalid(
            f"* GenerateContentRequest.{where}.data: required oneof field 'data' must have "
            "one initialized field"
        )
    return kinds[0]


def _text_of(parts: list[Any]) -> str:
    return " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))


def _contents(contents: Any) -> list[dict[str, Any]]:
    """Validated contents as OpenAI-style messages (for echo and token counts)."""
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified\n")
    messages: list[dict[str, Any]] = []
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise _invalid(f"Invalid value at '{where}', expected an object.")
        for key in content:
            if key not in ("role", "parts"):
                raise _unknown(key, where)
        role = content.get("role", "user")
        if role not in _ROLES:
            raise _invalid("Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise _invalid(
                f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n"
            )
        kinds = [_part_kind(part, f"{where}.parts[{j}]") for j, part in enumerate(parts)]
        if role == "model":
            messages.append({"role": "assistant", "content": _text_of(parts)})
        elif "text" in kinds:
            messages.append({"role": "user", "content": _text_of(parts)})
        else:  # function results (or media only): not what the user said
            messages.append({"role": "tool", "content": _text_of(parts)})
    return messages


def _system(instruction: Any) -> list[dict[str, Any]]:
    if instruction is None:
        return []
    parts = instruction.get("parts") if isinstance(instruction, dict) else None
    if not isinstance(parts, list):
        raise _invalid("Invalid value at 'system_instruction', expected a Content object.")
    for j, part in enumerate(parts):
        if _part_kind(part, f"system_instruction.parts[{j}]") != "text":
            raise _invalid("system_instruction parts must be text.")
    return [{"role": "system", "content": _text_of(parts)}]


def _lower_types(schema: Any) -> Any:
    """Gemini accepts "OBJECT" as well as "object"; the reply sampler wants JSON Schema."""
    if isinstance(schema, dict):
        return {
            k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _tools(tools: Any) -> list[dict[str, Any]]:
    """functionDeclarations as OpenAI function tools."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("Invalid value at 'tools', expected a list.")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _invalid(f"Invalid value at 'tools[{i}]', expected an object.")
        decls = _field(tool, "functionDeclarations", "function_declarations") or []
        for j, decl in enumerate(decls if isinstance(decls, list) else ()):
            name = decl.get("name") if isinstance(decl, dict) else None
            if not isinstance(name, str) or not name:
                raise _invalid(
                    f"* GenerateContentRequest.tools[{i}].function_declarations[{j}].name: "
                    "[FIELD_INVALID] Invalid function name."
                )
            params = decl.get("parameters")
            if params is None:
                params = _field(decl, "parametersJsonSchema", "parameters_json_schema")
            function: dict[str, Any] = {"name": name}
            if isinstance(params, dict):
                function["parameters"] = _lower_types(params)
            out.append({"type": "function", "function": function})
    return out


def _tool_choice(config: Any) -> Any:
    if not isinstance(config, dict):
        return None
    calling = _field(config, "functionCallingConfig", "function_calling_config")
    if not isinstance(calling, dict):
        return None
    mode = calling.get("mode")
    if mode == "NONE":
        return "none"
    if mode in ("ANY", "VALIDATED"):
        names = _field(calling, "allowedFunctionNames", "allowed_function_names")
        if isinstance(names, list) and names and isinstance(names[0], str):
            return {"type": "function", "function": {"name": names[0]}}
        return "required"
    return "auto" if mode == "AUTO" else None


def _max_tokens(config: Any) -> int | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise _invalid("Invalid value at 'generation_config', expected an object.")
    value = _field(config, "maxOutputTokens", "max_output_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _invalid(
            "* GenerateContentRequest.generation_config.max_output_tokens: "
            "max_output_tokens must be positive."
        )
    return value


def parse_generate_request(body: Any, model: str, stream: bool) -> ChatRequest:
    """Validate a decoded generateContent body; the model comes from the URL."""
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. Expected an object.")
    for key in body:
        if key not in _REQUEST_FIELDS:
            raise _unknown(key, "")
    messages = _system(_field(body, "systemInstruction", "system_instruction"))
    messages += _contents(body.get("contents"))
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=True,
        max_tokens=_max_tokens(_field(body, "generationConfig", "generation_config")),
        tools=_tools(body.get("tools")),
        tool_choice=_tool_choice(_field(body, "toolConfig", "tool_config")),
        body=body,
    )
