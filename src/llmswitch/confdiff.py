"""What a live reload changes: the difference between two configs, computed purely.

A reload swaps a new config in while the gateway serves. Most of it applies at once
(budgets, backends, models, rules, profiles, clients, limits); a few settings are read
only when the process binds its socket or opens its store, so a change to them is
reported as needing a restart and the running value is kept (:func:`applicable`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from llmswitch.config import Config
from llmswitch.urls import redact_url

#: Settings read once, at bind or store open: changing them needs a restart.
RESTART_KEYS: dict[str, tuple[str, ...]] = {
    "server": (
        "host",
        "port",
        "grace_s",
        "keep_alive_s",
        "body_timeout_s",
        "max_body_bytes",
        "max_connections",
        "send_timeout_s",
        "workers",
    ),
    "store": ("path", "url", "busy_timeout_s"),
    "log": ("format",),
    # The Redis link, its key prefix and the offline slice are set up once, at start.
    "cluster": ("redis_url", "prefix", "offline_budget_fraction"),
}
#: The sections that are lists of named entries, with the field that names each entry.
NAMED_LISTS = {"backends": "name", "models": "id", "clients": "name"}


@dataclass(frozen=True)
class Entries:
    """How one named list (backends, models, clients) changed, by name."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self, section: str) -> str:
        parts = [f"+{n}" for n in self.added] + [f"-{n}" for n in self.removed]
        parts += [f"~{n}" for n in self.changed]
        return f"{section}: {' '.join(parts)}"


@dataclass(frozen=True)
class ConfigDiff:
    """What a reload applies (``applied``) and what it leaves for a restart."""

    #: One line per applied change: a section, a setting or a named list's entries.
    applied: tuple[str, ...] = ()
    #: ``"server.port: 8080 -> 9090"``: changed in the file, not applied until a restart.
    needs_restart: tuple[str, ...] = ()
    backends: Entries = Entries()
    models: Entries = Entries()
    clients: Entries = Entries()

    @property
    def empty(self) -> bool:
        return not self.applied and not self.needs_restart


def _shown(value: object) -> object:
    """A setting's value for the report: a URL without its password."""
    return redact_url(value) if isinstance(value, str) else value


def entries(old: Sequence[BaseModel], new: Sequence[BaseModel], key: str) -> Entries:
    """Names added, removed, and present in both with any field changed."""
    before = {getattr(e, key): e for e in old}
    after = {getattr(e, key): e for e in new}
    return Entries(
        added=tuple(n for n in after if n not in before),
        removed=tuple(n for n in before if n not in after),
        changed=tuple(n for n in after if n in before and after[n] != before[n]),
    )


def _fields(section: BaseModel) -> dict[str, Any]:
    return {name: getattr(section, name) for name in type(section).model_fields}


def _changed_fields(old: BaseModel, new: BaseModel) -> Iterable[tuple[str, Any, Any]]:
    before, after = _fields(old), _fields(new)
    return ((k, before[k], after[k]) for k in after if before[k] != after[k])


def diff(old: Config, new: Config) -> ConfigDiff:
    """What swapping ``new`` in for ``old`` changes; pure, for the reload and its tests."""
    applied: list[str] = []
    restart: list[str] = []
    lists = {
        section: entries(getattr(old, section), getattr(new, section), key)
        for section, key in NAMED_LISTS.items()
    }
    for section, value in _fields(new).items():
        before = getattr(old, section)
        if section in NAMED_LISTS:
            if lists[section]:
                applied.append(lists[section].describe(section))
        elif section in RESTART_KEYS:
            for name, was, now in _changed_fields(before, value):
                if name in RESTART_KEYS[section]:
                    restart.append(f"{section}.{name}: {_shown(was)!r} -> {_shown(now)!r}")
                else:
                    applied.append(f"{section}.{name}")
        elif before != value:
            applied.append(section)
    return ConfigDiff(tuple(applied), tuple(restart), **lists)


def applicable(old: Config, new: Config) -> Config:
    """``new`` with the settings that need a restart kept at their running values."""
    update = {
        section: getattr(new, section).model_copy(
            update={name: getattr(getattr(old, section), name) for name in names}
        )
        for section, names in RESTART_KEYS.items()
    }
    return new.model_copy(update=update)
