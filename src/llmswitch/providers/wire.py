"""What every upstream wire format provides, so the relay speaks OpenAI whatever is behind.

Inside llmswitch a request is an OpenAI chat-completions body and an answer is OpenAI
JSON or OpenAI SSE. A :class:`Wire` turns the first into the provider's request and the
provider's answer back into the second; the relay and the failover loop never look at
provider formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class UpstreamCall:
    """One HTTP request to send upstream, relative to the backend's base URL."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


class Translator(Protocol):
    """Turns a provider's streamed bytes into OpenAI SSE events, as they arrive."""

    #: The message of an error event the provider sent inside its stream, once it has.
    error: str | None

    def feed(self, chunk: bytes) -> bytes:
        """Provider bytes in; whole OpenAI SSE events out (possibly none yet)."""
        ...

    def close(self) -> bytes:
        """The upstream ended: whatever is left, ending with ``data: [DONE]`` if it ended well.

        Returns b"" when the provider's stream ended without its proper end marker, so the
        relay reports a cut stream instead of a complete one.
        """
        ...


class Wire(Protocol):
    def call(self, body: dict[str, Any], upstream_model: str) -> UpstreamCall:
        """The provider request for an OpenAI chat-completions ``body`` (stream or not)."""
        ...

    def answer(self, payload: bytes, upstream_model: str) -> bytes:
        """A provider's non-streamed answer as OpenAI ``chat.completion`` JSON bytes."""
        ...

    def translator(self, upstream_model: str, max_event_bytes: int) -> Translator:
        """A fresh stream translator for one streamed answer; an upstream event longer
        than ``max_event_bytes`` makes it raise UpstreamOverLimit."""
        ...

    def error_message(self, status: int, payload: bytes) -> str:
        """A short, secret-free message for a provider error answer."""
        ...

    def retry_after(self, payload: bytes) -> str | None:
        """A wait the provider asked for in its error body (a ``Retry-After`` value), for
        providers that say it there rather than in the header."""
        ...

    def retryable(self, status: int, payload: bytes) -> bool:
        """True when another backend may succeed where this one failed (5xx, 429, 529...);
        False when the request itself is at fault and failing over would only repeat it."""
        ...
