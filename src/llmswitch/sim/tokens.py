"""Deterministic token estimates for the simulator.

A "token" here is a word with its leading whitespace: cheap, deterministic and close
enough to real tokenizers for budget and rate-limit tests. Joining the pieces always
gives back the exact text, so streamed deltas reassemble to the non-stream answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_TOKEN = re.compile(r"\s*\S+|\s+$")

# Fixed per-message overhead, like OpenAI's chat format adds role and separators.
MESSAGE_OVERHEAD = 3


def split_tokens(text: str) -> list[str]:
    """Split text into word tokens that concatenate back to the original text."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of word tokens in text."""
    return len(_TOKEN.findall(text))


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        return " ".join(parts)
    return ""


def count_prompt_tokens(messages: Sequence[Any]) -> int:
    """Estimate prompt tokens: words in every message plus a fixed overhead each."""
    total = 0
    for message in messages:
        total += MESSAGE_OVERHEAD
        if isinstance(message, dict):
            total += count_tokens(content_text(message.get("content")))
    return total
