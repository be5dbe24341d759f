"""Routing settings in the store: rules and keyed JSON values, versioned for polling."""

from __future__ import annotations

import json
import logging
import time

import pytest

from llmswitch.config import RuleConfig
from llmswitch.store.settings import (
    delete_rule,
    get_setting,
    load_rules,
    save_rule,
    set_setting,
    settings_version,
)
from tests.store.conftest import OpenStore, columns, write

VIP = RuleConfig(name="vip", priority=1, channel="vip", action="route", target="big")
QUIET = RuleConfig(name="quiet", priority=45, pattern=r"\bshh\b", action="route_self")


async def test_tables_exist_with_the_expected_columns(store: OpenStore) -> None:
    async with store() as db:
        for table, expected in (
            ("router_rules", ["name", "rule", "updated_at"]),
            ("router_settings", ["key", "value", "updated_at"]),
        ):
            assert await columns(db, table) == expected


async def test_rules_round_trip_and_delete(store: OpenStore) -> None:
    async with store() as db:
        assert await load_rules(db) == []
        await save_rule(db, VIP)
        await save_rule(db, QUIET)
        assert await load_rules(db) == [QUIET, VIP]  # by name
        assert await delete_rule(db, "vip") is True
        assert await delete_rule(db, "vip") is False
        assert await delete_rule(db, "never-stored") is False
        assert await load_rules(db) == [QUIET]


async def test_save_rule_upserts(store: OpenStore) -> None:
    async with store() as db:
        await save_rule(db, QUIET)
        louder = QUIET.model_copy(update={"priority": 5, "enabled": False})
        await save_rule(db, louder)
        assert await load_rules(db) == [louder]
        rows = await db.fetchall("SELECT name FROM router_rules")
        assert rows == [("quiet",)]


async def test_rule_is_stored_as_json(store: OpenStore) -> None:
    async with store() as db:
        await save_rule(db, VIP)
        row = await db.fetchone("SELECT rule FROM router_rules WHERE name = 'vip'")
    assert row is not None
    assert json.loads(row[0])["target"] == "big"


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '"a string"',
        json.dumps({"action": "teleport"}),  # no longer a valid action
        json.dumps({"action": "route"}),  # route without a target
        json.dumps({"pattern": "(unclosed"}),
        json.dumps({"pattern": r"(a)\1"}),  # a back-reference: RE2 cannot run it linearly
        json.dumps({"pattern": "a" * 5000}),  # longer than a pattern may be
        json.dumps({"from_the_future": 1}),
    ],
)
async def test_invalid_stored_rule_is_skipped_with_a_warning(
    text: str, caplog: pytest.LogCaptureFixture, store: OpenStore
) -> None:
    async with store() as db:
        await save_rule(db, VIP)
        await write(
            db,
            "INSERT INTO router_rules (name, rule, updated_at) VALUES ('broken', ?, 1.0)",
            (text,),
        )
        with caplog.at_level(logging.WARNING, logger="llmswitch.store.settings"):
            assert await load_rules(db) == [VIP]
    assert any("broken" in r.getMessage() for r in caplog.records)


async def test_stored_rule_whose_name_is_not_a_token_is_skipped(
    caplog: pytest.LogCaptureFixture, store: OpenStore
) -> None:
    async with store() as db:
        await write(
            db,
            "INSERT INTO router_rules (name, rule, updated_at) VALUES (?, '{}', 1.0)",
            ("evil\r\nX-Injected: 1",),
        )
        with caplog.at_level(logging.WARNING, logger="llmswitch.store.settings"):
            assert await load_rules(db) == []
    assert any("skipping stored rule" in r.getMessage() for r in caplog.records)


async def test_row_name_is_the_rules_identity(store: OpenStore) -> None:
    async with store() as db:
        await write(
            db,
            "INSERT INTO router_rules (name, rule, updated_at) VALUES ('real', ?, 1.0)",
            (json.dumps({"name": "other", "priority": 3}),),
        )
        assert await load_rules(db) == [RuleConfig(name="real", priority=3)]


@pytest.mark.parametrize(
    "value",
    ["eco", 42, 1.5, True, ["a", "b"], {"profile": "eco", "nested": {"n": [1, None]}}, "日本"],
)
async def test_settings_round_trip_json_values(value: object, store: OpenStore) -> None:
    async with store() as db:
        await set_setting(db, "k", value)
        assert await get_setting(db, "k") == value


async def test_settings_missing_upsert_and_bad_values(store: OpenStore) -> None:
    async with store() as db:
        assert await get_setting(db, "profile") is None
        await set_setting(db, "profile", "eco")
        await set_setting(db, "profile", "premium")
        assert await get_setting(db, "profile") == "premium"
        assert await db.fetchall("SELECT key FROM router_settings") == [("profile",)]
        with pytest.raises(TypeError):
            await set_setting(db, "bad", object())
        with pytest.raises(ValueError):
            await set_setting(db, "bad", float("nan"))
        assert await get_setting(db, "bad") is None


async def test_corrupt_setting_reads_as_none(
    caplog: pytest.LogCaptureFixture, store: OpenStore
) -> None:
    async with store() as db:
        await write(
            db, "INSERT INTO router_settings (key, value, updated_at) VALUES ('x', '{oops', 1.0)"
        )
        with caplog.at_level(logging.WARNING, logger="llmswitch.store.settings"):
            assert await get_setting(db, "x") is None
    assert any("'x'" in r.getMessage() for r in caplog.records)


async def test_settings_version_moves_on_every_write(store: OpenStore) -> None:
    async with store() as db:
        assert await settings_version(db) == 0.0
        seen = [await settings_version(db)]
        # back-to-back writes land in the same clock tick often; each must still count
        for _ in range(3):
            await save_rule(db, VIP)
            seen.append(await settings_version(db))
            await set_setting(db, "profile", "eco")
            seen.append(await settings_version(db))
        assert await delete_rule(db, "vip")
        seen.append(await settings_version(db))  # a delete leaves no row, still counts
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
        # nothing deleted, nothing changed
        assert not await delete_rule(db, "vip")
        assert await settings_version(db) == seen[-1]


async def test_settings_version_is_wall_clock_time(store: OpenStore) -> None:
    before = time.time()
    async with store() as db:
        await set_setting(db, "k", 1)
        assert before <= await settings_version(db) <= time.time() + 1


async def test_settings_version_sees_rows_written_directly(store: OpenStore) -> None:
    async with store() as db:
        await set_setting(db, "k", 1)
        v = await settings_version(db)
        await write(
            db, "INSERT INTO router_rules (name, rule, updated_at) VALUES ('x', '{}', ?)", (v + 10,)
        )
        assert await settings_version(db) == v + 10
        await set_setting(db, "k", 2)  # the next stamp goes above it
        assert await settings_version(db) > v + 10


async def test_data_survives_reopening_the_store(store: OpenStore) -> None:
    async with store() as db:
        await save_rule(db, VIP)
        await save_rule(db, QUIET)
        await delete_rule(db, "quiet")
        await set_setting(db, "profile", {"name": "eco", "until": None})
        version = await settings_version(db)
    async with store() as db:
        assert await load_rules(db) == [VIP]
        assert await get_setting(db, "profile") == {"name": "eco", "until": None}
        assert await settings_version(db) == version


async def test_two_connections_see_each_others_changes(store: OpenStore) -> None:
    async with store() as gateway, store() as cli:
        v0 = await settings_version(gateway)
        await save_rule(cli, QUIET)
        assert await settings_version(gateway) > v0
        assert await load_rules(gateway) == [QUIET]
