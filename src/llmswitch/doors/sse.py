"""Server-sent events as the doors read and write them.

Upstream answers reach a door as OpenAI SSE (whatever backend served them, the pipeline
speaks OpenAI); a door parses them with :class:`OpenAISSEReader` and writes its own
dialect's named events with :func:`sse_event`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

DONE: Final = "[DONE]"


class OpenAISSEReader:
    """Splits OpenAI SSE bytes into parsed events, whatever the chunk boundaries.

    :meth:`feed` returns the JSON objects of the complete events so far and ``"[DONE]"``
    for the end marker. Comments, ``event:`` lines and data that is not a JSON object are
    skipped (``skipped`` counts the latter). CRLF, CR and LF line ends are all accepted.
    """

    def __init__(self) -> None:
        self._buf = b""
        self.skipped = 0

    def feed(self, data: bytes) -> list[dict[str, Any] | Literal["[DONE]"]]:
        raw = self._buf + data
        held = b""
        if raw.endswith(b"\r"):  # maybe the first half of a CRLF
            raw, held = raw[:-1], b"\r"
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        head, sep, rest = raw.rpartition(b"\n\n")
        self._buf = rest + held
        if not sep:
            return []
        return self._parse(head.split(b"\n\n"))

    def close(self) -> list[dict[str, Any] | Literal["[DONE]"]]:
        """The stream ended: an unterminated last event, if any, is parsed too."""
        rest, self._buf = self._buf, b""
        return self._parse([rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n")])

    def _parse(self, events: list[bytes]) -> list[dict[str, Any] | Literal["[DONE]"]]:
        out: list[dict[str, Any] | Literal["[DONE]"]] = []
        for event in events:
            lines = [
                line[5:].removeprefix(b" ")
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            ]
            if not lines:
                continue
            data = b"\n".join(lines).strip()
            if data == DONE.encode():
                out.append(DONE)
                continue
            try:
                payload = json.loads(data)
            except ValueError:
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
