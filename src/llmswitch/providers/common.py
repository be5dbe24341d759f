"""Helpers every translating wire (Anthropic, Gemini) needs alike.

Both turn OpenAI chat requests into another API's format and its answers back into
OpenAI JSON and SSE, so they fail the same way and read OpenAI content the same way.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

SSE_DONE = b"data: [DONE]\n\n"


class UnsupportedRequest(ValueError):
    """The OpenAI request uses something the upstream's API cannot express."""


class UpstreamFormatError(ValueError):
    """The upstream's answer is not in its API's response format."""


class UpstreamOverLimit(UpstreamFormatError):
    """The upstream sent more than a configured limit allows (an answer, an event)."""


#: The most tokens one answer may report; past it a report is garbage (and would overflow
#: SQLite's 64-bit integers in the ledger).
MAX_REPORTED_TOKENS: Final = 10**9


def token_count(value: Any) -> int | None:
    """A token count from an upstream's usage report: 0 when absent (null), None when it is
    not a plausible count (a string, a float such as ``1e400``, a negative number, a huge one).
    """
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REPORTED_TOKENS:
        return value
    return None


def token_counts(report: Mapping[str, Any], *keys: str) -> tuple[int, ...] | None:
    """The counts under ``keys`` of an upstream's usage report, or None if any is implausible.

    Upstreams are untrusted: one bad field makes the whole report untrustworthy, so the
    caller treats it as missing and the ledger estimates the tokens instead.
    """
    counts: list[int] = []
    for key in keys:
        count = token_count(report.get(key))
        if count is None:
            return None
        counts.append(count)
    return tuple(counts)


def parse_json(payload: bytes) -> Any:
    """An upstream's JSON; UpstreamFormatError for anything else (bad UTF-8, too deep)."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError):
        raise UpstreamFormatError("the upstream sent something that is not JSON") from None


def dumps(obj: Any) -> bytes:
    """Compact JSON as UTF-8, as OpenAI sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse_data(payload: Any) -> bytes:
    """One SSE event carrying *payload* as its JSON data."""
    return b"data: " + dumps(payload) + b"\n\n"


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def data_url(url: str, part: str) -> tuple[str, str]:
    """(media type, base64 data) of a ``data:`` URL found in *part* (for the error)."""
    head, sep, data = url[len("data:") :].partition(",")
    if not sep:
        raise UnsupportedRequest(f"malformed data: URL in {part}")
    params = head.split(";")
    media_type = params[0].strip() or "text/plain"
    if "base64" in (p.strip().lower() for p in params[1:]):
        return media_type, "".join(data.split())
    return media_type, base64.b64encode(urllib.parse.unquote_to_bytes(data)).decode("ascii")
