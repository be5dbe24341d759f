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
