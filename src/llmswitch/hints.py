"""What to try when a backend is down: one hint per kind of failure, for people.

Pure over a backend's config and the reason its probe failed (``actors.health`` words it:
an httpx exception name and message, ``HTTP 404 from models``, ``auth: HTTP 401 ...``), so
``llmswitch status`` and the start-up checks say the same thing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from llmswitch.config import BackendConfig

_SERVERS = {
    "ollama": "Ollama",
    "anthropic": "the Anthropic API",
    "gemini": "the Gemini API",
}


def _where(backend: BackendConfig) -> str:
    parts = urlsplit(backend.base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _server(backend: BackendConfig) -> str:
    if backend.kind in _SERVERS:
        return _SERVERS[backend.kind]
    return "the cloud API" if backend.locality == "cloud" else "its server (vLLM, llama.cpp…)"


def backend_hint(backend: BackendConfig, reason: str | None) -> str | None:
    """A hint for a backend whose probe failed with ``reason``; None if there is nothing
    better to say than the reason itself."""
    if not reason:
        return None
    text = reason.lower()
    if text.startswith("auth:") or "401" in text or "403" in text:
        if backend.api_key_env:
            return f"is {backend.api_key_env} set to a valid key for {backend.name}?"
        return f"{backend.name} wants a key: set api_key_env on the backend"
    if "connecterror" in text and ("name or service" in text or "getaddrinfo" in text):
        return f"cannot resolve {urlsplit(backend.base_url).hostname}: check base_url and DNS"
    if "connecterror" in text or "refused" in text:
        return f"is {_server(backend)} running on {_where(backend)}?"
    if "timeout" in text:
        return f"{_where(backend)} did not answer in time: is it overloaded, or the address wrong?"
    if "http 404" in text:
        return f"nothing at {backend.base_url}: check base_url (and its path, e.g. /v1)"
    if "http 5" in text:
        return f"{_server(backend)} is failing: see its own logs"
    return None
