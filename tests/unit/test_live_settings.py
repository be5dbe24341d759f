"""The settings in force: the file's with the stored values on top, and what may be stored."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.config import parse_config
from llmswitch.routing.budget import budgets_for
from llmswitch.routing.live import (
    LIVE_KEYS,
    InvalidSetting,
    budget_in_force,
    checked,
    live_values,
    merged,
    sources,
)
from llmswitch.routing.select import Catalog

CONFIG = parse_config(
    {
        "backends": [{"name": "b", "kind": "ollama", "base_url": "http://127.0.0.1:1"}],
        "models": [
            {"id": "small", "backend": "b", "quality": 20, "aliases": ["tiny"]},
            {"id": "big", "backend": "b", "quality": 90},
        ],
        "routing": {"block": ["big"]},
        "budget": {"daily_usd": 5.0, "task_daily_usd": {"code": 1.0}},
    }
)
CATALOG = Catalog.build(CONFIG)


def test_with_nothing_stored_the_files_values_are_in_force() -> None:
    settings = merged(CONFIG)
    assert (settings.allow, settings.block) == ((), ("big",))
    assert settings.budget == CONFIG.budget
    assert set(sources(settings).values()) == {"file"}


def test_stored_values_replace_the_files_and_say_so() -> None:
    rows = {"routing.block": [], "routing.allow": ["small"], "budget.daily_usd": 0.5}
    settings = merged(CONFIG, rows)
    assert (settings.allow, settings.block) == (("small",), ())
    assert settings.budget.daily_usd == 0.5
    assert settings.budget.task_daily_usd == {"code": 1.0}  # not stored: the file's
    assert settings.budget.alert_at == CONFIG.budget.alert_at
    where = sources(settings)
    assert where["routing.block"] == where["budget.daily_usd"] == "stored"
    assert where["budget.task_daily_usd"] == where["profile"] == "file"
    assert live_values(settings)["routing.allow"] == ["small"]


def test_a_stored_null_budget_means_no_limit_which_is_not_cleared() -> None:
    unlimited = merged(CONFIG, {"budget.daily_usd": None})
    assert unlimited.budget.daily_usd is None
    assert not [b for b in budgets_for(unlimited.budget, None, None) if b.period == "day"]
    assert sources(unlimited)["budget.daily_usd"] == "stored"


def test_a_stored_value_that_no_longer_validates_leaves_the_files(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = merged(CONFIG, {"budget.daily_usd": -1, "routing.block": "big"})
    assert settings.budget.daily_usd == 5.0 and settings.block == ("big",)
    assert sources(settings)["budget.daily_usd"] == "file"
    assert "ignoring the stored budget.daily_usd" in caplog.text


def test_model_names_are_stored_as_ids_once_each() -> None:
    assert checked("routing.allow", ["tiny", "small", "big"], CATALOG) == ["small", "big"]


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("routing.block", ["bigg"], "no model named 'bigg'; did you mean 'big'? (models: big,"),
        ("routing.allow", "big", "expected a list of model names, got a string"),
        ("budget.daily_usd", -0.01, "must be a finite number >= 0"),
        ("budget.weekly_usd", float("inf"), "must be a finite number >= 0"),
        ("budget.monthly_usd", float("nan"), "must be a finite number >= 0"),
        ("budget.monthly_usd", True, "expected a number of USD, got a boolean"),
        ("budget.daily_usd", "5", "expected a number of USD, got a string"),
        ("budget.task_daily_usd", {"dance": 1}, "unknown task type 'dance'"),
        ("budget.task_daily_usd", {"code": -2}, "budget.task_daily_usd.code: must be"),
        ("budget.daily", 1, "unknown setting 'budget.daily'; did you mean 'budget.daily_usd'?"),
    ],
)
def test_bad_values_are_refused_with_the_reason(key: str, value: Any, says: str) -> None:
    with pytest.raises(InvalidSetting) as err:
        checked(key, value, CATALOG)
    assert says in str(err.value)


def test_every_key_round_trips_through_its_check() -> None:
    values = live_values(merged(CONFIG))
    assert list(values) == list(LIVE_KEYS)
    for key, value in values.items():
        assert checked(key, value, CATALOG) == value


def test_budgets_in_force_over_a_newer_file_keep_only_the_stored_values() -> None:
    settings = merged(CONFIG, {"budget.weekly_usd": 9.0})  # merged over the old file
    newer = CONFIG.budget.model_copy(update={"daily_usd": 7.0})
    in_force = budget_in_force(newer, settings)
    assert (in_force.daily_usd, in_force.weekly_usd) == (7.0, 9.0)
    assert budget_in_force(newer, merged(CONFIG)) is newer  # nothing stored: the file's
