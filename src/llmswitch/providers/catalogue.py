"""The model catalogue: what llmswitch knows about well-known hosted models, as data.

The facts live in ``catalogue.toml`` (package data), not in code. A configured model on a
cloud backend whose name (``upstream``, else ``id``) the catalogue lists, by id or
alias, takes every field the config leaves out; the config always wins. ``llmswitch
prices sync`` keeps an overlay in the store (prices, context windows, features) that wins
over the shipped file: :meth:`Catalogue.with_overlay`.

Pure: plain data in, plain data out. The config's validation calls :func:`fill_models`
on the raw TOML before any model is built, so a filled value is validated like a typed one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmswitch.providers.presets import apply_preset

Feature = Literal["tools", "vision", "json"]
#: A feature a model lacks rules out the task type that needs it.
FEATURE_TASK: Final[Mapping[str, str]] = {"vision": "vision", "tools": "tool-use"}


class Entry(BaseModel):
    """One model's facts; None is "not known" (the config's default stays)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = None
    aliases: tuple[str, ...] = ()
    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    input_per_mtok: float | None = Field(None, ge=0)
    output_per_mtok: float | None = Field(None, ge=0)
    features: tuple[Feature, ...] | None = None
    quality: int | None = Field(None, ge=0, le=100)
    quality_source: str | None = None

    def merged(self, over: Entry) -> Entry:
        """This entry with every field ``over`` knows replaced (aliases are kept)."""
        known = over.model_dump(exclude_none=True, exclude={"aliases"})
        return self.model_copy(update=known)


#: Entry fields and the model fields they fill.
MODEL_FIELDS: Final = {
    "context_window": "context_window",
    "max_output_tokens": "max_output_tokens",
    "input_per_mtok": "cost_input_per_mtok",
    "output_per_mtok": "cost_output_per_mtok",
    "quality": "quality",
}


def capabilities(features: Iterable[str], task_types: Iterable[str]) -> list[str]:
    """The task types a model with ``features`` is fit for; empty (all) if it lacks none."""
    lacking = {task for feature, task in FEATURE_TASK.items() if feature not in features}
    return [t for t in task_types if t not in lacking] if lacking else []


def model_fields(entry: Entry, task_types: Iterable[str]) -> dict[str, Any]:
    """What ``entry`` fills in a ``[[models]]`` table."""
    known = entry.model_dump(exclude_none=True)
    fields = {model: known[key] for key, model in MODEL_FIELDS.items() if key in known}
    if entry.features is not None:
        caps = capabilities(entry.features, task_types)
        if caps:
            fields["capabilities"] = caps
    return fields


@dataclass(frozen=True)
class Catalogue:
    """Entries by id; :meth:`lookup` also finds an alias."""

    entries: Mapping[str, Entry]

    def resolve(self, name: str) -> str | None:
        """The id ``name`` is, or is an alias of; None when not catalogued."""
        if name in self.entries:
            return name
        return next((k for k, e in self.entries.items() if name in e.aliases), None)

    def lookup(self, name: str) -> Entry | None:
        key = self.resolve(name)
        return None if key is None else self.entries[key]

    def with_overlay(self, overlay: Mapping[str, Entry]) -> Catalogue:
        """The overlay's known fields win; an overlay name not catalogued is a new entry."""
        entries = dict(self.entries)
        for name, over in overlay.items():
            key = self.resolve(name) or name
            entries[key] = entries[key].merged(over) if key in entries else over
        return Catalogue(entries)


def parse_catalogue(text: str) -> Catalogue:
    """A catalogue from TOML text; ValueError (pydantic's, naming the field) if malformed."""
    tables = tomllib.loads(text).get("models", {})
    return Catalogue({name: Entry.model_validate(t) for name, t in tables.items()})


@cache
def builtin() -> Catalogue:
    """The catalogue shipped in the package (read once)."""
    return parse_catalogue(files(__package__).joinpath("catalogue.toml").read_text("utf-8"))


def _cloud(backend: Any) -> bool:
    if not isinstance(backend, dict):
        return False
    try:
        return apply_preset(backend).get("locality") == "cloud"
    except ValueError:  # an unknown preset: the config's validation names it
        return False


def fill_models(data: Any, catalogue: Catalogue, task_types: Iterable[str]) -> Any:
    """Raw config data with catalogued cloud models' missing fields filled in.

    Anything malformed is passed through untouched for validation to refuse.
    """
    if not isinstance(data, dict) or not isinstance(data.get("models"), list | tuple):
        return data
    backends = data.get("backends")
    cloud = {b.get("name") for b in backends if _cloud(b)} if isinstance(backends, list) else set()
    tasks = tuple(task_types)

    def fill(model: Any) -> Any:
        if not isinstance(model, dict) or model.get("backend") not in cloud:
            return model
        name = model.get("upstream") or model.get("id")
        entry = catalogue.lookup(name) if isinstance(name, str) else None
        return model if entry is None else model_fields(entry, tasks) | model

    return data | {"models": [fill(m) for m in data["models"]]}
