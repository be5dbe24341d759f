"""LiteLLM's ``model_prices_and_context_window.json``: catalogue facts from a maintained list.

The file maps a model key to its facts: ``input_cost_per_token`` and
``output_cost_per_token`` (USD), ``max_input_tokens``, ``max_output_tokens``, ``mode``
(only ``chat`` models are read), ``litellm_provider`` and ``supports_function_calling`` /
``supports_vision`` / ``supports_response_schema``. Keys are bare for OpenAI and Anthropic
and ``<provider>/<model>`` for the others (``gemini/gemini-2.5-pro``), so a model is looked
up under its provider's prefix only: the same name under another host is another price.

Pure: the parsed JSON in, catalogue entries (:class:`~llmswitch.providers.catalogue.Entry`)
and a diff out. A value of the wrong type is unknown, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from llmswitch.providers.catalogue import Catalogue, Entry

#: Where LiteLLM's list lives upstream; the default for ``llmswitch prices sync``.
LITELLM_URL: Final = (
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
)
#: A provider (catalogue ``provider``, or a backend's preset) and its LiteLLM key prefix.
PREFIX: Final[Mapping[str, str]] = {
    "openai": "",
    "anthropic": "",
    "google": "gemini/",
    "groq": "groq/",
    "deepseek": "deepseek/",
    "mistral": "mistral/",
    "xai": "xai/",
    "openrouter": "openrouter/",
    "together": "together_ai/",
    "moonshot": "moonshot/",
    "perplexity": "perplexity/",
}
#: Entry fields a price list sets (never quality: the list has none).
SYNCED: Final = (
    "context_window",
    "max_output_tokens",
    "input_per_mtok",
    "output_per_mtok",
    "features",
)
_FEATURE_KEYS: Final = {
    "tools": "supports_function_calling",
    "vision": "supports_vision",
    "json": "supports_response_schema",
}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _per_mtok(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        return None
    return round(value * 1_000_000, 6)


def entry_of(facts: Any) -> Entry | None:
    """The catalogue entry for one list item; None for a non-chat model or a non-object."""
    if not isinstance(facts, dict) or facts.get("mode") != "chat":
        return None
    has_flags = any(key in facts for key in _FEATURE_KEYS.values())
    features = tuple(f for f, key in _FEATURE_KEYS.items() if facts.get(key) is True)
    return Entry.model_validate(
        {
            "context_window": _count(facts.get("max_input_tokens"))
            or _count(facts.get("max_tokens")),
            "max_output_tokens": _count(facts.get("max_output_tokens")),
            "input_per_mtok": _per_mtok(facts.get("input_cost_per_token")),
            "output_per_mtok": _per_mtok(facts.get("output_cost_per_token")),
            "features": features if has_flags else None,
        }
    )


@dataclass(frozen=True)
class Wanted:
    """A model to look up: the name it is stored under, its provider, names to try."""

    name: str
    provider: str
    names: tuple[str, ...]


def wanted(catalogue: Catalogue, configured: Iterable[tuple[str, str]]) -> list[Wanted]:
    """Every catalogued model, then each configured ``(name, provider)`` not catalogued."""
    found = [
        Wanted(name, e.provider, (name, *e.aliases))
        for name, e in catalogue.entries.items()
        if e.provider is not None and e.provider in PREFIX
    ]
    for name, provider in configured:
        if catalogue.resolve(name) is None and provider in PREFIX:
            found.append(Wanted(name, provider, (name,)))
    return found


def match(items: Mapping[str, Any], want: Wanted) -> tuple[str, Entry] | None:
    """The first of the model's names listed under its provider's prefix, and its entry."""
    for name in want.names:
        key = PREFIX[want.provider] + name
        entry = entry_of(items.get(key))
        if entry is not None:
            return key, entry
    return None


@dataclass(frozen=True)
class Change:
    """One model's synced facts and what differs from what is in force."""

    name: str
    key: str
    entry: Entry
    changes: tuple[tuple[str, Any, Any], ...]


def diff(current: Entry | None, synced: Entry) -> tuple[tuple[str, Any, Any], ...]:
    """(field, in force, synced) for each field the list knows and that differs."""
    now = current.model_dump() if current is not None else {}
    new = synced.model_dump()
    return tuple(
        (f, now.get(f), new[f])
        for f in SYNCED
        if new[f] is not None and _comparable(now.get(f)) != _comparable(new[f])
    )


def _comparable(value: Any) -> Any:
    """Features in any order are the same features."""
    return sorted(value) if isinstance(value, tuple) else value


def plan(
    items: Mapping[str, Any], catalogue: Catalogue, wants: Iterable[Wanted]
) -> tuple[list[Change], list[str]]:
    """The models whose facts change, and the names the list does not have."""
    changes: list[Change] = []
    missing: list[str] = []
    for want in wants:
        found = match(items, want)
        if found is None:
            missing.append(want.name)
            continue
        key, entry = found
        changed = diff(catalogue.lookup(want.name), entry)
        if changed:
            changes.append(Change(want.name, key, entry, changed))
    return changes, missing
