"""The Anthropic Messages wire format, spoken on behalf of OpenAI chat-completions clients.

:meth:`AnthropicWire.call` turns an OpenAI chat request into a ``POST /messages`` body;
:meth:`AnthropicWire.answer` and :class:`AnthropicTranslator` turn Claude's answers back
into OpenAI ``chat.completion`` JSON and ``chat.completion.chunk`` SSE, so the relay, the
usage tap and the clients only ever see OpenAI.

What does not translate:

- ``n``, ``seed``, ``logprobs``, ``user``, ``stream_options`` and the other OpenAI-only
  options are dropped (streams always carry usage on this wire); a ``json_schema``
  ``response_format`` becomes ``output_config.format``, other response formats are dropped.
- ``temperature`` is clamped into Anthropic's 0..1; when both ``temperature`` and
  ``top_p`` are given only ``temperature`` is sent (recent Claude models refuse both).
- ``thinking`` (carried by the Anthropic door, see :mod:`llmswitch.providers.thinking`)
  is sent as given, and then no ``temperature``/``top_p``: the API refuses them together.
- Thinking blocks in answers are not relayed (OpenAI's format has no place for them).
- Parts and tools with no Anthropic equivalent (audio input, non-function tools, unknown
  roles) raise :class:`UnsupportedRequest`: this backend cannot serve the request as
  asked, another one may.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from llmswitch.config import DEFAULT_UPSTREAM_LIMITS
from llmswitch.providers import common, sse
from llmswitch.providers.common import SSE_DONE, UnsupportedRequest, UpstreamFormatError
from llmswitch.providers.openai import error_text
from llmswitch.providers.scrub import known_keys
from llmswitch.providers.wire import UpstreamCall

MESSAGES_PATH = "/messages"
API_VERSION = "2023-06-01"
#: Anthropic requires max_tokens; this is sent when the client gave none.
DEFAULT_MAX_TOKENS = 4096

_FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Error types that mean "this backend, now" rather than "this request".
_TRANSIENT_TYPES = frozenset({"overloaded_error", "rate_limit_error", "api_error", "timeout_error"})
# 401/403/404 (and 402 billing) say this backend's key, account or configured model name is
# wrong: the gateway chose the upstream model, not the client, so another backend may serve.
_BACKEND_FAULT = frozenset({401, 402, 403, 404, 408, 409, 429})


# -- requests -------------------------------------------------------------------------


def _image_block(url: Any) -> dict[str, Any]:
    if not isinstance(url, str) or not url:
        raise UnsupportedRequest("image part without a URL")
    if url.startswith("data:"):
        media_type, data = common.data_url(url, "an image part")
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise UnsupportedRequest("image URLs must be data: or http(s) URLs")


def _file_block(file: Any) -> dict[str, Any]:
    """An OpenAI ``file`` part carrying a PDF as a data URL → a document block."""
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str) or not data.startswith("data:"):
        raise UnsupportedRequest("file parts must carry file_data as a data: URL")
    media_type, encoded = common.data_url(data, "a file part")
    if media_type != "application/pdf":
        raise UnsupportedRequest(f"file parts of type {media_type} are not supported")
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": encoded},
    }


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """An OpenAI message's content as Anthropic blocks (empty text is left out)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise UnsupportedRequest("message content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        if not isinstance(part, dict):
            raise UnsupportedRequest("content parts must be objects")
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str) or not text:
                continue
            block: dict[str, Any] = {"type": "text", "text": text}
        elif kind == "image_url":
            image = part.get("image_url")
            block = _image_block(image.get("url") if isinstance(image, dict) else image)
        elif kind == "file":
            block = _file_block(part.get("file"))
        else:
            raise UnsupportedRequest(f"content parts of type {kind!r} are not supported")
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON-string arguments as the object Anthropic wants ({} if unusable)."""
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments.strip():
        try:
            value = json.loads(arguments)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    return {}


def _tool_use_blocks(calls: Any) -> list[dict[str, Any]]:
    blocks = []
    for call in calls or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise UnsupportedRequest("assistant tool_calls must be function calls with a name")
        blocks.append(
            {
                "type": "tool_use",
                "id": str(call.get("id") or ""),
                "name": function["name"],
                "input": _tool_input(function.get("arguments")),
            }
        )
    return blocks


def _tool_result_block(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": str(message.get("tool_call_id"))}
    if isinstance(content, str):
        block["content"] = content
    elif content is not None:
        block["content"] = _content_blocks(content)
    return block


def _turns(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """(system texts, alternating user/assistant turns) of OpenAI messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise UnsupportedRequest("messages must be objects")
        role = message.get("role")
        if role in ("system", "developer"):
            text = common.text_of(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _content_blocks(message.get("content"))
        elif role == "assistant":
            blocks = _content_blocks(message.get("content"))
            blocks += _tool_use_blocks(message.get("tool_calls"))
        elif role == "tool":
            role, blocks = "user", [_tool_result_block(message)]
        else:
            raise UnsupportedRequest(f"messages with role {role!r} are not supported")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # the API wants user/assistant alternation
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tidy(turns: list[dict[str, Any]]) -> None:
    """Tool results first in their user turn; a final assistant turn (a prefill) must not
    end in whitespace; a lone text block becomes a plain string."""
    for turn in turns:
        content = turn["content"]
        if turn["role"] == "user":
            content.sort(key=lambda b: b.get("type") != "tool_result")  # stable
    if turns and turns[-1]["role"] == "assistant":
        last = turns[-1]["content"][-1]
        if last.get("type") == "text":
            last["text"] = last["text"].rstrip()
            if not last["text"]:
                turns[-1]["content"].pop()
                if not turns[-1]["content"]:
                    turns.pop()
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and set(content[0]) == {"type", "text"}:
            turn["content"] = content[0]["text"]


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in tools or ():
        kind = tool.get("type", "function") if isinstance(tool, dict) else None
        function = tool.get("function") if isinstance(tool, dict) else None
        if kind != "function" or not isinstance(function, dict):
            raise UnsupportedRequest(f"tools of type {kind!r} are not supported")
        schema = function.get("parameters")
        spec: dict[str, Any] = {
            "name": function.get("name"),
            "input_schema": schema
            if isinstance(schema, dict) and schema
            else {"type": "object", "properties": {}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        out.append(spec)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if parallel is False else None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise UnsupportedRequest(f"tool_choice {choice!r} is not supported")
    if out is not None and parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _stop_sequences(stop: Any) -> list[str]:
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def messages_request(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat-completions body."""
    system, turns = _turns(list(body.get("messages") or ()))
    _tidy(turns)
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    out: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": max_tokens if isinstance(max_tokens, int) else DEFAULT_MAX_TOKENS,
        "messages": turns,
    }
    if system:
        out["system"] = "\n\n".join(system)
    stop = _stop_sequences(body.get("stop"))
    if stop:
        out["stop_sequences"] = stop
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        out["temperature"] = min(max(float(temperature), 0.0), 1.0)
    elif isinstance(body.get("top_p"), int | float):
        out["top_p"] = body["top_p"]
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    schema = _json_schema(body.get("response_format"))
    if schema is not None:
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if isinstance(body.get("thinking"), dict):
        out["thinking"] = body["thinking"]
        out.pop("temperature", None)
        out.pop("top_p", None)
    if body.get("stream"):
        out["stream"] = True
    return out


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    """The schema of a ``json_schema`` response_format: Messages' structured outputs."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    return schema if isinstance(schema, dict) else None


# -- answers --------------------------------------------------------------------------


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason."""
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


def openai_usage(usage: Any) -> dict[str, Any] | None:
    """Anthropic usage as OpenAI's; prompt tokens include cache reads and writes.

    None when there is no usage or a count is implausible: the usage is left out and the
    ledger estimates.
    """
    if not isinstance(usage, dict) or not any(key in usage for key in _USAGE_KEYS):
        return None
    counts = common.token_counts(usage, *_USAGE_KEYS)
    if counts is None:
        return None
    fresh, written, cached, completion = counts
    prompt = fresh + written + cached
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def completion_from_message(message: dict[str, Any], upstream_model: str, created: int) -> Any:
    """An OpenAI ``chat.completion`` object for a Messages API response object."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                    },
                }
            )
    reply: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        reply["tool_calls"] = calls
    model = message.get("model")
    completion: dict[str, Any] = {
        "id": message.get("id") or "msg_unknown",
        "object": "chat.completion",
        "created": created,
        "model": model if isinstance(model, str) and model else upstream_model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
    }
    usage = openai_usage(message.get("usage"))
    if usage is not None:
        completion["usage"] = usage
    return completion


def _error_detail(payload: bytes) -> tuple[str | None, str | None]:
    """(type, message) of an Anthropic error body, or Nones."""
    try:
        body = common.parse_json(payload)
    except UpstreamFormatError:
        return None, None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, None
    kind, message = err.get("type"), err.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )


class AnthropicTranslator:
    """Anthropic SSE in, OpenAI ``chat.completion.chunk`` SSE out, one whole event at a time.

    ``done`` turns true on ``message_stop`` (the finish chunk, the usage chunk and
    ``[DONE]`` go out then); ``error`` holds the message of an in-stream ``error`` event,
    which goes out as an OpenAI error event with no ``[DONE]`` after it.
    """

    def __init__(
        self,
        upstream_model: str,
        created: int | None = None,
        max_event_bytes: int = DEFAULT_UPSTREAM_LIMITS.event_bytes,
    ) -> None:
        self._model = upstream_model
        self._id = "msg_unknown"
        self._created = int(time.time()) if created is None else created
        self._events = sse.EventSplitter(max_event_bytes)
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool call index
        self._pending_input: dict[int, Any] = {}  # tool blocks that started with an input
        self._skipped: set[int] = set()  # blocks not relayed (thinking, server tools...)
        self._usage: dict[str, Any] = {}
        self._stop_reason: Any = None
        self.done = False
        self.error: str | None = None
        self._opening = b""

    @property
    def finished(self) -> bool:
        return self.done or self.error is not None

    def feed(self, chunk: bytes) -> bytes:
        if self.finished:
            return b""
        out: list[bytes] = []
        for event in self._events.feed(chunk):
            self._take(event, out)
            if self.finished:
                break
        return b"".join(out)

    def close(self) -> bytes:
        """Flush an event the upstream did not terminate; b"" unless the stream ended well."""
        out: list[bytes] = []
        last = None if self.finished else self._events.close()
        if last is not None:
            self._take(last, out)
        return b"".join(out) if self.done else b""

    def _take(self, event: sse.Event, out: list[bytes]) -> None:
        data = sse.data_of(event)
        if data is not None:
            names = sse.field_values(event, b"event")
            self._dispatch(names[-1].decode("utf-8", "replace") if names else None, data, out)

    def _dispatch(self, event: str | None, data: bytes, out: list[bytes]) -> None:
        try:
            payload = common.parse_json(data)
        except UpstreamFormatError:
            return
        if not isinstance(payload, dict):
            return
        kind = payload.get("type") or event
        handler = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return
        before = len(out)
        handler(self, payload, out)
        if self._opening and len(out) > before:
            # The held-back opening goes out before the first thing that follows it,
            # unless that is an error: then nothing of this answer has gone out at all.
            if kind != "error":
                out.insert(before, self._opening)
            self._opening = b""

    # -- chunks -----------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return common.sse_data(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
        )

    def _arguments(self, tool: int, fragment: str) -> bytes:
        return self._chunk({"tool_calls": [{"index": tool, "function": {"arguments": fragment}}]})

    # -- events -----------------------------------------------------------------------

    def _message_start(self, payload: dict[str, Any], out: list[bytes]) -> None:
        message = payload.get("message")
        if isinstance(message, dict):
            if isinstance(message.get("id"), str):
                self._id = message["id"]
            if isinstance(message.get("model"), str) and message["model"]:
                self._model = message["model"]
            if isinstance(message.get("usage"), dict):
                self._usage.update(message["usage"])
        # Held back until something follows: an error right after message_start then
        # reaches the relay before any byte has gone out, so it can still fail over.
        self._opening = self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, payload: dict[str, Any], out: list[bytes]) -> None:
        index = payload.get("index")
        block = payload.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text":
            if block.get("text"):
                out.append(self._chunk({"content": block["text"]}))
        elif kind == "tool_use":
            tool = self._tools[index] = len(self._tools)
            call = {
                "index": tool,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
            if block.get("input"):
                self._pending_input[index] = block["input"]
        else:
            self._skipped.add(index)

    def _block_delta(self, payload: dict[str, Any], out: list[bytes]) -> None:
        index = payload.get("index")
        delta = payload.get("delta")
        if not isinstance(index, int) or not isinstance(delta, dict) or index in self._skipped:
            return
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if isinstance(text, str) and text:
                out.append(self._chunk({"content": text}))
        elif kind == "input_json_delta" and index in self._tools:
            fragment = delta.get("partial_json")
            if isinstance(fragment, str) and fragment:
                self._pending_input.pop(index, None)
                out.append(self._arguments(self._tools[index], fragment))

    def _block_stop(self, payload: dict[str, Any], out: list[bytes]) -> None:
        index = payload.get("index")
        if isinstance(index, int) and index in self._pending_input:
            arguments = json.dumps(self._pending_input.pop(index), ensure_ascii=False)
            out.append(self._arguments(self._tools[index], arguments))

    def _message_delta(self, payload: dict[str, Any], out: list[bytes]) -> None:
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self._stop_reason = delta["stop_reason"]
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _message_stop(self, payload: dict[str, Any], out: list[bytes]) -> None:
        out.append(self._chunk({}, finish_reason(self._stop_reason)))
        usage = openai_usage(self._usage)
        if usage is not None:
            usage_chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": usage,
            }
            out.append(common.sse_data(usage_chunk))
        out.append(SSE_DONE)
        self.done = True

    def _error(self, payload: dict[str, Any], out: list[bytes]) -> None:
        err = payload.get("error")
        err = err if isinstance(err, dict) else {}
        kind = err.get("type") if isinstance(err.get("type"), str) else "api_error"
        message = err.get("message") if isinstance(err.get("message"), str) else kind
        self.error = known_keys(str(message))
        out.append(
            common.sse_data(
                {"error": {"message": self.error, "type": kind, "param": None, "code": kind}}
            )
        )

    _HANDLERS: dict[str, Callable[[AnthropicTranslator, dict[str, Any], list[bytes]], None]] = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "error": _error,
    }


class AnthropicWire:
    """Anthropic's Messages API (``POST {base_url}/messages``, ``anthropic-version``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    def call(self, body: dict[str, Any], upstream_model: str) -> UpstreamCall:
        return UpstreamCall(
            MESSAGES_PATH,
            messages_request(body, upstream_model),
            headers={"anthropic-version": API_VERSION},
        )

    def answer(self, payload: bytes, upstream_model: str) -> bytes:
        message = common.parse_json(payload)
        if not isinstance(message, dict) or message.get("type") not in ("message", None):
            raise UpstreamFormatError("the upstream's answer is not a Messages API message")
        return common.dumps(completion_from_message(message, upstream_model, int(self._clock())))

    def translator(
        self, upstream_model: str, max_event_bytes: int = DEFAULT_UPSTREAM_LIMITS.event_bytes
    ) -> AnthropicTranslator:
        return AnthropicTranslator(upstream_model, int(self._clock()), max_event_bytes)

    def error_message(self, status: int, payload: bytes) -> str:
        kind, message = _error_detail(payload)
        detail = f"{message} ({kind})" if message and kind else message or kind
        return known_keys(error_text(status, payload, detail))

    def retry_after(self, payload: bytes) -> str | None:
        return None  # said in the Retry-After header, if at all

    def retryable(self, status: int, payload: bytes) -> bool:
        """Fail over on overload, rate limits, server errors and backend misconfiguration
        (bad key, no access, unknown model name, billing); not on the request's own faults.

        A 400 "credit balance is too low" is the account's problem, not the request's.
        """
        kind, message = _error_detail(payload)
        if kind in _TRANSIENT_TYPES or status >= 500 or status in _BACKEND_FAULT:
            return True
        # Any other 4xx (400, 413, 422, ...) is the request's own fault.
        return kind == "billing_error" or bool(message and "credit balance" in message.lower())
