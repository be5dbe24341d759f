"""Provider presets fill a backend's keys; the backend's own keys win, key by key."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.actors.health import probe_paths
from llmswitch.actors.pool import upstream_client
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


def test_azure_needs_its_deployment_url_and_sends_api_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        backend(preset="azure-openai")
    deployment = "https://r.openai.azure.com/openai/deployments/gpt4o"
    b: Any = backend(preset="azure-openai", base_url=deployment)
    assert (b.auth, b.api_version) == ("api-key", "2024-10-21")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "az-key")
    sent = upstream_client(b).build_request("POST", "/chat/completions")
    assert str(sent.url) == f"{deployment}/chat/completions?api-version=2024-10-21"
    assert sent.headers["api-key"] == "az-key" and "authorization" not in sent.headers
    # The health probe asks the resource's model list, beside the deployments.
    assert probe_paths(b) == ["https://r.openai.azure.com/openai/models"]


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


@pytest.mark.parametrize(
    ("kind", "auth"),
    [
        ("openai", "bearer"),
        ("ollama", "bearer"),
        ("anthropic", "x-api-key"),
        ("gemini", "x-goog-api-key"),
    ],
)
def test_without_a_preset_the_kind_decides_how_the_key_is_sent(kind: str, auth: str) -> None:
    b = backend(kind=kind, base_url="http://127.0.0.1:9/v1")
    assert b.auth == auth  # type: ignore[attr-defined]
    assert backend(kind=kind, base_url="http://127.0.0.1:9/v1", auth="none").auth == "none"  # type: ignore[attr-defined]
