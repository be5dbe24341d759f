"""URLs that may carry a credential (``user:password@``): shown only without it."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """A URL without any user:password part, which may hold a credential."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def scrub_password(text: str, url: str) -> str:
    """``text`` with the URL's password (as written, and decoded) replaced by ``***``."""
    password = urlsplit(url).password
    for secret in {password, unquote(password)} if password else ():
        text = text.replace(secret, "***")
    return text
