"""The config contract: the starter config is valid, and errors name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch.cli import main
from llmswitch.config import ConfigError, load_config, parse_config


def test_init_writes_a_starter_config_that_loads(tmp_path: Path) -> None:
    path = tmp_path / "llmswitch.toml"
    assert main(["init", str(path)]) == 0
    config = load_config(path)
    assert config.backends[0].kind == "ollama"
    assert [m.id for m in config.models] == ["qwen-small", "qwen-coder"]
    assert main(["init", str(path)]) == 1  # never overwrites without --force


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nport = "eighty"\n[[backends]]\nname = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text
    assert "server.port" in text
    assert "backends.0.base_url" in text


def test_models_must_name_a_known_backend(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[models]]\nid = "m"\nbackend = "nowhere"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="no backend named 'nowhere'"):
        load_config(path)


def test_unknown_keys_are_rejected_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nprot = 8080\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.prot"):
        load_config(path)


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="llmswitch init"):
        load_config(tmp_path / "absent.toml")


def test_a_probe_timeout_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[breaker]\nprobe_timeout_s = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"breaker\.probe_timeout_s"):
        load_config(path)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"clients": [{"name": "a"}]}, "clients.a: give exactly one of key_env or key_sha256"),
        (
            {"clients": [{"name": "a", "key_env": "A", "key_sha256": "0" * 64}]},
            "give exactly one of key_env or key_sha256",
        ),
        ({"clients": [{"name": "a", "key_sha256": "secret"}]}, "clients.0.key_sha256"),
        (
            {"clients": [{"name": "a", "key_env": "A", "force_profile": "nope"}]},
            "clients.a: no profile named 'nope'",
        ),
        (
            {"clients": [{"name": "a", "key_env": "A", "metered_cloud": ["poetry"]}]},
            "unknown task type 'poetry'",
        ),
        (
            {"clients": [{"name": "a", "key_env": "A"}, {"name": "a", "key_env": "B"}]},
            "clients: names must be unique",
        ),
        ({"budget": {"alert_at": [0.5, 1.5]}}, "budget.alert_at: 1.5 is not in (0, 1]"),
        ({"budget": {"webhook_url": "ftp://x"}}, "budget.webhook_url: must be an http"),
        ({"budget": {"task_daily_usd": {"poetry": 1.0}}}, "task_daily_usd.poetry: unknown"),
        ({"budget": {"weekly_usd": -1}}, "budget.weekly_usd"),
        ({"routing": {"exhaustion_retry_after_s": -1}}, "routing.exhaustion_retry_after_s"),
        ({"server": {"allowed_hosts": "localhost"}}, "server.allowed_hosts"),
    ],
)
def test_access_and_budget_knobs_are_refused_naming_the_key(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="test.toml")
    assert message in str(err.value)
