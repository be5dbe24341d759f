"""Provider presets: what ``preset = "openrouter"`` fills in for a backend.

Facts about each provider's public API (base URL, wire format, how the key is sent, the
conventional key variable). A backend's own keys override a preset's, key by key.
"""

from __future__ import annotations

from typing import Any, Final

_CLOUD_BEARER: Final = {"kind": "openai", "auth": "bearer", "locality": "cloud"}

PRESETS: Final[dict[str, dict[str, Any]]] = {
    "openai": _CLOUD_BEARER | {"base_url": "https://api.openai.com/v1",
                               "api_key_env": "OPENAI_API_KEY"},
    "anthropic": {"kind": "anthropic", "auth": "x-api-key", "locality": "cloud",
                  "base_url": "https://api.anthropic.com/v1", "api_key_env": "ANTHROPIC_API_KEY"},
    "google": {"kind": "gemini", "auth": "x-goog-api-key", "locality": "cloud",
               "base_url": "https://generativelanguage.googleapis.com/v1beta",
               "api_key_env": "GEMINI_API_KEY"},
    "openrouter": _CLOUD_BEARER | {"base_url": "https://openrouter.ai/api/v1",
                                   "api_key_env": "OPENROUTER_API_KEY"},
    "groq": _CLOUD_BEARER | {"base_url": "https://api.groq.com/openai/v1",
                             "api_key_env": "GROQ_API_KEY"},
    "together": _CLOUD_BEARER | {"base_url": "https://api.together.xyz/v1",
                                 "api_key_env": "TOGETHER_API_KEY"},
    "fireworks": _CLOUD_BEARER | {"base_url": "https://api.fireworks.ai/inference/v1",
                                  "api_key_env": "FIREWORKS_API_KEY"},
    "deepseek": _CLOUD_BEARER | {"base_url": "https://api.deepseek.com/v1",
                                 "api_key_env": "DEEPSEEK_API_KEY"},
    "mistral": _CLOUD_BEARER | {"base_url": "https://api.mistral.ai/v1",
                                "api_key_env": "MISTRAL_API_KEY"},
    "xai": _CLOUD_BEARER | {"base_url": "https://api.x.ai/v1", "api_key_env": "XAI_API_KEY"},
    "moonshot": _CLOUD_BEARER | {"base_url": "https://api.moonshot.ai/v1",
                                 "api_key_env": "MOONSHOT_API_KEY"},
    "perplexity": _CLOUD_BEARER | {"base_url": "https://api.perplexity.ai",
                                   "api_key_env": "PERPLEXITY_API_KEY"},
    # The base URL is the deployment's own: https://RESOURCE.openai.azure.com/openai/
    # deployments/DEPLOYMENT; every call also carries ?api-version=.
    "azure-openai": {"kind": "openai", "auth": "api-key", "locality": "cloud",
                     "api_key_env": "AZURE_OPENAI_API_KEY", "api_version": "2024-10-21"},
    "cohere": _CLOUD_BEARER | {"base_url": "https://api.cohere.ai/compatibility/v1",
                               "api_key_env": "COHERE_API_KEY"},
    "ollama": {"kind": "ollama", "auth": "none", "locality": "local",
               "base_url": "http://127.0.0.1:11434/v1"},
    "vllm": {"kind": "openai", "auth": "bearer", "locality": "lan",
             "base_url": "http://127.0.0.1:8000/v1"},
    "llamacpp": {"kind": "openai", "auth": "bearer", "locality": "local",
                 "base_url": "http://127.0.0.1:8080/v1"},
    "lmstudio": {"kind": "openai", "auth": "bearer", "locality": "local",
                 "base_url": "http://127.0.0.1:1234/v1"},
}  # fmt: skip


#: How each wire format sends its key when neither the backend nor a preset says.
KIND_AUTH: Final = {
    "openai": "bearer",
    "ollama": "bearer",
    "anthropic": "x-api-key",
    "gemini": "x-goog-api-key",
}


def apply_preset(backend: dict[str, Any]) -> dict[str, Any]:
    """The backend's keys on top of its preset's, and the auth style its kind implies.

    Raises ValueError for an unknown preset.
    """
    name = backend.get("preset")
    if name is not None and name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; one of {', '.join(sorted(PRESETS))}")
    merged = PRESETS[name] | backend if name is not None else backend
    if "auth" in merged:
        return merged
    return merged | {"auth": KIND_AUTH.get(merged.get("kind", "openai"), "bearer")}


def auth_headers(auth: str, key: str | None) -> dict[str, str]:
    """How a key is sent: ``bearer`` (Authorization), ``x-api-key``, ``x-goog-api-key``,
    ``api-key`` (Azure); ``none`` or no key sends nothing."""
    if not key or auth == "none":
        return {}
    if auth == "bearer":
        return {"Authorization": f"Bearer {key}"}
    return {auth: key}
