"""Server-sent events as the doors read and write them.

Upstream answers reach a door as OpenAI SSE (whatever backend served them, the pipeline
speaks OpenAI); a door parses them with :class:`OpenAISSEReader` and writes its own
dialect's named events with :func:`sse_event`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from llmswitch.providers import sse
from llmswitch.providers.common import UpstreamFormatError, parse_json

DONE: Final = "[DONE]"


class OpenAISSEReader:
    """Splits OpenAI SSE bytes into parsed events, whatever the chunk boundaries.

    :meth:`feed` returns the JSON objects of the complete events so far and ``"[DONE]"``
    for the end marker. Comments, ``event:`` lines and data that is not a JSON object are
    skipped (``skipped`` counts the latter). CRLF, CR and LF line ends are all accepted.
    """

    def __init__(self) -> None:
        self._events = sse.EventSplitter(None)  # the relay's output: whole, bounded events
        self.skipped = 0

    def feed(self, data: bytes) -> list[dict[str, Any] | Literal["[DONE]"]]:
        return self._parse(self._events.feed(data))

    def close(self) -> list[dict[str, Any] | Literal["[DONE]"]]:
        """The stream ended: an unterminated last event, if any, is parsed too."""
        last = self._events.close()
        return self._parse([last] if last is not None else [])

    def _parse(self, events: list[sse.Event]) -> list[dict[str, Any] | Literal["[DONE]"]]:
        out: list[dict[str, Any] | Literal["[DONE]"]] = []
        for event in events:
            data = sse.data_of(event)
            if data is None:
                continue
            data = data.strip()
            if data == DONE.encode():
                out.append(DONE)
                continue
            try:
                payload = parse_json(data)
            except UpstreamFormatError:
                payload = None
            if isinstance(payload, dict):
                out.append(payload)
            else:
                self.skipped += 1
        return out


def sse_event(type_: str, payload: Mapping[str, Any]) -> bytes:
    """One named SSE event: ``event: <type>`` and its JSON ``data`` (Anthropic, Responses)."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {type_}\ndata: {data}\n\n".encode()


class ChunkWriter:
    """The half every door's stream writer shares: OpenAI chunks in, a dialect's events out.

    :meth:`feed_sse` parses raw bytes, :meth:`feed` takes one parsed chunk: an error
    chunk calls :meth:`error`, otherwise the first choice's text goes to :meth:`_text` and
    its tool-call fragments to :meth:`_call`, after :meth:`_start` had its chance to open
    the stream; usage and the finish reason
    are kept for :meth:`finish`. Once closed (by finish or error) nothing more comes out.
    """

    def __init__(self) -> None:
        self._reader = OpenAISSEReader()
        self._closed = False
        self._finish_reason: Any = None
        self._usage: Mapping[str, Any] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def feed_sse(self, data: bytes) -> bytes:
        """Raw OpenAI SSE bytes in; the dialect's events out (``[DONE]`` finishes)."""
        out = []
        for item in self._reader.feed(data):
            out.append(self.finish() if isinstance(item, str) else self.feed(item))
        return b"".join(out)

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        """One parsed OpenAI chunk in; the events it makes, as SSE bytes."""
        if self._closed:
            return b""
        error = chunk.get("error")
        if isinstance(error, Mapping) and not chunk.get("choices"):
            message = error.get("message")
            return self.error(message if isinstance(message, str) else "upstream error")
        out: list[bytes] = []
        self._start(chunk, out)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self._usage = usage
        choices = chunk.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if isinstance(delta, Mapping):
                    self._delta(delta, out)
                if choice.get("finish_reason") is not None:
                    self._finish_reason = choice["finish_reason"]
        return b"".join(out)

    def finish(self) -> bytes:
        """The upstream ended well: the dialect's closing events."""
        raise NotImplementedError

    def error(self, message: str) -> bytes:
        """The upstream failed: the dialect's error event; the stream is over."""
        raise NotImplementedError

    def _start(self, chunk: Mapping[str, Any], out: list[bytes]) -> None:
        raise NotImplementedError

    def _delta(self, delta: Mapping[str, Any], out: list[bytes]) -> None:
        text = delta.get("content")
        if not isinstance(text, str) or not text:
            text = delta.get("refusal")
        if isinstance(text, str) and text:
            self._text(text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, Mapping):
                    self._call(call, position, out)

    def _text(self, text: str, out: list[bytes]) -> None:
        """Answer text (or a refusal) streamed."""
        raise NotImplementedError

    def _call(self, call: Mapping[str, Any], position: int, out: list[bytes]) -> None:
        """A fragment of tool call ``position`` in its chunk (``index`` says which call)."""
        raise NotImplementedError
