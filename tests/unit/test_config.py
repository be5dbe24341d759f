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
    assert "backends.x.base_url: required but missing" in text  # named by name, not index


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
        ({"clients": [{"name": "a", "key_sha256": "secret"}]}, "clients.a.key_sha256"),
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
        ({"budget": {"webhook_url": "ftp://x"}}, "the scheme must be http:// or https://"),
        ({"budget": {"task_daily_usd": {"poetry": 1.0}}}, "task_daily_usd.poetry: unknown"),
        ({"budget": {"weekly_usd": -1}}, "budget.weekly_usd"),
        ({"routing": {"exhaustion_retry_after_s": -1}}, "routing.exhaustion_retry_after_s"),
        ({"routing": {"affinity_ttl_s": 0}}, "routing.affinity_ttl_s"),
        ({"routing": {"affinity_max": -1}}, "routing.affinity_max"),
        ({"routing": {"affinity_max": 10**7}}, "routing.affinity_max"),
        ({"server": {"allowed_hosts": "localhost"}}, "server.allowed_hosts"),
        ({"server": {"max_connections": 0}}, "server.max_connections"),
        ({"server": {"send_timeout_s": 0}}, "server.send_timeout_s"),
    ],
)
def test_access_and_budget_knobs_are_refused_naming_the_key(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="test.toml")
    assert message in str(err.value)


LOCAL = {"name": "laptop", "base_url": "http://127.0.0.1:11434/v1"}


def refusal(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="x.toml")
    return str(err.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"health": {"intervl_s": 5}}, "health.intervl_s: unknown key; did you mean 'interval_s'?"),
        ({"profiles": {"mine": {"qualty_tolerance": 1}}}, "did you mean 'quality_tolerance'?"),
        ({"backends": [{**LOCAL, "localty": "lan"}]}, "backends.laptop.localty: unknown key"),
        ({"sevrer": {}}, "sevrer: unknown key; did you mean 'server'?"),
        ({"zzz": 1}, "zzz: unknown key; valid: backends, breaker, budget,"),
    ],
)
def test_unknown_keys_get_the_closest_known_one(data: dict[str, object], message: str) -> None:
    assert message in refusal(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"routing": {"metered_cloud": ["coding"]}},
            "routing.metered_cloud: unknown task type 'coding'; did you mean 'code'? valid: code,"
            " analysis, creative, math, conversation, vision, tool-use",
        ),
        ({"overrides": {"maths": "m"}}, "overrides.maths: unknown task type 'maths'; did you"),
        (
            {
                "backends": [LOCAL],
                "models": [{"id": "m", "backend": "laptop", "capabilities": ["tool"]}],
            },
            "models.m.capabilities: unknown task type 'tool'; did you mean 'tool-use'?",
        ),
        ({"budget": {"task_daily_usd": {"vison": 1.0}}}, "did you mean 'vision'?"),
        ({"clients": [{"name": "a", "key_env": "A", "metered_cloud": ["mth"]}]}, "'math'?"),
    ],
)
def test_task_type_names_are_checked_everywhere(data: dict[str, object], message: str) -> None:
    assert message in refusal(data)


def test_metered_cloud_takes_a_star_and_real_task_types() -> None:
    config = parse_config({"routing": {"metered_cloud": ["*", "code"]}})
    assert config.routing.metered_cloud == ("*", "code")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:11434/v1", "has no scheme; write 'http://127.0.0.1:11434/v1'"),
        ("localhost:8000", "has no scheme"),
        ("ftp://box/v1", "the scheme must be http:// or https://"),
        ("http://", "has no host"),
    ],
)
def test_a_base_url_needs_a_scheme(url: str, message: str) -> None:
    text = refusal({"backends": [{"name": "box", "base_url": url}]})
    assert f"backends.box.base_url: '{url}" in text
    assert message in text


def test_errors_name_models_and_backends_by_id_without_jargon() -> None:
    text = refusal(
        {
            "backends": [LOCAL, {"name": "gpu", "base_url": "http://gpu:8000/v1", "rpm": -1}],
            "models": [
                {"id": "ok", "backend": "laptop"},
                {"id": "qwen-small", "backend": "laptop", "quality": 200},
            ],
        }
    )
    assert "models.qwen-small.quality" in text
    assert "backends.gpu.rpm" in text
    assert "models.1" not in text and "backends.1" not in text
    assert "2 errors" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"backends": [LOCAL], "models": [{"id": "m", "backend": "laptp"}]},
            "models.m.backend: no backend named 'laptp'; did you mean 'laptop'? (backends: laptop)",
        ),
        (
            {
                "backends": [LOCAL],
                "models": [{"id": "m", "backend": "laptop"}],
                "routing": {"fallback_model": "n"},
            },
            "routing.fallback_model: no model named 'n' (models: m)",
        ),
        ({"routing": {"profile": "ecco"}}, "routing.profile: no profile named 'ecco'; did you"),
    ],
)
def test_check_errors_read_as_sentences(data: dict[str, object], message: str) -> None:
    text = refusal(data)
    assert message in text
    assert "Value error" not in text and "(top level)" not in text


def test_fallback_model_is_best_local_by_default_and_takes_none_or_a_model() -> None:
    assert parse_config({}).routing.fallback_model == "best-local"
    assert parse_config({"routing": {"fallback_model": "none"}}).routing.fallback_model == "none"
    one = {"backends": [LOCAL], "models": [{"id": "m", "backend": "laptop"}]}
    assert parse_config({**one, "routing": {"fallback_model": "m"}}).routing.fallback_model == "m"


def test_a_config_file_with_no_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("[server]\nport = 8081\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"no \[\[models\]\]"):
        load_config(path)


def test_a_relative_store_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    body = '[[backends]]\nname = "b"\nbase_url = "http://127.0.0.1:1/v1"\n'
    body += '[[models]]\nid = "m"\nbackend = "b"\n'
    (sub / "rel.toml").write_text(f'[store]\npath = "data/x.db"\n{body}', encoding="utf-8")
    assert load_config(sub / "rel.toml").store.path == str(sub / "data" / "x.db")
    (sub / "abs.toml").write_text(f'[store]\npath = "/var/x.db"\n{body}', encoding="utf-8")
    assert load_config(sub / "abs.toml").store.path == "/var/x.db"
    (sub / "default.toml").write_text(body, encoding="utf-8")
    assert load_config(sub / "default.toml").store.path == str(sub / "llmswitch.db")


MINIMAL = (
    '[[backends]]\nname = "b"\nbase_url = "http://127.0.0.1:1"\n'
    '[[models]]\nid = "m"\nbackend = "b"\n'
)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('[cluster]\nredis_url = "http://u:sekrit@h"\n', "cluster.redis_url: must be a URL"),
        ("[server]\nworkers = 2\n", "server.workers = 2 needs cluster.redis_url"),
        ('[store]\nurl = "mysql://u:sekrit@h/db"\n', "store.url: must be a URL starting with"),
        ("[cluster]\noffline_budget_fraction = 1.5\n", "cluster.offline_budget_fraction"),
    ],
)
def test_fleet_settings_are_checked_without_quoting_secrets(
    tmp_path: Path, section: str, expected: str
) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(section + MINIMAL, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert "sekrit" not in str(err.value)


def test_workers_with_redis_load(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[server]\nworkers = 4\n[cluster]\nredis_url = "redis://127.0.0.1:6379/0"\n'
        '[store]\nurl = "postgresql://127.0.0.1/llmswitch"\n' + MINIMAL,
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.server.workers == 4
    assert config.cluster.prefix == "llmswitch"
    assert config.store.url == "postgresql://127.0.0.1/llmswitch"
