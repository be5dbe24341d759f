"""The routing settings in force: the config file's, with what is stored at run time on top.

Pure functions over plain data. The router actor and the offline CLI both read the
stored rows and call :func:`merged`, so they agree on what is in force; a change is
checked by :func:`checked` before it is stored, by whoever makes it (admin API, CLI, a
peer in the fleet).

Besides the profile, the per-task overrides and the rules, these config values may be
stored (their keys are the config's paths): ``routing.allow``, ``routing.block`` and the
global budgets ``budget.daily_usd``, ``budget.weekly_usd``, ``budget.monthly_usd`` and
``budget.task_daily_usd``. A stored value replaces the file's until it is cleared (its
row deleted); a stored budget of ``null`` means "no limit", which is not the same as
"cleared". Per-key budgets stay with the keys.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from llmswitch.config import (
    BudgetConfig,
    Config,
    RuleConfig,
    did_you_mean,
    task_type_problem,
    unknown_name,
)
from llmswitch.routing.brain import RoutingSettings
from llmswitch.routing.rules import effective_rules
from llmswitch.routing.select import Catalog

log = logging.getLogger(__name__)

MODEL_LISTS: Final = ("routing.allow", "routing.block")
BUDGETS: Final = ("budget.daily_usd", "budget.weekly_usd", "budget.monthly_usd")
TASK_BUDGETS: Final = "budget.task_daily_usd"
#: Every config value that may be stored, in the order they are shown.
LIVE_KEYS: Final = (*MODEL_LISTS, *BUDGETS, TASK_BUDGETS)
#: A stored model list or task table holds at most this many entries.
MAX_ENTRIES: Final = 256


class InvalidSetting(ValueError):
    """A value that cannot be stored under its key; the message says why."""


def _usd(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSetting(f"{where}: expected a number of USD, got {json_type(value)}")
    if not math.isfinite(value) or value < 0:
        raise InvalidSetting(f"{where}: must be a finite number >= 0, got {value!r}")
    return float(value)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), "a number"
    )


def checked(key: str, value: Any, catalog: Catalog | None) -> Any:
    """``value`` as it is stored under ``key`` (model names as ids); InvalidSetting if it
    cannot be.

    ``catalog`` names the models (ids and aliases); None skips that check (a
    stored value read back after a reload removed a model: an unknown id in ``allow``
    lets nothing more through, one in ``block`` blocks nothing).
    """
    if key in MODEL_LISTS:
        if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
            raise InvalidSetting(f"{key}: expected a list of model names, got {json_type(value)}")
        if len(value) > MAX_ENTRIES:
            raise InvalidSetting(f"{key}: at most {MAX_ENTRIES} models")
        if catalog is None:
            return list(dict.fromkeys(value))
        models = catalog.by_name
        unknown = [m for m in value if m not in models]
        if unknown:
            raise InvalidSetting(f"{key}: {unknown_name('model', unknown[0], models)}")
        return list(dict.fromkeys(models[m].id for m in value))
    if key in BUDGETS:
        return None if value is None else _usd(key, value)
    if key == TASK_BUDGETS:
        if not isinstance(value, dict):
            raise InvalidSetting(f"{key}: expected an object of task type → USD")
        if len(value) > MAX_ENTRIES:
            raise InvalidSetting(f"{key}: at most {MAX_ENTRIES} task types")
        table = {}
        for task, usd in value.items():
            problem = task_type_problem(task)
            if problem is not None:
                raise InvalidSetting(f"{key}.{task}: {problem}")
            table[task] = _usd(f"{key}.{task}", usd)
        return table
    raise InvalidSetting(unknown_key(key) or key)


def unknown_key(key: str) -> str | None:
    """Why ``key`` is not a config value that may be stored, or None."""
    if key in LIVE_KEYS:
        return None
    return f"unknown setting {key!r}{did_you_mean(key, LIVE_KEYS)} valid: {', '.join(LIVE_KEYS)}"


def _kept(rows: Mapping[str, Any]) -> dict[str, Any]:
    """The stored config values that still validate; the others are logged and skipped
    (the file's value is in force for those)."""
    kept = {}
    for key in LIVE_KEYS:
        if key not in rows:
            continue
        try:
            kept[key] = checked(key, rows[key], None)
        except InvalidSetting as exc:
            log.warning("router_settings: ignoring the stored %s", exc)
    return kept


def merged(
    config: Config, rows: Mapping[str, Any] | None = None, rules: Sequence[RuleConfig] = ()
) -> RoutingSettings:
    """The settings in force: ``config``'s, with the stored ``rows`` (key → value, as
    :func:`llmswitch.store.settings.load_settings` reads them) and stored ``rules`` on top.

    A stored profile the config no longer has is ignored; stored overrides add to (and
    replace) the config's per task.
    """
    rows = rows or {}
    live = _kept(rows)
    profile = rows.get("profile")
    stored = set(live)
    if isinstance(profile, str) and profile in config.all_profiles:
        stored.add("profile")
    else:
        profile = config.routing.profile
    raw = rows.get("overrides")
    overrides = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    r = config.routing
    return RoutingSettings(
        profile,
        dict(config.overrides) | overrides,
        effective_rules(config.rules, list(rules)),
        tuple(rule.name for rule in rules),
        allow=tuple(live.get("routing.allow", r.allow)),
        block=tuple(live.get("routing.block", r.block)),
        budget=_overlaid(config.budget, live),
        stored=frozenset(stored),
    )


def _overlaid(file: BudgetConfig, stored: Mapping[str, Any]) -> BudgetConfig:
    """The file's budgets with the stored ones (by key) on top."""
    update = {k.removeprefix("budget."): v for k, v in stored.items() if k.startswith("budget.")}
    return file.model_copy(update=update) if update else file


def budget_in_force(file: BudgetConfig, settings: RoutingSettings) -> BudgetConfig:
    """The budgets in force over ``file``, the config's ``[budget]`` in force now: the
    values ``settings`` says are stored, on top of it. Right even while ``settings`` was
    merged over an older file (a reload the router has not taken yet)."""
    values = live_values(settings)
    return _overlaid(file, {k: values[k] for k in settings.stored if k.startswith("budget.")})


def live_values(settings: RoutingSettings) -> dict[str, Any]:
    """The stored-able config values in force, by key (as :func:`checked` takes them)."""
    b: BudgetConfig = settings.budget
    return {
        "routing.allow": list(settings.allow),
        "routing.block": list(settings.block),
        "budget.daily_usd": b.daily_usd,
        "budget.weekly_usd": b.weekly_usd,
        "budget.monthly_usd": b.monthly_usd,
        TASK_BUDGETS: dict(b.task_daily_usd),
    }


def sources(
    settings: RoutingSettings, keys: Collection[str] = ("profile", *LIVE_KEYS)
) -> dict[str, str]:
    """Where each value in force comes from: ``stored`` (run time) or ``file``."""
    return {k: "stored" if k in settings.stored else "file" for k in keys}
