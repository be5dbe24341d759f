"""The built-in catalogue: a catalogued cloud model needs two lines; the config always wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmswitch.config import TASK_TYPES, StoreConfig, load_config, parse_config
from llmswitch.providers.catalogue import Entry, builtin, capabilities
from llmswitch.store.catalogue import read_overlay, save_overlay
from llmswitch.store.connect import open_store
from llmswitch.store.db import open_db


def config_with(*models: dict[str, Any], **extra: Any) -> dict[str, Any]:
    backends = [
        {"name": "oa", "preset": "openai"},
        {"name": "router", "preset": "openrouter"},
        {"name": "box", "preset": "ollama"},
    ]
    return {"backends": backends, "models": list(models), **extra}


def test_the_builtin_catalogue_lists_well_known_models_with_every_fact_and_a_source() -> None:
    entries = builtin().entries
    assert len(entries) >= 30
    assert {e.provider for e in entries.values()} >= {
        "openai", "anthropic", "google", "deepseek", "mistral", "groq", "openrouter"
    }  # fmt: skip
    for name, e in entries.items():
        assert None not in (
            e.context_window, e.max_output_tokens, e.input_per_mtok, e.output_per_mtok,
            e.features, e.quality,
        ), name  # fmt: skip
        assert e.quality_source, name
    names = [*entries, *(a for e in entries.values() for a in e.aliases)]
    assert len(names) == len(set(names)), "an alias names two entries"


def test_two_lines_serve_a_catalogued_cloud_model() -> None:
    config = parse_config(config_with({"id": "gpt-4o-mini", "backend": "oa"}))
    m = config.models[0]
    known = builtin().entries["gpt-4o-mini"]
    assert (m.context_window, m.max_output_tokens) == (
        known.context_window, known.max_output_tokens
    )  # fmt: skip
    assert (m.cost_input_per_mtok, m.cost_output_per_mtok) == (
        known.input_per_mtok, known.output_per_mtok
    )  # fmt: skip
    assert m.quality == known.quality
    assert m.priced


def test_anything_set_in_the_config_wins() -> None:
    model = {"id": "4o", "upstream": "gpt-4o", "backend": "oa", "quality": 12}
    m = parse_config(config_with(model | {"cost_input_per_mtok": 9.0})).models[0]
    assert (m.quality, m.cost_input_per_mtok) == (12, 9.0)
    assert m.cost_output_per_mtok == builtin().entries["gpt-4o"].output_per_mtok


def test_an_alias_or_an_openrouter_style_upstream_finds_its_entry() -> None:
    config = parse_config(
        config_with(
            {"id": "sonnet", "upstream": "anthropic/claude-sonnet-4.5", "backend": "router"},
            {"id": "claude-sonnet-4-5-20250929", "backend": "oa"},
        )
    )
    expected = builtin().entries["claude-sonnet-4-5"].quality
    assert [m.quality for m in config.models] == [expected, expected]


def test_a_model_on_a_local_backend_or_not_catalogued_keeps_the_defaults() -> None:
    config = parse_config(
        config_with({"id": "gpt-4o", "backend": "box"}, {"id": "my-own", "backend": "oa"})
    )
    for m in config.models:
        assert (m.quality, m.context_window, m.priced) == (50, 8192, False)


def test_a_missing_feature_rules_out_the_task_type_that_needs_it() -> None:
    assert capabilities(["tools", "vision", "json"], TASK_TYPES) == []
    without = capabilities(["json"], TASK_TYPES)
    assert "vision" not in without and "tool-use" not in without and "code" in without
    m = parse_config(config_with({"id": "deepseek-reasoner", "backend": "oa"})).models[0]
    assert not m.can("tool-use") and m.can("math")


def test_the_overlay_wins_over_the_builtin_and_the_config_over_both() -> None:
    overlay = {
        "gpt-4o": Entry(input_per_mtok=7.0),
        "openai/gpt-4o-mini": Entry(output_per_mtok=0.9),  # an alias: the entry's id
        "brand-new": Entry(input_per_mtok=1.0, output_per_mtok=2.0, context_window=64000),
    }
    catalogue = builtin().with_overlay(overlay)
    models: list[dict[str, Any]] = [
        {"id": "gpt-4o", "backend": "oa"},
        {"id": "gpt-4o-mini", "backend": "oa", "cost_input_per_mtok": 3.0},
        {"id": "brand-new", "backend": "oa"},
    ]
    a, b, c = parse_config(config_with(*models), catalogue=catalogue).models
    assert (a.cost_input_per_mtok, a.quality) == (7.0, builtin().entries["gpt-4o"].quality)
    assert (b.cost_input_per_mtok, b.cost_output_per_mtok) == (3.0, 0.9)
    assert (c.cost_output_per_mtok, c.context_window, c.quality) == (2.0, 64000, 50)


def test_reading_the_overlay_never_creates_a_database(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    assert read_overlay(str(path)) == {}
    assert not path.exists()


async def test_load_config_applies_the_overlay_stored_beside_it(tmp_path: Path) -> None:
    db_path = tmp_path / "store.db"
    config = tmp_path / "llmswitch.toml"
    config.write_text(
        f'[store]\npath = "{db_path}"\n'
        '[[backends]]\nname = "oa"\npreset = "openai"\n'
        '[[models]]\nid = "gpt-4o"\nbackend = "oa"\n',
        encoding="utf-8",
    )
    assert load_config(config).models[0].cost_input_per_mtok == 2.5
    async with open_db(str(db_path)) as db:
        await save_overlay(db, {"gpt-4o": Entry(input_per_mtok=2.75)}, "test")
    assert load_config(config).models[0].cost_input_per_mtok == 2.75


async def test_load_config_applies_the_overlay_stored_in_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    config = tmp_path / "llmswitch.toml"
    config.write_text(
        f'[store]\nurl = "{pg_url}"\n'
        '[[backends]]\nname = "oa"\npreset = "openai"\n'
        '[[models]]\nid = "gpt-4o"\nbackend = "oa"\n',
        encoding="utf-8",
    )
    assert load_config(config).models[0].cost_input_per_mtok == 2.5  # no tables yet
    async with open_store(StoreConfig(url=pg_url)) as db:
        await save_overlay(db, {"gpt-4o": Entry(input_per_mtok=2.75)}, "test")
    assert load_config(config).models[0].cost_input_per_mtok == 2.75
