"""``llmswitch openclaw-config``: the OpenClaw provider block for this gateway's models.

OpenClaw (``models.providers.<id>`` in its config) needs each model's id, context
window, output cap and price to budget its context and show costs; copying them by hand
drifts from llmswitch's config. This prints them from the config: ``auto`` (the router's
choice) first, then every enabled model, served over ``api: "openai-completions"`` at
the gateway's ``/v1``. Field names and units (cost in USD per million tokens) follow
OpenClaw 2026.9's custom-provider reference.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from llmswitch.cli.common import SubParsers, offline
from llmswitch.config import Config, ModelConfig

PROVIDER_ID = "llmswitch"
#: OpenClaw's default output cap for a model whose llmswitch entry sets none.
DEFAULT_MAX_TOKENS = 8192
#: Binding every address is not an address a client can use: point at this host instead.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


def base_url(config: Config) -> str:
    """The gateway's OpenAI-compatible root, from ``[server]``."""
    host = config.server.host
    host = _WILDCARDS.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{host}:{config.server.port}/v1"


def _max_tokens(m: ModelConfig) -> int:
    return m.max_output_tokens or min(DEFAULT_MAX_TOKENS, m.context_window)


def _input(models: list[ModelConfig]) -> list[str]:
    """Images only where a model says it sees them (``capabilities`` naming ``vision``)."""
    return ["text", "image"] if any("vision" in m.capabilities for m in models) else ["text"]


def _entry(model_id: str, name: str, models: list[ModelConfig]) -> dict[str, Any]:
    """One OpenClaw model row standing for ``models``: the largest window and output cap
    among them, and the highest price, so OpenClaw never underestimates a cost."""
    return {
        "id": model_id,
        "name": name,
        "reasoning": False,
        "input": _input(models),
        "cost": {
            "input": max(m.cost_input_per_mtok for m in models),
            "output": max(m.cost_output_per_mtok for m in models),
            "cacheRead": 0,
            "cacheWrite": 0,
        },
        "contextWindow": max(m.context_window for m in models),
        "maxTokens": max(_max_tokens(m) for m in models),
    }


def provider(config: Config, url: str, api_key: str) -> dict[str, Any]:
    """``models.providers.llmswitch`` for OpenClaw: ``auto``, then each enabled model."""
    enabled = [m for m in config.models if m.enabled]
    models = [_entry("auto", "llmswitch auto (cheapest model fit for each turn)", enabled)]
    models += [_entry(m.id, m.id, [m]) for m in enabled]
    return {"baseUrl": url, "apiKey": api_key, "api": "openai-completions", "models": models}


def openclaw_config(config: Config, url: str, api_key: str) -> dict[str, Any]:
    """The fragment to merge into ``openclaw.json``: the provider, and ``auto`` as the
    agents' primary model."""
    return {
        "models": {"mode": "merge", "providers": {PROVIDER_ID: provider(config, url, api_key)}},
        "agents": {"defaults": {"model": {"primary": f"{PROVIDER_ID}/auto"}}},
    }


def api_key(config: Config, env: str) -> str:
    """A reference to the client key's variable when the gateway wants client keys (the
    key itself is never printed); any non-empty value otherwise."""
    return f"${{{env}}}" if config.clients else "llmswitch-no-key"


@offline
def cmd_openclaw_config(config: Config, args: argparse.Namespace) -> int:
    url = args.base_url or base_url(config)
    key = api_key(config, args.api_key_env)
    out = provider(config, url, key) if args.provider_only else openclaw_config(config, url, key)
    print(json.dumps(out, indent=2))
    return 0


def register(sub: SubParsers) -> None:
    about = "print the OpenClaw provider config (JSON) for the configured models"
    p = sub.add_parser("openclaw-config", help=about, description=about)
    p.add_argument("--config", default="llmswitch.toml")
    p.add_argument("--base-url", help="the gateway as OpenClaw reaches it (default: [server])")
    p.add_argument(
        "--api-key-env",
        default="LLMSWITCH_API_KEY",
        help="the variable OpenClaw reads the client key from, when client keys are on",
    )
    p.add_argument(
        "--provider-only",
        action="store_true",
        help="only the provider object, for: openclaw config set models.providers.llmswitch",
    )
    p.set_defaults(func=cmd_openclaw_config)
