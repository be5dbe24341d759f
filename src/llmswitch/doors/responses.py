"""The OpenAI Responses dialect: ``POST /v1/responses`` in, Responses JSON or events out.

Codex CLI speaks only this API, OpenClaw's ``openai-responses`` provider too. A request
becomes an OpenAI chat-completions body (:func:`responses_to_openai`), the chosen backend
answers in that format, and the answer goes back as a ``response`` object
(:func:`openai_to_response`) or as Responses events (:class:`ResponseStreamWriter`). Pure:
no I/O.

Decisions worth knowing:

* The gateway stores nothing: ``store`` is accepted and answered ``false``;
  ``previous_response_id``, ``conversation`` and ``background`` are refused, since the
  whole conversation must come in ``input`` (Codex sends ``store: false`` and does so).
* ``instructions`` and every ``system`` or ``developer`` message join one leading system
  message, in order: chat templates of local models refuse a system turn mid-conversation.
* ``function_call`` items become assistant ``tool_calls`` (consecutive ones, and the
  assistant text before them, make one assistant turn); ``function_call_output`` items
  become ``tool`` messages. ``reasoning`` items are dropped: their encrypted content means
  nothing to another backend.
* Function tools pass through. The tools of a ``namespace`` are offered as
  ``<namespace>__<name>`` and their calls come back split into ``namespace`` and ``name``.
  A ``custom`` (free-form) tool is offered as a function taking one string, ``input``, and
  its calls come back as ``custom_tool_call`` items. Hosted tools (``web_search``,
  ``file_search``, ``code_interpreter`` ...) cannot run on the gateway's backends: they
  are dropped, so the model answers without them.
* ``reasoning.effort`` becomes ``reasoning_effort``; ``text.format`` becomes
  ``response_format``; ``max_output_tokens`` becomes ``max_tokens``; ``prompt_cache_key``
  and ``safety_identifier`` (as ``user``) pass through; ``include``, ``metadata``,
  ``truncation`` and ``service_tier`` are accepted and not sent upstream.
* A finish reason ``length`` ends the response ``incomplete`` (``max_output_tokens``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from llmswitch.doors.common import DoorError, copy_sampling, int_or_zero, is_list
from llmswitch.doors.sse import ChunkWriter, sse_event
from llmswitch.providers.openai import estimate_tokens

NAMESPACE_SEP: Final = "__"

#: Tools that run on OpenAI's side; no backend of this gateway can run them.
HOSTED_TOOLS: Final = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "computer",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
        "tool_search",
    }
)

_REFUSED: Final = {
    "previous_response_id": "the gateway stores no responses: send the whole conversation",
    "conversation": "the gateway keeps no conversations: send the whole conversation",
    "background": "background responses are not supported by this gateway",
}

_IGNORED_ITEMS: Final = frozenset({"reasoning", "compaction"})


# ---------------------------------------------------------------------------------------
# Tools: which flat function name is which client tool


@dataclass(frozen=True)
class ClientTool:
    """A client tool as the model sees it (``flat``) and as the client named it."""

    name: str
    namespace: str | None = None
    custom: bool = False


@dataclass(frozen=True)
class Tools:
    """The request's tools as chat ``tools`` and the way back from a call's name."""

    chat: list[dict[str, Any]] = field(default_factory=list)
    by_flat: dict[str, ClientTool] = field(default_factory=dict)

    def client_tool(self, flat: str) -> ClientTool:
        return self.by_flat.get(flat) or ClientTool(flat)


def _flat(name: str, namespace: str | None) -> str:
    return f"{namespace}{NAMESPACE_SEP}{name}" if namespace else name


def _tool(tool: Mapping[str, Any], where: str, namespace: str | None, out: Tools) -> None:
    kind = tool.get("type")
    name = tool.get("name")
    if kind in ("function", "custom"):
        if not isinstance(name, str) or not name:
            raise DoorError(f"{where}.name: must be a non-empty string", f"{where}.name")
        flat = _flat(name, namespace)
        function: dict[str, Any] = {"name": flat}
        description = tool.get("description")
        if kind == "custom":
            function["parameters"] = {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
            }
            description = f"{description or ''}\n\nPut the tool's whole input in `input`.".strip()
        else:
            parameters = tool.get("parameters")
            function["parameters"] = (
                dict(parameters) if isinstance(parameters, Mapping) else {"type": "object"}
            )
            if isinstance(tool.get("strict"), bool):
                function["strict"] = tool["strict"]
        if isinstance(description, str) and description:
            function["description"] = description
        out.chat.append({"type": "function", "function": function})
        out.by_flat[flat] = ClientTool(name, namespace, kind == "custom")
    elif kind == "namespace" and namespace is None:
        if not isinstance(name, str) or not name:
            raise DoorError(f"{where}.name: must be a non-empty string", f"{where}.name")
        inner = tool.get("tools")
        if not is_list(inner):
            raise DoorError(f"{where}.tools: must be an array of tools", f"{where}.tools")
        for j, sub in enumerate(inner):
            if not isinstance(sub, Mapping):
                raise DoorError(f"{where}.tools[{j}]: must be an object", f"{where}.tools[{j}]")
            _tool(sub, f"{where}.tools[{j}]", name, out)
    elif isinstance(kind, str) and (kind in HOSTED_TOOLS or kind.startswith("web_search")):
        return
    else:
        raise DoorError(f"{where}.type: {kind!r} is not a supported tool type", f"{where}.type")


def read_tools(raw: Any) -> Tools:
    """The request's ``tools``: functions as they are, namespaces flattened, hosted dropped."""
    out = Tools()
    if raw is None:
        return out
    if not is_list(raw):
        raise DoorError("tools: must be an array of tools", "tools")
    for i, tool in enumerate(raw):
        if not isinstance(tool, Mapping):
            raise DoorError(f"tools[{i}]: must be an object", f"tools[{i}]")
        _tool(tool, f"tools[{i}]", None, out)
    return out


def _tool_choice(raw: Any, tools: Tools) -> Any:
    """The chat ``tool_choice`` for a Responses one; None to leave it out."""
    if raw is None or raw in ("auto", "none", "required"):
        return raw
    if isinstance(raw, Mapping):
        kind = raw.get("type")
        name = raw.get("name")
        if kind in ("function", "custom") and isinstance(name, str) and name:
            flat = _flat(
                name, raw.get("namespace") if isinstance(raw.get("namespace"), str) else None
            )
            return {"type": "function", "function": {"name": flat}}
        if kind == "allowed_tools" or kind in HOSTED_TOOLS or str(kind).startswith("web_search"):
            return "auto" if tools.chat else None
    raise DoorError("tool_choice: must be auto, none, required or a function", "tool_choice")


# ---------------------------------------------------------------------------------------
# Request: Responses -> OpenAI chat completions


def _inline(part: Mapping[str, Any], key: str, here: str, what: str) -> str:
    """A part's inline content; the gateway keeps no uploaded files to refer to."""
    value = part.get(key)
    if not isinstance(value, str) or not value:
        why = f"{what} (file ids are not supported by this gateway)"
        raise DoorError(f"{here}.{key}: {why}", f"{here}.{key}")
    return value


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    """A message's content as chat parts: text, images and files."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not is_list(content):
        raise DoorError(f"{where}.content: must be a string or an array", f"{where}.content")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        here = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text", "refusal", "summary_text"):
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise DoorError(f"{here}.text: must be a string", f"{here}.text")
            parts.append({"type": "text", "text": text})
        elif kind == "input_image":
            url = _inline(part, "image_url", here, "an image URL or data URL is required")
            image: dict[str, Any] = {"url": url}
            if part.get("detail") in ("low", "high", "auto"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind == "input_file":
            data = _inline(part, "file_data", here, "inline file data is required")
            filename = part.get("filename")
            file = {
                "file_data": data,
                "filename": filename if isinstance(filename, str) else "file",
            }
            parts.append({"type": "file", "file": file})
        else:
            raise DoorError(
                f"{here}.type: {kind!r} is not a supported content part", f"{here}.type"
            )
    return parts


def _joined_text(parts: list[dict[str, Any]]) -> str:
    return "\n\n".join(p["text"] for p in parts if p["type"] == "text" and p["text"])


def _output_text(output: Any, where: str) -> str:
    """A tool output (a string or content parts) as the text of a ``tool`` message."""
    if isinstance(output, str):
        return output
    if is_list(output):
        return _joined_text(_text_parts(output, where))
    raise DoorError(f"{where}.output: must be a string or an array", f"{where}.output")


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise DoorError(f"{where}.{key}: must be a non-empty string", f"{where}.{key}")
    return value


class _Conversation:
    """Chat messages being built from input items: one system prompt, merged tool turns."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.messages: list[dict[str, Any]] = []

    def message(self, item: Mapping[str, Any], where: str) -> None:
        role = item.get("role")
        parts = _text_parts(item.get("content"), where)
        if role in ("system", "developer"):
            text = _joined_text(parts)
            if text:
                self.system.append(text)
        elif role == "user":
            single = len(parts) == 1 and parts[0]["type"] == "text"
            self.messages.append({"role": "user", "content": parts[0]["text"] if single else parts})
        elif role == "assistant":
            self._assistant()["content"] = self._joined(self._assistant(), _joined_text(parts))
        else:
            raise DoorError(
                f"{where}.role: must be user, assistant, system or developer, not {role!r}",
                f"{where}.role",
            )

    def call(self, call_id: str, name: str, arguments: str) -> None:
        turn = self._assistant()
        function = {"name": name, "arguments": arguments}
        turn.setdefault("tool_calls", []).append(
            {"id": call_id, "type": "function", "function": function}
        )

    def output(self, call_id: str, text: str) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})

    def result(self) -> list[dict[str, Any]]:
        head = [{"role": "system", "content": "\n\n".join(self.system)}] if self.system else []
        return head + self.messages

    def _assistant(self) -> dict[str, Any]:
        """The open assistant turn: the last message when it is one, else a new one."""
        if self.messages and self.messages[-1]["role"] == "assistant":
            return self.messages[-1]
        turn: dict[str, Any] = {"role": "assistant", "content": None}
        self.messages.append(turn)
        return turn

    @staticmethod
    def _joined(turn: dict[str, Any], text: str) -> str | None:
        before = turn.get("content")
        joined = "\n\n".join(t for t in (before, text) if t)
        return joined or before


def _item(item: Any, where: str, conv: _Conversation) -> None:
    if not isinstance(item, Mapping):
        raise DoorError(f"{where}: must be an object", where)
    kind = item.get("type", "message")
    if kind == "message":
        conv.message(item, where)
    elif kind == "function_call":
        namespace = item.get("namespace") if isinstance(item.get("namespace"), str) else None
        arguments = item.get("arguments")
        conv.call(
            _string(item, "call_id", where),
            _flat(_string(item, "name", where), namespace),
            arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
        )
    elif kind == "custom_tool_call":
        raw_input = item.get("input")
        arguments = json.dumps({"input": raw_input if isinstance(raw_input, str) else ""})
        conv.call(_string(item, "call_id", where), _string(item, "name", where), arguments)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        conv.output(_string(item, "call_id", where), _output_text(item.get("output"), where))
    elif kind in _IGNORED_ITEMS:
        return
    else:
        raise DoorError(f"{where}.type: {kind!r} is not a supported input item", f"{where}.type")


def _text_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if not isinstance(fmt, Mapping):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, Mapping):
            raise DoorError("text.format.schema: must be a JSON schema", "text.format.schema")
        spec: dict[str, Any] = {"name": str(fmt.get("name") or "response"), "schema": schema}
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": spec}
    if kind == "json_object":
        return {"type": "json_object"}
    return None


def responses_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Responses request as an OpenAI chat-completions body; DoorError naming the field."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise DoorError("model: a non-empty string is required", "model")
    for key, why in _REFUSED.items():
        if body.get(key):
            raise DoorError(f"{key}: {why}", key)
    tools = read_tools(body.get("tools"))
    conv = _Conversation()
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        conv.system.append(instructions)
    elif instructions is not None and not isinstance(instructions, str):
        raise DoorError("instructions: must be a string", "instructions")
    raw = body.get("input")
    if isinstance(raw, str):
        conv.messages.append({"role": "user", "content": raw})
    elif is_list(raw):
        for i, item in enumerate(raw):
            _item(item, f"input[{i}]", conv)
    else:
        raise DoorError("input: a string or an array of input items is required", "input")
    messages = conv.result()
    if not any(m["role"] != "system" for m in messages):
        raise DoorError("input: needs at least one user or assistant item", "input")
    out: dict[str, Any] = {"model": model, "messages": messages}
    if tools.chat:
        out["tools"] = tools.chat
        choice = _tool_choice(body.get("tool_choice"), tools)
        if choice is not None:
            out["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise DoorError("max_output_tokens: must be a positive integer", "max_output_tokens")
        out["max_tokens"] = max_tokens
    copy_sampling(body, out)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping) and isinstance(reasoning.get("effort"), str):
        out["reasoning_effort"] = reasoning["effort"]
    fmt = _text_format(body.get("text"))
    if fmt is not None:
        out["response_format"] = fmt
    if isinstance(body.get("prompt_cache_key"), str):
        out["prompt_cache_key"] = body["prompt_cache_key"]
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        out["user"] = user
    return out


# ---------------------------------------------------------------------------------------
# Answer: OpenAI chat.completion -> Responses ``response``


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _usage(usage: Mapping[str, Any] | None, estimate: tuple[int, int]) -> dict[str, Any]:
    """OpenAI chat usage as Responses usage; ``estimate`` (in, out) when there is none."""
    if usage is None:
        tokens_in, tokens_out, cached, reasoning = *estimate, 0, 0
    else:
        tokens_in = int_or_zero(usage.get("prompt_tokens"))
        tokens_out = int_or_zero(usage.get("completion_tokens"))
        details = usage.get("prompt_tokens_details")
        cached = int_or_zero(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
        details = usage.get("completion_tokens_details")
        reasoning = (
            int_or_zero(details.get("reasoning_tokens")) if isinstance(details, Mapping) else 0
        )
    return {
        "input_tokens": tokens_in,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": tokens_out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": tokens_in + tokens_out,
    }


@dataclass
class ResponseShell:
    """What a ``response`` object repeats from its request, and its identity."""

    request: Mapping[str, Any]
    model: str
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        *,
        error: dict[str, Any] | None = None,
        incomplete: str | None = None,
    ) -> dict[str, Any]:
        req = self.request
        tools = req.get("tools")
        text = req.get("text") if isinstance(req.get("text"), Mapping) else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": req.get("parallel_tool_calls") is not False,
            "previous_response_id": None,
            "reasoning": req.get("reasoning"),
            "store": False,
            "temperature": req.get("temperature"),
            "text": text or {"format": {"type": "text"}},
            "tool_choice": req.get("tool_choice") or "auto",
            "tools": list(tools) if is_list(tools) else [],
            "top_p": req.get("top_p"),
            "truncation": "disabled",
            "usage": usage,
            "metadata": req.get("metadata") or {},
            "prompt_cache_key": req.get("prompt_cache_key"),
        }


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content if text or status == "completed" else [],
    }


def _call_item(
    item_id: str, call_id: str, tool: ClientTool, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    if tool.custom:
        raw = _arguments_input(arguments)
        return {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": tool.name,
            "input": raw,
            "status": status,
        }
    item = {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": tool.name,
        "arguments": arguments,
        "status": status,
    }
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def _arguments_input(arguments: str) -> str:
    """The ``input`` string of a custom tool's call, from the function arguments made."""
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return str(parsed["input"])
    return arguments


def _status(finish_reason: Any) -> tuple[str, str | None]:
    if finish_reason == "length":
        return "incomplete", "max_output_tokens"
    if finish_reason == "content_filter":
        return "incomplete", "content_filter"
    return "completed", None


def openai_to_response(
    completion: Mapping[str, Any], shell: ResponseShell, estimate_in: int = 0
) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` as a Responses ``response`` (first choice only)."""
    tools = read_tools(shell.request.get("tools"))
    choices = completion.get("choices")
    choice = choices[0] if is_list(choices) and choices else {}
    choice = choice if isinstance(choice, Mapping) else {}
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    output: list[dict[str, Any]] = []
    text = message.get("content") if isinstance(message.get("content"), str) else None
    text = text or (message.get("refusal") if isinstance(message.get("refusal"), str) else None)
    if text:
        output.append(_message_item(new_id("msg"), text))
    calls = message.get("tool_calls")
    for call in calls if is_list(calls) else ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        args = function.get("arguments")
        args = args if isinstance(args, str) else json.dumps(args or {})
        call_id = call.get("id") if isinstance(call.get("id"), str) else new_id("call")
        tool = tools.client_tool(str(function.get("name") or ""))
        output.append(_call_item(new_id("fc"), call_id, tool, args))
    usage = completion.get("usage")
    chars = len(text or "") + sum(len(str(o.get("arguments", ""))) for o in output)
    estimate = (estimate_in, estimate_tokens(chars))
    status, incomplete = _status(choice.get("finish_reason"))
    return shell.response(
        status,
        output,
        _usage(usage if isinstance(usage, Mapping) else None, estimate),
        incomplete=incomplete,
    )


# ---------------------------------------------------------------------------------------
# Streams: OpenAI SSE -> Responses events


@dataclass
class _Open:
    """The output item being streamed: a message or one tool call."""

    index: int
    id: str
    text: str = ""
    call_index: int | None = None  # the OpenAI tool-call index, for a call
    call_id: str = ""
    name: str = ""


class ResponseStreamWriter(ChunkWriter):
    """OpenAI ``chat.completion.chunk`` events in, Responses SSE events out.

    The stream opens with ``response.created`` and ``response.in_progress``. Text opens a
    ``message`` item (``output_item.added``, ``content_part.added``, ``output_text.delta``
    ...), each tool call its own ``function_call`` (or ``custom_tool_call``) item; items are
    sequential, a new one closes the previous with its ``.done`` events. When the upstream
    ends well (``[DONE]``) :meth:`finish` closes the open item and sends
    ``response.completed`` (or ``response.incomplete`` at the length limit) with the full
    response; if it fails, :meth:`error` sends ``response.failed``. After either, the
    writer emits nothing more. Every event carries a rising ``sequence_number``.
    """

    def __init__(self, shell: ResponseShell, input_tokens: int = 0) -> None:
        super().__init__()
        self.shell = shell
        self.input_tokens = input_tokens
        self._tools = read_tools(shell.request.get("tools"))
        self._seq = 0
        self._started = False
        self._open: _Open | None = None
        self._output: list[dict[str, Any]] = []
        self._chars = 0

    def finish(self) -> bytes:
        """The upstream ended well: close the open item, then the final response event."""
        if self._closed:
            return b""
        out: list[bytes] = []
        self._start({}, out)
        self._close_item(out)
        self._closed = True
        estimate = (self.input_tokens, estimate_tokens(self._chars))
        usage = _usage(self._usage, estimate)
        status, incomplete = _status(self._finish_reason)
        response = self.shell.response(status, self._output, usage, incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": response}))
        return b"".join(out)

    def error(self, message: str) -> bytes:
        """``response.failed`` (the SDKs end the stream on it); the stream is over.

        Its ``error.code`` is ``server_error``: the API's codes are a closed list.
        """
        if self._closed:
            return b""
        out: list[bytes] = []
        self._start({}, out)
        self._closed = True
        failed = self.shell.response(
            "failed", self._output, error={"code": "server_error", "message": message}
        )
        out.append(self._event("response.failed", {"response": failed}))
        return b"".join(out)

    # -- internals ---------------------------------------------------------------------

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **payload}
        self._seq += 1
        return sse_event(kind, data)

    def _start(self, chunk: Mapping[str, Any], out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        response = self.shell.response("in_progress", [])
        out.append(self._event("response.created", {"response": response}))
        out.append(self._event("response.in_progress", {"response": response}))

    def _item_event(self, kind: str, item: _Open, payload: dict[str, Any]) -> bytes:
        body = {"output_index": item.index, "item": payload}
        return self._event(f"response.output_item.{kind}", body)

    def _where(self, item: _Open) -> dict[str, Any]:
        return {"item_id": item.id, "output_index": item.index}

    def _text(self, text: str, out: list[bytes]) -> None:
        self._chars += len(text)
        item = self._open
        if item is None or item.call_index is not None:
            self._close_item(out)
            item = self._open = _Open(len(self._output), new_id("msg"))
            added = _message_item(item.id, "", "in_progress")
            out.append(
                self._event(
                    "response.output_item.added", {"output_index": item.index, "item": added}
                )
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(
                self._event(
                    "response.content_part.added",
                    {**self._where(item), "content_index": 0, "part": part},
                )
            )
        item.text += text
        out.append(
            self._event(
                "response.output_text.delta",
                {**self._where(item), "content_index": 0, "delta": text, "logprobs": []},
            )
        )

    def _call(self, call: Mapping[str, Any], position: int, out: list[bytes]) -> None:
        index = call.get("index") if isinstance(call.get("index"), int) else position
        function = call.get("function")
        if not isinstance(function, Mapping):
            function = {}
        item = self._open
        if item is None or item.call_index != index:
            self._close_item(out)
            call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else None
            item = self._open = _Open(
                len(self._output), new_id("fc"), call_index=index, call_id=call_id or new_id("call")
            )
            item.name = str(function.get("name") or "")
            tool = self._tools.client_tool(item.name)
            added = _call_item(item.id, item.call_id, tool, "", "in_progress")
            out.append(
                self._event(
                    "response.output_item.added", {"output_index": item.index, "item": added}
                )
            )
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args)
        if args:
            item.text += args
            self._chars += len(args)
            if not self._tools.client_tool(item.name).custom:
                out.append(
                    self._event(
                        "response.function_call_arguments.delta",
                        {**self._where(item), "delta": args},
                    )
                )

    def _close_item(self, out: list[bytes]) -> None:
        item, self._open = self._open, None
        if item is None:
            return
        where = self._where(item)
        if item.call_index is None:
            part = {"type": "output_text", "text": item.text, "annotations": [], "logprobs": []}
            out.append(
                self._event(
                    "response.output_text.done",
                    {**where, "content_index": 0, "text": item.text, "logprobs": []},
                )
            )
            out.append(
                self._event(
                    "response.content_part.done", {**where, "content_index": 0, "part": part}
                )
            )
            done = _message_item(item.id, item.text)
        else:
            tool = self._tools.client_tool(item.name)
            arguments = item.text or "{}"
            done = _call_item(item.id, item.call_id, tool, arguments)
            if tool.custom:
                out.append(
                    self._event(
                        "response.custom_tool_call_input.done", {**where, "input": done["input"]}
                    )
                )
            else:
                out.append(
                    self._event(
                        "response.function_call_arguments.done",
                        {**where, "name": tool.name, "arguments": arguments},
                    )
                )
        self._output.append(done)
        out.append(
            self._event("response.output_item.done", {"output_index": item.index, "item": done})
        )
