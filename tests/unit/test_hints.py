"""Hints for a down backend, keyed on the reasons the health prober writes."""

from __future__ import annotations

import pytest

from llmswitch.config import BackendConfig
from llmswitch.hints import backend_hint

OLLAMA = BackendConfig(name="box", kind="ollama", base_url="http://127.0.0.1:11434")
OPENAI = BackendConfig(
    name="openai",
    kind="openai",
    base_url="https://api.openai.com/v1",
    locality="cloud",
    api_key_env="OPENAI_API_KEY",
)


@pytest.mark.parametrize(
    ("backend", "reason", "hint"),
    [
        (
            OLLAMA,
            "ConnectError: [Errno 111] Connection refused",
            "is Ollama running on 127.0.0.1:11434?",
        ),
        (OPENAI, "auth: HTTP 401 from models", "is OPENAI_API_KEY set to a valid key for openai?"),
        (OLLAMA, "auth: HTTP 403 from models", "box wants a key: set api_key_env on the backend"),
        (
            OPENAI,
            "ConnectError: [Errno -2] Name or service not known",
            "cannot resolve api.openai.com: check base_url and DNS",
        ),
        (
            OPENAI,
            "ReadTimeout",
            "api.openai.com:443 did not answer in time: is it overloaded, or the address wrong?",
        ),
        (
            OLLAMA,
            "HTTP 404 from tags",
            "nothing at http://127.0.0.1:11434: check base_url (and its path, e.g. /v1)",
        ),
        (OPENAI, "HTTP 503 from models", "the cloud API is failing: see its own logs"),
        (OLLAMA, "something new", None),
        (OLLAMA, None, None),
    ],
)
def test_each_failure_gets_the_hint_that_fixes_it(
    backend: BackendConfig, reason: str | None, hint: str | None
) -> None:
    assert backend_hint(backend, reason) == hint
