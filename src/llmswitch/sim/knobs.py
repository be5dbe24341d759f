"""Fault and latency knobs for one simulated model.

Knobs are immutable values: a change builds a new `ModelKnobs`, so a request that
already read its knobs keeps a consistent view while a test flips them mid-flight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


class KnobError(ValueError):
    """A knob name or value is not valid (HTTP control answers 400)."""


@dataclass(frozen=True, slots=True)
class ModelKnobs:
    """How one simulated model behaves.

    ttft_s: seconds before the first token (and before a non-stream answer).
    tokens_per_s: pacing of later tokens; 0 means as fast as possible.
    reply: canned answer text; None echoes the last user message as "echo: <text>".
    error_status: answer every request with this HTTP status and an OpenAI error body.
    error_rate: probability (0..1) of answering 500, drawn from the backend's seeded RNG.
    hang: accept the request and never answer until the client or the server gives up.
    cut_after: close the connection after this many content chunks, without [DONE]
        (0: right after the headers; non-stream: mid-body; shorter answers are not cut).
    stall_after: stop sending after this many content chunks of a stream but keep the
        connection open (no finish chunk, no [DONE]) until the client leaves; answers
        with fewer chunks are not stalled.
    retry_after_s: sent as Retry-After (and retry-after-ms) on error_status answers.
    The backend-wide default's hang/error_status/error_rate also hit /v1/models and
    /api/tags, so a "broken backend" fails its health probes too.
    tool_call: answer with a call to the first (or the forced) tool of the request.
    no_usage: report no token usage, as a server that ignores ``stream_options`` does
        (OpenAI wire only).
    stream_error_after: after this many content chunks of a stream, send the provider's
        in-stream ``overloaded_error`` event and end it (Anthropic wire only).
    """

    ttft_s: float = 0.0
    tokens_per_s: float = 0.0
    reply: str | None = None
    error_status: int | None = None
    error_rate: float = 0.0
    hang: bool = False
    cut_after: int | None = None
    retry_after_s: float | None = None
    tool_call: bool = False
    stall_after: int | None = None
    no_usage: bool = False
    stream_error_after: int | None = None

    def __post_init__(self) -> None:
        _check_float("ttft_s", self.ttft_s, minimum=0.0)
        _check_float("tokens_per_s", self.tokens_per_s, minimum=0.0)
        _check_float("error_rate", self.error_rate, minimum=0.0, maximum=1.0)
        if self.reply is not None and not isinstance(self.reply, str):
            raise KnobError("reply must be a string or null")
        if self.error_status is not None and (
            not _is_int(self.error_status) or not 400 <= self.error_status <= 599
        ):
            raise KnobError("error_status must be an integer in 400..599 or null")
        for name in ("cut_after", "stall_after", "stream_error_after"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise KnobError(f"{name} must be a non-negative integer or null")
        if self.retry_after_s is not None:
            _check_float("retry_after_s", self.retry_after_s, minimum=0.0)
        for name in ("hang", "tool_call", "no_usage"):
            if not isinstance(getattr(self, name), bool):
                raise KnobError(f"{name} must be a boolean")

    def with_changes(self, **changes: Any) -> ModelKnobs:
        """A copy with some knobs changed; unknown names raise KnobError."""
        check_knob_names(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, used by GET /_sim/knobs."""
        return asdict(self)


KNOB_NAMES: frozenset[str] = frozenset(f.name for f in fields(ModelKnobs))


def check_knob_names(changes: Mapping[str, object]) -> None:
    """Reject unknown knob names early, with the list of valid ones."""
    unknown = sorted(set(changes) - KNOB_NAMES)
    if unknown:
        raise KnobError(f"unknown knob(s) {unknown}; valid: {sorted(KNOB_NAMES)}")


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check a partial set of knob changes (names and values) without applying them."""
    check_knob_names(changes)
    ModelKnobs(**changes)  # validates each value against the field's rules
    return dict(changes)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_float(name: str, value: object, *, minimum: float, maximum: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KnobError(f"{name} must be a number")
    if not math.isfinite(value) or not minimum <= value <= maximum:
        bound = f"{minimum}..{maximum}" if math.isfinite(maximum) else f">= {minimum}"
        raise KnobError(f"{name} must be {bound}, got {value!r}")
