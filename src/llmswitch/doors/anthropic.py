"""The Anthropic Messages dialect: ``POST /v1/messages`` in, Anthropic out.

Clients that speak the Anthropic Messages API (the ``anthropic`` SDK, Claude-Code-style
agents) are served by the same brain as OpenAI clients: their request becomes an OpenAI
chat-completions body (:func:`messages_to_openai`), whatever backend serves it answers in
OpenAI format, and the answer goes back as an Anthropic ``message``
(:func:`openai_to_message`) or as Anthropic SSE (:class:`MessageStreamWriter`, fed the
OpenAI chunks that :class:`OpenAISSEReader` parses). Everything here is pure: no I/O.

Decisions worth knowing:

* Text-only content with one block becomes a plain string, several blocks or any image a
  list of parts; assistant text is always one string (``None`` when there are only tool
  calls) and the system prompt is one string, blocks joined by a blank line. A message
  with ``role: "system"`` (Claude Code sends one after the first user turn) joins the
  system prompt, in order: chat templates refuse a system turn mid-conversation.
* ``output_config.format`` (a JSON schema) becomes ``response_format``; the chosen
  backend's wire carries it in its own terms.
* ``tool_result`` blocks become ``tool`` messages placed before the rest of their user
  turn; images inside a tool result (OpenAI tool messages carry only text) move to that
  following user message, announced by a short text part. ``is_error`` prefixes "Error: ".
* ``thinking`` (enabled with a budget, adaptive or disabled) is carried as given; each
  candidate's wire takes it in its own terms (:mod:`llmswitch.providers.thinking`).
* ``thinking`` / ``redacted_thinking`` blocks in assistant history are dropped (their
  signatures mean nothing to another backend). ``top_k``, ``service_tier`` and any
  other parameter without an OpenAI counterpart are dropped; server tools
  (``tools[i].type`` other than ``custom``) are refused, no OpenAI backend can run them.
* ``content_filter`` becomes the ``refusal`` stop reason. A tool call with finish reason
  ``stop`` (Ollama does that) becomes ``tool_use``: agents loop on that stop reason.
  OpenAI does not say which stop sequence matched, so ``stop_sequence`` is always null.
* Tool call ids are kept, with any character outside ``[A-Za-z0-9_-]`` replaced by ``_``
  (the Anthropic API's pattern for ids a client may send back); a missing one is made up.
* Usage: ``input_tokens`` excludes cached prompt tokens, reported as
  ``cache_read_input_tokens`` (OpenAI's ``prompt_tokens`` includes them).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from llmswitch.doors.common import DoorError, copy_sampling, int_or_zero, is_list
from llmswitch.doors.sse import ChunkWriter, sse_event
from llmswitch.providers.openai import estimate_tokens

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

_STATUS_ERROR_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error(
    status: int, message: str, request_id: str | None = None, type_: str | None = None
) -> dict[str, Any]:
    """An Anthropic error body, ``{"type": "error", "error": {"type", "message"}}``.

    Unless ``type_`` is given, the type follows the Messages API's documented table: 400
    invalid_request_error (and any other 4xx not listed), 401 authentication_error, 402
    billing_error, 403 permission_error, 404 not_found_error, 409 conflict_error, 413
    request_too_large, 429 rate_limit_error, 500/502 api_error, 503 overloaded_error (the
    gateway at its in-flight limit: temporary, like Anthropic's 529), 504 timeout_error,
    529 overloaded_error, any other 5xx api_error.
    """
    type_ = type_ or _STATUS_ERROR_TYPES.get(status)
    if type_ is None:
        type_ = "api_error" if status >= 500 else "invalid_request_error"
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id is not None:
        body["request_id"] = request_id
    return body


# ---------------------------------------------------------------------------------------
# Request: Anthropic Messages -> OpenAI chat completions


def messages_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI chat-completions body.

    ``model`` passes through unchanged (the gateway resolves it). Raises
    :class:`DoorError` naming the field for a body the Messages API would refuse.
    """
    if not isinstance(body, Mapping):
        raise DoorError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise DoorError("model: a non-empty string is required", "model")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise DoorError("max_tokens: a positive integer is required", "max_tokens")
    raw_messages = body.get("messages")
    if not is_list(raw_messages) or not raw_messages:
        raise DoorError("messages: a non-empty array of messages is required", "messages")

    messages: list[dict[str, Any]] = []
    system = [_system_text(body.get("system"), "system")]
    for i, message in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise DoorError(f"{where}: must be an object", where)
        role = message.get("role")
        if role == "user":
            messages.extend(_user_turn(message.get("content"), where))
        elif role == "assistant":
            messages.append(_assistant_turn(message.get("content"), where))
        elif role == "system":
            system.append(_system_text(message.get("content"), f"{where}.content"))
        else:
            raise DoorError(
                f"{where}.role: must be 'user', 'assistant' or 'system', not {role!r}",
                f"{where}.role",
            )
    if not messages:
        raise DoorError("messages: needs a user or assistant message", "messages")
    prompt = "\n\n".join(t for t in system if t)
    if prompt:
        messages.insert(0, {"role": "system", "content": prompt})

    out: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    response_format = _output_format(body.get("output_config"))
    if response_format is not None:
        out["response_format"] = response_format
    thinking = _thinking(body.get("thinking"))
    if thinking is not None:
        out["thinking"] = thinking
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        _tool_choice(body.get("tool_choice"), out)
    stop = body.get("stop_sequences")
    if stop is not None:
        if not is_list(stop) or not all(isinstance(s, str) for s in stop):
            raise DoorError("stop_sequences: must be an array of strings", "stop_sequences")
        if stop:
            out["stop"] = list(stop)
    copy_sampling(body, out)
    metadata = body.get("metadata")
    if isinstance(metadata, Mapping):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            out["user"] = user_id
    return out


def _blocks(content: Any, where: str) -> list[Mapping[str, Any]]:
    """A message's content as typed blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not is_list(content):
        raise DoorError(
            f"{where}.content: must be a string or an array of content blocks",
            f"{where}.content",
        )
    blocks: list[Mapping[str, Any]] = []
    for j, block in enumerate(content):
        if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
            raise DoorError(
                f"{where}.content[{j}].type: each content block needs a string 'type'",
                f"{where}.content[{j}].type",
            )
        blocks.append(block)
    return blocks


def _text_of(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise DoorError(f"{where}.text: must be a string", f"{where}.text")
    return text


def _system_text(system: Any, at: str) -> str:
    """A system prompt (``system``, or a ``system`` message's content) as one string."""
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if not is_list(system):
        raise DoorError(f"{at}: must be a string or an array of text blocks", at)
    texts = []
    for i, block in enumerate(system):
        where = f"{at}[{i}]"
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise DoorError(f"{where}.type: system blocks must be text", f"{where}.type")
        texts.append(_text_of(block, where))
    return "\n\n".join(t for t in texts if t)


def _output_format(config: Any) -> dict[str, Any] | None:
    """``output_config.format`` (a JSON schema) as the pipeline's ``response_format``."""
    fmt = config.get("format") if isinstance(config, Mapping) else None
    if fmt is None:
        return None
    where = "output_config.format"
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema":
        raise DoorError(f"{where}.type: only 'json_schema' is supported", f"{where}.type")
    schema = fmt.get("schema")
    if not isinstance(schema, Mapping):
        raise DoorError(f"{where}.schema: must be a JSON schema object", f"{where}.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": dict(schema)}}


def _thinking(thinking: Any) -> dict[str, Any] | None:
    """``thinking``, checked as the Messages API checks it; None when absent or disabled.
    A budget over ``max_tokens`` is kept (interleaved thinking allows it); each wire fits
    it to the output it asks for."""
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, Mapping) else None
    if kind not in ("enabled", "adaptive", "disabled"):
        raise DoorError(
            "thinking.type: must be 'enabled', 'adaptive' or 'disabled'", "thinking.type"
        )
    if kind == "disabled":
        return None
    if kind == "adaptive":
        return {"type": "adaptive"}
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise DoorError(
            "thinking.budget_tokens: an integer of at least 1024 is required",
            "thinking.budget_tokens",
        )
    return {"type": "enabled", "budget_tokens": budget}


def _image_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise DoorError(f"{where}.source: must be an object", f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise DoorError(
                f"{where}.source: base64 images need 'media_type' and 'data' strings",
                f"{where}.source",
            )
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        given = source.get("url")
        if not isinstance(given, str) or not given:
            raise DoorError(f"{where}.source.url: must be a string", f"{where}.source.url")
        url = given
    else:
        raise DoorError(
            f"{where}.source.type: {kind!r} is not supported here (use 'base64' or 'url')",
            f"{where}.source.type",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: Mapping[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, Mapping) else None
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if isinstance(source, Mapping) and kind == "text" and isinstance(source.get("data"), str):
        text = source["data"]
        return {"type": "text", "text": f"{title}\n\n{text}" if title else text}
    if (
        isinstance(source, Mapping)
        and kind == "base64"
        and source.get("media_type") == "application/pdf"
        and isinstance(source.get("data"), str)
    ):
        return {
            "type": "file",
            "file": {
                "filename": title or "document.pdf",
                "file_data": f"data:application/pdf;base64,{source['data']}",
            },
        }
    raise DoorError(
        f"{where}.source: only text documents and base64 PDFs are supported here",
        f"{where}.source",
    )


def _tool_result(
    block: Mapping[str, Any], where: str, images: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``tool_result`` block as a ``tool`` message; its images go to ``images``."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise DoorError(f"{where}.tool_use_id: must be a string", f"{where}.tool_use_id")
    content = block.get("content")
    texts: list[str] = []
    if content is None:
        pass
    elif isinstance(content, str):
        texts.append(content)
    elif is_list(content):
        for k, part in enumerate(content):
            here = f"{where}.content[{k}]"
            kind = part.get("type") if isinstance(part, Mapping) else None
            if kind == "text":
                texts.append(_text_of(part, here))
            elif kind == "image":
                images.append({"type": "text", "text": f"(image from tool result {call_id})"})
                images.append(_image_part(part, here))
            else:
                raise DoorError(
                    f"{here}.type: {kind!r} is not supported in a tool result", f"{here}.type"
                )
    else:
        raise DoorError(
            f"{where}.content: must be a string or an array of blocks", f"{where}.content"
        )
    text = "\n\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _user_turn(content: Any, where: str) -> list[dict[str, Any]]:
    """One user message: its tool results as ``tool`` messages first, then the rest."""
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    moved_images: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        here = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _text_of(block, here)})
        elif kind == "image":
            parts.append(_image_part(block, here))
        elif kind == "document":
            parts.append(_document_part(block, here))
        elif kind == "tool_result":
            tool_messages.append(_tool_result(block, here, moved_images))
        else:
            raise DoorError(
                f"{here}.type: {kind!r} is not a supported user content block", f"{here}.type"
            )
    parts = moved_images + parts
    if not parts and tool_messages:
        return tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tool_messages, {"role": "user", "content": parts[0]["text"]}]
    return [*tool_messages, {"role": "user", "content": parts or ""}]


def _assistant_turn(content: Any, where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, where)):
        here = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            texts.append(_text_of(block, here))
        elif kind == "tool_use":
            call_id, name, args = block.get("id"), block.get("name"), block.get("input")
            if not isinstance(call_id, str) or not call_id:
                raise DoorError(f"{here}.id: must be a string", f"{here}.id")
            if not isinstance(name, str) or not name:
                raise DoorError(f"{here}.name: must be a string", f"{here}.name")
            if args is None:
                args = {}
            if not isinstance(args, Mapping):
                raise DoorError(f"{here}.input: must be an object", f"{here}.input")
            arguments = json.dumps(dict(args), ensure_ascii=False)
            calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise DoorError(
                f"{here}.type: {kind!r} is not a supported assistant content block",
                f"{here}.type",
            )
    text = "\n\n".join(t for t in texts if t)
    out: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
    if calls:
        out["tool_calls"] = calls
    return out


def _tools(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not is_list(raw):
        raise DoorError("tools: must be an array of tools", "tools")
    tools = []
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise DoorError(f"{where}: must be an object", where)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise DoorError(
                f"{where}.type: server tool {kind!r} cannot run on this gateway's backends",
                f"{where}.type",
            )
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise DoorError(f"{where}.name: must be a string", f"{where}.name")
        if not isinstance(schema, Mapping):
            raise DoorError(
                f"{where}.input_schema: must be a JSON schema object", f"{where}.input_schema"
            )
        function: dict[str, Any] = {"name": name, "parameters": dict(schema)}
        description = tool.get("description")
        if isinstance(description, str) and description:
            function["description"] = description
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(raw: Any, out: dict[str, Any]) -> None:
    """Sets ``tool_choice`` (and ``parallel_tool_calls``) on ``out``, which has tools."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise DoorError("tool_choice: must be an object", "tool_choice")
    kind = raw.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise DoorError("tool_choice.name: must be a string", "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise DoorError(
            f"tool_choice.type: {kind!r} is not one of auto, any, none, tool",
            "tool_choice.type",
        )
    if raw.get("disable_parallel_tool_use") is True and kind != "none":
        out["parallel_tool_calls"] = False


# ---------------------------------------------------------------------------------------
# Answer: OpenAI chat.completion -> Anthropic message


def _safe_id(raw: Any, prefix: str) -> str:
    if isinstance(raw, str) and raw:
        return _ID_UNSAFE.sub("_", raw)
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def _message_id(raw: Any) -> str:
    return "msg_" + _safe_id(raw, "")


def _stop_reason(finish_reason: Any, has_tool_calls: bool) -> str:
    if finish_reason == "length":
        return "max_tokens"
    if finish_reason == "content_filter":
        return "refusal"
    return "tool_use" if has_tool_calls else "end_turn"


def _usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """OpenAI usage as Anthropic usage; cached prompt tokens are reported apart."""
    prompt = int_or_zero(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = int_or_zero(details.get("cached_tokens")) if isinstance(details, Mapping) else 0
    cached = min(cached, prompt)
    out: dict[str, Any] = {
        "input_tokens": prompt - cached,
        "output_tokens": int_or_zero(usage.get("completion_tokens")),
    }
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if is_list(content):
        return "".join(
            p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str)
        )
    return ""


def openai_to_message(completion: Mapping[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` as an Anthropic ``message`` named ``model``.

    Only the first choice counts (Anthropic has no ``n``). Tool call arguments that are not
    a JSON object become ``{}``.
    """
    choices = completion.get("choices")
    choice = choices[0] if is_list(choices) and choices else {}
    if not isinstance(choice, Mapping):
        choice = {}
    message = choice.get("message")
    if not isinstance(message, Mapping):
        message = {}
    content: list[dict[str, Any]] = []
    text = _content_text(message.get("content")) or _content_text(message.get("refusal"))
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if is_list(calls) else ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        if not isinstance(function, Mapping):
            continue
        name = function.get("name")
        content.append(
            {
                "type": "tool_use",
                "id": _safe_id(call.get("id"), "toolu_"),
                "name": name if isinstance(name, str) else "",
                "input": _arguments(function.get("arguments")),
            }
        )
    has_tools = any(block["type"] == "tool_use" for block in content)
    usage = completion.get("usage")
    return {
        "id": _message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(choice.get("finish_reason"), has_tools),
        "stop_sequence": None,
        "usage": _usage(usage if isinstance(usage, Mapping) else {}),
    }


# ---------------------------------------------------------------------------------------
# Streams: OpenAI SSE -> Anthropic SSE


@dataclass
class _Tool:
    """One OpenAI tool call (by its index) on its way to a ``tool_use`` block."""

    id: str = ""
    name: str = ""
    block: int | None = None  # the Anthropic block index, once started
    pending: list[str] = field(default_factory=list)  # arguments before the block started
    sent_args: bool = False


class MessageStreamWriter(ChunkWriter):
    """OpenAI ``chat.completion.chunk`` events in, Anthropic Messages SSE out.

    Feed every parsed chunk to :meth:`feed` (or raw bytes to :meth:`feed_sse`); when the
    upstream ends well (``[DONE]``) call :meth:`finish`, which closes the open block and
    sends ``message_delta`` (stop reason, usage) and ``message_stop``; usage chunks come
    after the finish-reason chunk, hence the wait. If the upstream fails, send
    :meth:`error` instead. After either, the writer emits nothing more.

    Text opens a ``text`` block; each tool call index gets its own ``tool_use`` block,
    started once its name is known, its arguments streamed as ``input_json_delta``
    fragments (a call without arguments gets ``{}`` so clients can parse it). Blocks are
    sequential, as Anthropic requires: a new one closes the previous. An argument fragment
    for a tool block already closed (interleaved parallel calls, which no autoregressive
    backend produces) cannot be sent; it is dropped and counted in ``late_fragments``.

    ``input_tokens`` in ``message_start`` is the constructor's estimate (0 if none); the
    real count, when the upstream reports usage, comes in ``message_delta``. Without a
    usage report ``output_tokens`` is estimated from the characters streamed.
    """

    def __init__(self, model: str, *, message_id: str | None = None, input_tokens: int = 0):
        super().__init__()
        self.model = model
        self.message_id = message_id
        self.input_tokens = input_tokens
        self.output_tokens = 0
        self.usage_estimated = True
        self.late_fragments = 0
        self._started = False
        self._next_block = 0
        self._open: int | None = None  # index of the open block
        self._open_tool: _Tool | None = None  # the open block's tool, when it is one
        self._tools: dict[int, _Tool] = {}
        self._chars = 0

    def finish(self) -> bytes:
        """The upstream ended well: close the open block, then message_delta and stop."""
        if self._closed:
            return b""
        out: list[bytes] = []
        self._start({}, out)
        for tool in self._tools.values():
            if tool.block is None:  # arguments but never a name: send what we have
                self._start_tool(tool, out)
        self._close_block(out)
        self._closed = True
        usage: dict[str, Any]
        if self._usage is not None:
            usage = _usage(self._usage)
            self.input_tokens = usage["input_tokens"]
            self.usage_estimated = False
        else:
            usage = {"output_tokens": estimate_tokens(self._chars)}
        self.output_tokens = usage["output_tokens"]
        stop = _stop_reason(self._finish_reason, bool(self._tools))
        delta = {"stop_reason": stop, "stop_sequence": None}
        out.append(
            sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error(self, message: str, type_: str = "api_error") -> bytes:
        """An Anthropic ``error`` event (the SDKs raise it); the stream is over."""
        if self._closed:
            return b""
        self._closed = True
        return sse_event("error", {"type": "error", "error": {"type": type_, "message": message}})

    def ping(self) -> bytes:
        """A keep-alive ``ping`` event (clients ignore it); nothing once closed."""
        return b"" if self._closed else sse_event("ping", {"type": "ping"})

    # -- internals ---------------------------------------------------------------------

    def _start(self, event: Mapping[str, Any], out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        if self.message_id is None:
            self.message_id = _message_id(event.get("id"))
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        out.append(sse_event("message_start", {"type": "message_start", "message": message}))

    def _text(self, text: str, out: list[bytes]) -> None:
        self._chars += len(text)
        if self._open is None or self._open_tool is not None:
            self._close_block(out)
            self._open = self._new_block(out, {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        out.append(self._block_delta(delta))

    def _call(self, call: Mapping[str, Any], position: int, out: list[bytes]) -> None:
        index = call.get("index")
        if not isinstance(index, int):
            index = self._index_by_id(call.get("id"), position)
        tool = self._tools.setdefault(index, _Tool())
        if isinstance(call.get("id"), str) and call["id"] and not tool.id:
            tool.id = call["id"]
        function = call.get("function")
        if not isinstance(function, Mapping):
            function = {}
        name = function.get("name")
        if isinstance(name, str) and name and not tool.name:
            tool.name = name  # some backends repeat the whole name: take the first
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        fragment = args or ""
        self._chars += len(fragment)
        if tool.block is None:
            if fragment:
                tool.pending.append(fragment)
            if tool.name:
                self._start_tool(tool, out)
        elif tool is self._open_tool:
            self._send_args(tool, fragment, out)
        elif fragment:
            self.late_fragments += 1

    def _index_by_id(self, call_id: Any, position: int) -> int:
        if isinstance(call_id, str) and call_id:
            for index, tool in self._tools.items():
                if tool.id == call_id:
                    return index
            return max(self._tools, default=-1) + 1
        return self._open_tool_index() if self._open_tool is not None else position

    def _open_tool_index(self) -> int:
        return next(i for i, t in self._tools.items() if t is self._open_tool)

    def _start_tool(self, tool: _Tool, out: list[bytes]) -> None:
        self._close_block(out)
        block = {
            "type": "tool_use",
            "id": _safe_id(tool.id, "toolu_"),
            "name": tool.name,
            "input": {},
        }
        tool.block = self._open = self._new_block(out, block)
        self._open_tool = tool
        pending, tool.pending = "".join(tool.pending), []
        self._send_args(tool, pending, out)

    def _send_args(self, tool: _Tool, fragment: str, out: list[bytes]) -> None:
        if fragment:
            tool.sent_args = True
            out.append(self._block_delta({"type": "input_json_delta", "partial_json": fragment}))

    def _new_block(self, out: list[bytes], block: dict[str, Any]) -> int:
        index = self._next_block
        self._next_block += 1
        payload = {"type": "content_block_start", "index": index, "content_block": block}
        out.append(sse_event("content_block_start", payload))
        return index

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        payload = {"type": "content_block_delta", "index": self._open, "delta": delta}
        return sse_event("content_block_delta", payload)

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        tool = self._open_tool
        if tool is not None and not tool.sent_args:
            self._send_args(tool, "{}", out)
        out.append(
            sse_event("content_block_stop", {"type": "content_block_stop", "index": self._open})
        )
        self._open = None
        self._open_tool = None
