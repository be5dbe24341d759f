"""What a start-up self-check warns about: a config that loads but will serve badly.

Pure over the config and the environment, so ``serve`` logs it and tests read it without a
server. Each warning is one line that names the thing and says what it costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llmswitch.config import BEST_LOCAL, NO_FALLBACK, Config, ModelConfig
from llmswitch.routing.classify import QUALITY_FLOOR
from llmswitch.routing.select import tier_floor, unpriced_cloud_models


def unset_key_variables(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Backends whose ``api_key_env`` names a variable that is unset or empty."""
    lines = []
    for b in config.backends:
        if b.api_key_env and not environ.get(b.api_key_env):
            models = [m.id for m in config.models if m.backend == b.name]
            lines.append(
                f"backend {b.name}: {b.api_key_env} is not set; "
                f"its models ({', '.join(models) or 'none'}) will be refused upstream (401)"
            )
    return lines


def falls_back(config: Config) -> bool:
    """Whether tier 3 has a model to offer: a named one, or a self-hosted one for
    ``best-local`` (health aside)."""
    setting = config.routing.fallback_model
    if setting == BEST_LOCAL:
        cloud = {b.name for b in config.backends if b.locality == "cloud"}
        return any(m.backend not in cloud for m in config.models)
    return setting != NO_FALLBACK


def tiers_without_model(config: Config, models: Iterable[ModelConfig] | None = None) -> list[str]:
    """Tiers no model (of ``models``, default all) meets under the configured profile, when
    nothing falls back."""
    if falls_back(config):
        return []
    name = config.routing.profile
    profile = config.all_profiles.get(name)
    if profile is None:
        return []
    best = max((m.quality for m in (config.models if models is None else models)), default=None)
    lines = []
    for tier in QUALITY_FLOOR:
        floor = tier_floor(tier, profile)
        if best is not None and best < floor:
            lines.append(
                f"no model meets the {tier} floor ({floor}, profile {name}; best quality is "
                f"{best}) and no routing.fallback_model answers: {tier} prompts get "
                f"{config.routing.exhaustion_status}"
            )
    return lines


def start_warnings(config: Config, environ: Mapping[str, str]) -> list[str]:
    lines = []
    if not config.models:
        lines.append("no models configured: every request gets the exhaustion answer")
    lines += unset_key_variables(config, environ)
    unpriced = unpriced_cloud_models(config)
    if unpriced:
        state = "served" if config.routing.allow_unpriced else "excluded until priced"
        lines.append(
            f"cloud models without a price ({', '.join(unpriced)}): {state} "
            "(routing.allow_unpriced)"
        )
    return lines + tiers_without_model(config)
