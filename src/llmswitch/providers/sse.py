"""Server-sent events split into whole events in linear time, each one bounded.

Every wire reads an upstream's stream through :class:`EventSplitter`. Appending each
chunk to one buffer and searching it again for a blank line costs time proportional to
the buffer on every chunk: a 48 MiB line trickled in small chunks took 13-22 s. Here only
the new chunk is searched, the current line grows in a ``bytearray``, and an event
longer than ``max_bytes`` raises UpstreamOverLimit before more of it is kept.

Lines may end in LF, CRLF or CR (the SSE rule); a CR at the end of one chunk and an LF
at the start of the next are one line end. An event is the list of its lines without
their ends; the blank line that closes it is not included.
"""

from __future__ import annotations

import re

from llmswitch.providers.common import UpstreamOverLimit

_LINE_END = re.compile(rb"\r\n|\r|\n")

Event = list[bytes]


class EventSplitter:
    """Upstream SSE bytes in, whole events out, however the bytes were cut.

    ``max_bytes`` None is for the gateway's own output, whose events are bounded already.
    """

    def __init__(self, max_bytes: int | None) -> None:
        self._max = max_bytes
        self._line = bytearray()  # the line being received
        self._lines: Event = []  # whole lines of the event being received
        self._size = 0  # bytes of those lines (each counted with one line end)
        self._after_cr = False  # the last chunk ended in CR: an LF first is its pair

    def feed(self, chunk: bytes) -> list[Event]:
        """The events ``chunk`` completes; UpstreamOverLimit when one is over the limit.

        The usual chunk (whole LF-ended events, nothing pending) takes a fast path of
        ``bytes.split``; anything else, and what follows the chunk's last whole event,
        goes line by line.
        """
        if self._line or self._lines or self._after_cr or b"\r" in chunk:
            return self._feed_lines(chunk, [])
        *whole, rest = chunk.split(b"\n\n")
        events: list[Event] = []
        largest = len(chunk) if self._max is None else self._max - 1
        for piece in whole:
            if not piece or piece.startswith(b"\n"):
                piece = piece.lstrip(b"\n")  # more blank lines than one: no event between
                if not piece:
                    continue
            if len(piece) > largest:
                self._check(len(piece) + 1)
            events.append(piece.split(b"\n"))
        return self._feed_lines(rest, events) if rest else events

    def _feed_lines(self, chunk: bytes, events: list[Event]) -> list[Event]:
        start = 1 if self._after_cr and chunk.startswith(b"\n") else 0
        self._after_cr = chunk.endswith(b"\r")
        for end in _LINE_END.finditer(chunk, start):
            piece = chunk[start : end.start()]
            start = end.end()
            if self._line:
                self._line += piece
                piece = bytes(self._line)
                self._line.clear()
            self._end_line(piece, events)
        self._line += chunk[start:]
        self._check(len(self._line))
        return events

    def close(self) -> Event | None:
        """The stream ended: its last event if no blank line closed it."""
        if self._line:
            self._lines.append(bytes(self._line))
            self._line.clear()
        lines, self._lines, self._size = self._lines, [], 0
        return lines or None

    def _end_line(self, line: bytes, events: list[Event]) -> None:
        if line:
            self._check(len(line) + 1)
            self._size += len(line) + 1
            self._lines.append(line)
        elif self._lines:
            events.append(self._lines)
            self._lines, self._size = [], 0

    def _check(self, more: int) -> None:
        if self._max is not None and self._size + more > self._max:
            raise UpstreamOverLimit(f"an upstream event exceeds {self._max} bytes")


def field_values(event: Event, name: bytes) -> list[bytes]:
    """The values of one field (``data``, ``event``...) in an event, in order."""
    out = []
    for line in event:
        key, colon, value = line.partition(b":")
        if key == name and colon:
            out.append(value[1:] if value.startswith(b" ") else value)
    return out


def data_of(event: Event) -> bytes | None:
    """An event's data (its ``data`` lines joined by LF), or None if it has none."""
    if len(event) == 1 and event[0].startswith(b"data: "):
        return event[0][6:]  # the usual event: one data line
    values = field_values(event, b"data")
    return b"\n".join(values) if values else None


def encode(event: Event) -> bytes:
    """The event as LF-ended lines and its closing blank line."""
    if len(event) == 1:
        return event[0] + b"\n\n"  # the usual event: one line, one copy
    return b"\n".join(event) + b"\n\n"
