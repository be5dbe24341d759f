"""The OpenAI-compatible wire format, as llmswitch sends and relays it.

Upstream requests are the client's own body with ``model`` rewritten to the upstream
name, so everything the client sent (tools, response_format, image parts, sampling
options, ...) passes through untouched. Streamed answers are relayed event by event;
:class:`StreamTap` watches them go by for the usage and the end of the stream.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from llmswitch.config import DEFAULT_UPSTREAM_LIMITS
from llmswitch.providers.common import UpstreamFormatError, parse_json, token_counts
from llmswitch.providers.sse import Event, EventSplitter, data_of, encode
from llmswitch.providers.wire import UpstreamCall

CHAT_PATH = "/chat/completions"
DONE = b"[DONE]"


def upstream_body(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The body to send upstream: the client's, with the upstream model name.

    Streams ask for usage so the ledger has real token counts; :class:`StreamTap` hides
    the extra usage event from a client that did not ask for it.
    """
    out = dict(body, model=upstream_model)
    if body.get("stream"):
        out["stream_options"] = dict(body.get("stream_options") or {}, include_usage=True)
    return out


def client_wants_usage(body: dict[str, Any]) -> bool:
    opts = body.get("stream_options")
    return isinstance(opts, dict) and bool(opts.get("include_usage"))


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = True


def usage_of(payload: dict[str, Any]) -> Usage | None:
    """The ``usage`` object of a completion or chunk, if it has a plausible one."""
    u = payload.get("usage")
    if not isinstance(u, dict):
        return None
    counts = token_counts(u, "prompt_tokens", "completion_tokens")
    if counts is None:
        return None  # an implausible count: treated as no usage, the ledger estimates
    prompt, completion = counts
    return Usage(prompt, completion, estimated=False)


def estimate_tokens(chars: int) -> int:
    """A rough count for upstreams that report no usage: about four characters a token."""
    return max(1, chars // 4) if chars else 0


def content_chars(payload: dict[str, Any]) -> int:
    """Characters of answer text and tool arguments in a completion or chunk."""
    n = 0
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") or choice.get("message") or {}
        content = delta.get("content")
        if isinstance(content, str):
            n += len(content)
        for call in delta.get("tool_calls") or ():
            n += len((call.get("function") or {}).get("arguments") or "")
    return n


class Priced(Protocol):
    def cost_usd(self, tokens_in: int, tokens_out: int) -> float: ...


class StreamTap:
    """Splits upstream SSE bytes into whole events, noting usage and ``[DONE]`` on the way.

    :meth:`feed` returns the bytes to forward now: whole events only, so a client never
    receives half an event, and without the usage-only event the client did not ask for.
    A forwarded usage carries ``cost`` in USD when the tap knows the model's prices.
    An event that is not JSON (nor ``[DONE]``) or is over ``max_event_bytes`` raises
    UpstreamFormatError: the upstream is broken, and the relay treats it as failed.
    """

    def __init__(
        self,
        forward_usage: bool,
        max_event_bytes: int = DEFAULT_UPSTREAM_LIMITS.event_bytes,
        priced_by: Priced | None = None,
    ) -> None:
        self._forward_usage = forward_usage
        self._priced_by = priced_by
        self._events = EventSplitter(max_event_bytes)
        self.usage: Usage | None = None
        self.output_chars = 0
        self.done = False
        self.events = 0

    def feed(self, chunk: bytes) -> bytes:
        return b"".join([encode(e) for e in self._events.feed(chunk) if self._keep(e)])

    def _keep(self, event: Event) -> bool:
        data = data_of(event)
        if data is None:
            return True
        if data.strip() == DONE:
            self.done = True
            return True
        self.events += 1
        payload = parse_json(data)
        if not isinstance(payload, dict):
            raise UpstreamFormatError("an upstream stream event is not a JSON object")
        self.output_chars += content_chars(payload)
        if "usage" not in payload:
            return True
        usage = usage_of(payload)
        if usage is not None:
            self.usage = usage
            if self._forward_usage and self._priced_by is not None:
                cost = self._priced_by.cost_usd(usage.prompt_tokens, usage.completion_tokens)
                payload["usage"]["cost"] = round(cost, 8)
                event[:] = [b"data: " + json.dumps(payload).encode()]
        return self._forward_usage or bool(payload.get("choices"))

    def final_usage(self, prompt_chars: int) -> Usage:
        if self.usage is not None:
            return self.usage
        return Usage(estimate_tokens(prompt_chars), estimate_tokens(self.output_chars), True)


def prompt_chars(body: dict[str, Any]) -> int:
    """Characters of text in the request's messages, for estimating prompt tokens."""
    n = 0
    for msg in body.get("messages") or ():
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            n += len(content)
        elif isinstance(content, list):
            n += sum(len(p.get("text") or "") for p in content if isinstance(p, dict))
    return n


def sse_error(message: str, type_: str = "upstream_error", code: str | None = None) -> bytes:
    """An SSE event carrying an OpenAI-style error; the SDKs raise it as an APIError."""
    err = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return b"data: " + json.dumps(err).encode() + b"\n\n"


# Statuses that are the client's own fault: relayed as they are, never failed over.
CLIENT_FAULT = frozenset({400, 413, 422})


def error_text(status: int, payload: bytes, detail: object) -> str:
    """``HTTP status: detail``, falling back to the start of the body."""
    text = str(detail) if detail else payload[:200].decode("utf-8", "replace").strip()
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


class PassThrough:
    """OpenAI SSE needs no translation; the relay's StreamTap sees ``[DONE]`` itself."""

    error: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


class OpenAIWire:
    """OpenAI-compatible servers (OpenAI, vLLM, llama.cpp, Ollama's /v1, OpenRouter, ...)."""

    def call(self, body: dict[str, Any], upstream_model: str) -> UpstreamCall:
        return UpstreamCall(CHAT_PATH, upstream_body(body, upstream_model))

    def answer(self, payload: bytes, upstream_model: str) -> bytes:
        """The answer as it came, once it is known to be a chat completion object."""
        completion = parse_json(payload)
        if not isinstance(completion, dict) or not isinstance(completion.get("choices"), list):
            raise UpstreamFormatError("the upstream's answer is not a chat completion")
        return payload

    def translator(
        self, upstream_model: str, max_event_bytes: int = DEFAULT_UPSTREAM_LIMITS.event_bytes
    ) -> PassThrough:
        return PassThrough()  # the relay's StreamTap splits (and bounds) the events

    def error_message(self, status: int, payload: bytes) -> str:
        try:
            err = parse_json(payload).get("error")
            detail = err.get("message") if isinstance(err, dict) else err
        except (UpstreamFormatError, AttributeError):
            detail = None
        return error_text(status, payload, detail)

    def retry_after(self, payload: bytes) -> str | None:
        return None  # said in the Retry-After header, if at all

    def retryable(self, status: int, payload: bytes) -> bool:
        return status not in CLIENT_FAULT
