"""The backend key never leaves: one scrubber for everything built from upstream text.

Providers quote the key they were sent ("Incorrect API key provided: sk-..."), and a
broken or hostile upstream may echo the ``Authorization`` header in an answer. What the
gateway makes from upstream bytes (error messages, relayed answers, streamed events,
ledger rows, health errors) goes through a :class:`Scrubber` for that backend first.

The key is found as sent, and also with any of its characters written as a JSON escape
(``\\u0073``, ``\\/``), which a client's JSON parser would turn back into the key. Streams
are scrubbed one whole event at a time, after :class:`providers.sse.EventSplitter` has
joined the network chunks: a key cut across two chunks is whole again by then. Error
messages also lose well-known key shapes (``sk-ant-...``, ``AIza...``), whoever's they are;
answers keep them, since a model may rightly write an example key.
"""

from __future__ import annotations

import re

MASK = "***"
#: Shorter "keys" are placeholders, and masking them would mangle ordinary text.
MIN_SECRET_CHARS = 8

_KNOWN_KEYS = re.compile(r"sk-ant-[A-Za-z0-9_\-]+|AIza[0-9A-Za-z_\-]{20,}")
# Where an escaped form of a key may hide: no key is found without one of these.
_ESCAPE_HINTS = (b"\\u", b"\\/")


def known_keys(text: str) -> str:
    """``text`` without anything shaped like a provider's API key."""
    return _KNOWN_KEYS.sub(MASK, text)


def _char_pattern(char: str) -> bytes:
    """A key character as sent or as a JSON escape of it (either case of hex digits)."""
    units = char.encode("utf-16-be", "surrogatepass")
    escape = b"".join(
        rb"\\u" + "".join(f"[{c}{c.upper()}]" for c in units[i : i + 2].hex()).encode()
        for i in range(0, len(units), 2)
    )
    forms = [re.escape(char.encode("utf-8", "surrogatepass")), escape]
    if char == "/":
        forms.append(rb"\\/")
    return b"(?:" + b"|".join(forms) + b")"


class Scrubber:
    """Masks the given secrets in text and bytes from an upstream."""

    def __init__(self, *secrets: str | None) -> None:
        keys = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len)
        self._literals = [k.encode() for k in reversed(keys)]
        self._pattern = (
            re.compile(b"|".join(b"".join(map(_char_pattern, k)) for k in reversed(keys)))
            if keys
            else None
        )

    def data(self, raw: bytes) -> bytes:
        """``raw`` (an answer, an event) with every form of the secrets masked."""
        if self._pattern is None:
            return raw
        # This runs on every relayed event, which usually holds neither a key nor an
        # escape: a search for each key and one for a backslash, and no regex.
        for literal in self._literals:
            if literal in raw:
                return self._pattern.sub(MASK.encode(), raw)
        if b"\\" in raw and (_ESCAPE_HINTS[0] in raw or _ESCAPE_HINTS[1] in raw):
            return self._pattern.sub(MASK.encode(), raw)
        return raw

    def text(self, text: str) -> str:
        """A message for a client, the ledger or a log: secrets and key shapes masked."""
        raw = text.encode("utf-8", "surrogatepass")
        return known_keys(self.data(raw).decode("utf-8", "surrogatepass"))
