"""The reload's diff: what a new config changes, and what waits for a restart (pure)."""

from __future__ import annotations

from typing import Any

from llmswitch.confdiff import Entries, applicable, diff
from llmswitch.config import Config, parse_config


def config(**sections: Any) -> Config:
    data: dict[str, Any] = {
        "backends": [
            {"name": "box", "base_url": "http://127.0.0.1:11434/v1"},
            {"name": "lan", "base_url": "http://10.0.0.2:8000/v1", "locality": "lan"},
        ],
        "models": [
            {"id": "small", "backend": "box", "quality": 20},
            {"id": "coder", "backend": "lan", "quality": 60},
        ],
    }
    return parse_config(data | sections)


def test_the_same_config_changes_nothing() -> None:
    change = diff(config(), config())
    assert change.empty
    assert not change.backends and not change.models and not change.clients


def test_a_budget_and_a_profile_apply_without_a_restart() -> None:
    new = config(budget={"daily_usd": 1.0}, profiles={"cheap": {"quality_tolerance": 20}})
    change = diff(config(), new)
    assert change.applied == ("budget", "profiles")
    assert change.needs_restart == ()


def test_named_entries_are_told_apart_as_added_removed_and_changed() -> None:
    old = config()
    new = config(
        backends=[
            {"name": "box", "base_url": "http://127.0.0.1:11435/v1"},
            {"name": "cloud", "base_url": "https://api.example.com/v1", "locality": "cloud"},
        ],
        models=[
            {"id": "small", "backend": "box", "quality": 20},
            {"id": "big", "backend": "cloud", "quality": 90},
        ],
    )
    change = diff(old, new)
    assert change.backends == Entries(added=("cloud",), removed=("lan",), changed=("box",))
    assert change.models == Entries(added=("big",), removed=("coder",))
    assert "backends: +cloud -lan ~box" in change.applied
    assert "models: +big -coder" in change.applied


def test_a_client_key_added_is_an_entry_of_clients() -> None:
    key = {"name": "ide", "key_sha256": "ab" * 32}
    change = diff(config(), config(clients=[key]))
    assert change.clients == Entries(added=("ide",))
    assert change.applied == ("clients: +ide",)


def test_bind_and_store_settings_need_a_restart_and_the_rest_of_their_section_applies() -> None:
    old = config()
    new = config(
        server={"port": 9090, "max_in_flight": 10},
        store={"path": "other.db", "retain_days": 30},
    )
    change = diff(old, new)
    assert change.needs_restart == (
        "server.port: 8080 -> 9090",
        "store.path: 'llmswitch.db' -> 'other.db'",
    )
    assert change.applied == ("server.max_in_flight", "store.retain_days")


def test_the_config_applied_keeps_the_running_bind_and_store_and_takes_the_rest() -> None:
    old = config()
    new = config(
        server={"host": "0.0.0.0", "port": 9090, "admin_token_env": "TOKEN", "max_in_flight": 10},
        store={"path": "other.db", "retain_days": 30},
        budget={"daily_usd": 2.0},
    )
    applied = applicable(old, new)
    assert (applied.server.host, applied.server.port) == ("127.0.0.1", 8080)
    assert applied.server.admin_token_env == "TOKEN"
    assert applied.server.max_in_flight == 10
    assert applied.store.path == "llmswitch.db"
    assert applied.store.retain_days == 30
    assert applied.budget.daily_usd == 2.0
    assert diff(old, applied).needs_restart == ()


def test_the_log_format_needs_a_restart_and_request_lines_do_not() -> None:
    change = diff(config(), config(log={"format": "json", "requests": False}))
    assert change.needs_restart == ("log.format: 'logfmt' -> 'json'",)
    assert change.applied == ("log.requests",)


def test_a_restart_only_change_applies_nothing() -> None:
    change = diff(config(), config(server={"grace_s": 5}))
    assert change.applied == ()
    assert change.needs_restart == ("server.grace_s: 30.0 -> 5.0",)
    assert not change.empty


def test_a_new_store_url_needs_a_restart_and_is_reported_without_its_password() -> None:
    old = config(store={"url": "postgresql://llm:old-secret@db1/llm"})
    change = diff(old, config(store={"url": "postgresql://llm:new-secret@db2/llm"}))
    assert change.needs_restart == (
        "store.url: 'postgresql://***@db1/llm' -> 'postgresql://***@db2/llm'",
    )


def test_the_cluster_settings_need_a_restart_and_the_redis_password_is_not_shown() -> None:
    old = config(cluster={"redis_url": "redis://:old-secret@r1:6379/0"})
    new = config(cluster={"redis_url": "redis://:new-secret@r2:6379/0", "prefix": "b"})
    change = diff(old, new)
    assert change.needs_restart == (
        "cluster.redis_url: 'redis://***@r1:6379/0' -> 'redis://***@r2:6379/0'",
        "cluster.prefix: 'llmswitch' -> 'b'",
    )
    assert applicable(old, new).cluster == old.cluster
