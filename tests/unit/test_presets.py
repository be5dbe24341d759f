"""Provider presets fill a backend's keys; the backend's own keys win, key by key."""

from __future__ import annotations

import pytest

from llmswitch.config import ConfigError, parse_config
from llmswitch.providers.presets import PRESETS, auth_headers


def backend(**keys: object) -> object:
    return parse_config({"backends": [{"name": "b", **keys}]}).backends[0]


def test_preset_fills_kind_url_auth_key_and_locality() -> None:
    b = backend(preset="openrouter")
    assert (b.kind, b.base_url, b.auth, b.api_key_env, b.locality) == (  # type: ignore[attr-defined]
        "openai",
        "https://openrouter.ai/api/v1",
        "bearer",
        "OPENROUTER_API_KEY",
        "cloud",
    )


def test_backend_keys_override_the_preset() -> None:
    b = backend(preset="anthropic", api_key_env="MY_CLAUDE_KEY", base_url="http://127.0.0.1:9/v1")
    assert (b.kind, b.auth, b.api_key_env, b.base_url) == (  # type: ignore[attr-defined]
        "anthropic",
        "x-api-key",
        "MY_CLAUDE_KEY",
        "http://127.0.0.1:9/v1",
    )


def test_azure_needs_its_deployment_url_and_sends_api_version() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        backend(preset="azure-openai")
    b = backend(
        preset="azure-openai", base_url="https://r.openai.azure.com/openai/deployments/gpt4o"
    )
    assert (b.auth, b.api_version) == ("api-key", "2024-10-21")  # type: ignore[attr-defined]


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        backend(preset="nope")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_yields_a_valid_backend(name: str) -> None:
    extra = {"base_url": "https://example.invalid/v1"} if "base_url" not in PRESETS[name] else {}
    assert backend(preset=name, **extra).kind in {"openai", "ollama", "anthropic", "gemini"}  # type: ignore[attr-defined]


def test_auth_styles() -> None:
    assert auth_headers("bearer", "k") == {"Authorization": "Bearer k"}
    assert auth_headers("x-api-key", "k") == {"x-api-key": "k"}
    assert auth_headers("x-goog-api-key", "k") == {"x-goog-api-key": "k"}
    assert auth_headers("api-key", "k") == {"api-key": "k"}
    assert auth_headers("none", "k") == {}
    assert auth_headers("bearer", None) == {}
