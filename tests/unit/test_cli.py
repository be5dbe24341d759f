"""The offline CLI: route, profile, override and models, against a config file and its store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from llmswitch.cli import build_parser, main
from llmswitch.config import RuleConfig
from llmswitch.store.db import open_db
from llmswitch.store.settings import get_setting, save_rule

CONFIG = """
[store]
path = "{db}"

[routing]
metered_cloud = ["math"]

[[backends]]
name = "laptop"
base_url = "http://127.0.0.1:11434/v1"
locality = "local"

[[backends]]
name = "cloud"
base_url = "https://api.example.com/v1"
locality = "cloud"
api_key_env = "CLOUD_KEY"

[[models]]
id = "tiny"
backend = "laptop"
quality = 20
aliases = ["small"]

[[models]]
id = "coder"
backend = "laptop"
quality = 60
upstream = "qwen2.5-coder:14b"

[[models]]
id = "opus"
backend = "cloud"
quality = 95
cost_input_per_mtok = 15.0
cost_output_per_mtok = 75.0
context_window = 200000
"""

PROOF = (
    "Prove that there are infinitely many prime numbers. Show each step of the proof "
    "rigorously, and explain why the argument by contradiction works."
)
CODE = "Write a python function that reverses a linked list"
TCP = "What does TCP stand for?"


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    path = tmp_path / "llmswitch.toml"
    path.write_text(CONFIG.format(db=(tmp_path / "store.db").as_posix()), encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)


def stored(cfg: str, key: str) -> Any:
    db = str(Path(cfg).with_name("store.db"))

    async def read() -> Any:
        async with open_db(db) as conn:
            return await get_setting(conn, key)

    return trio.run(read)


# --- route -----------------------------------------------------------------------------------


def test_route_json_settles_a_greeting_by_rule(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, d = run_json(capsys, "route", "hello!", "--config", cfg)
    assert code == 0
    assert (d["tier"], d["rule"], d["model"], d["locality"]) == (
        "rules",
        "greeting",
        "tiny",
        "local",
    )
    assert d["classification"] is None
    assert d["candidates"][0] == {"model": "tiny", "backend": "laptop", "locality": "local"}


def test_route_source_header_picks_the_heartbeat_rule(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, d = run_json(capsys, "route", PROOF, "--source", "heartbeat", "--config", cfg)
    assert code == 0
    assert (d["tier"], d["rule"], d["model"]) == ("rules", "heartbeat", "tiny")


def test_route_a_proof_under_premium(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", PROOF, "--profile", "premium", "--config", cfg)
    assert code == 0
    fields = dict(line.split(None, 1) for line in out.split("\n\n")[0].splitlines())
    assert fields["model"] == "opus"
    assert (fields["backend"], fields["locality"]) == ("cloud", "cloud")
    assert (fields["tier"], fields["profile"]) == ("classifier", "premium")
    assert fields["classification"].startswith("reasoning math, confidence ")
    assert "sensitive: no" in fields["classification"]
    assert "quality floor 90" in fields["reason"]
    assert "candidates\n#  MODEL" in out
    assert "tiny   quality 20 < floor 90" in out  # the excluded table says why
    assert "offline: backend health" in out  # the footer: health is unknown here

    code, d = run_json(capsys, "route", PROOF, "--profile", "premium", "--config", cfg)
    assert code == 0
    assert (d["model"], d["profile"]) == ("opus", "premium")
    assert d["classification"]["complexity"] == "reasoning"
    assert {e["model"] for e in d["excluded"]} == {"tiny", "coder"}


def test_route_explicit_model_by_alias(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, d = run_json(capsys, "route", PROOF, "--model", "small", "--config", cfg)
    assert code == 0
    assert (d["tier"], d["model"], d["profile"]) == ("explicit", "tiny", None)


def test_route_refusals_exit_1(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "route", "hi", "--model", "gpt-9", "--config", cfg)
    assert (code, out) == (1, "")
    assert "no model named 'gpt-9'" in err
    code, d = run_json(capsys, "route", "hi", "--profile", "frugal", "--config", cfg)
    assert code == 1
    assert d["error"]["code"] == "profile_not_found"
    assert "frugal" in d["error"]["message"]

    async def add_rule() -> None:
        async with open_db(str(Path(cfg).with_name("store.db"))) as conn:
            rule = RuleConfig(name="no-cron", priority=1, source="cron", action="reject")
            await save_rule(conn, rule)

    trio.run(add_rule)
    code, d = run_json(capsys, "route", "hi", "--source", "cron", "--config", cfg)
    assert code == 1
    assert (d["error"]["code"], d["error"]["rule"]) == ("rejected_by_rule", "no-cron")
    code, _, err = run(capsys, "route", "hi", "--source", "cron", "--config", cfg)
    assert code == 1
    assert "rejected by rule no-cron" in err


def test_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.toml")
    for argv in (["route", "hi"], ["profile"], ["override"], ["models"]):
        code, out, err = run(capsys, *argv, "--config", missing)
        assert (code, out) == (2, "")
        assert "no such file" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('[[models]]\nid = "x"\nbackend = "nowhere"\n', encoding="utf-8")
    code, _, err = run(capsys, "models", "--config", str(bad))
    assert code == 2
    assert "no backend named 'nowhere'" in err


# --- profile -----------------------------------------------------------------------------------


def test_profile_set_survives_a_restart(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "profile", "--config", cfg)
    assert code == 0
    assert out.startswith("active profile: balanced")
    assert "premium" in out and "quality" in out  # every profile with its settings

    code, out, _ = run(capsys, "profile", "set", "eco", "--config", cfg)
    assert code == 0
    assert "eco" in out
    assert stored(cfg, "profile") == "eco"

    # A fresh main() reads the store again: the change survived the "restart".
    code, out, _ = run(capsys, "profile", "--config", cfg)
    assert code == 0
    assert out.startswith("active profile: eco (stored in ")
    assert "over routing.profile = 'balanced'" in out and "profile --clear" in out
    assert any(line.split()[:2] == ["*", "eco"] for line in out.splitlines())
    code, d = run_json(capsys, "profile", "--config", cfg)
    assert (d["active"], d["from"]) == ("eco", "stored")
    assert d["profiles"]["eco"]["max_cost_per_request"] == 0.01
    assert set(d["profiles"]) == {"eco", "balanced", "premium"}
    # ... and routing uses it.
    _, d = run_json(capsys, "route", CODE, "--config", cfg)
    assert d["profile"] == "eco"


def test_unknown_profile_exits_1(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "profile", "set", "frugal", "--config", cfg)
    assert (code, out) == (1, "")
    assert "no profile named 'frugal'" in err
    assert "eco, balanced, premium" in err
    assert stored(cfg, "profile") is None


# --- override ----------------------------------------------------------------------------------


def test_override_set_list_clear(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "override", "--config", cfg)
    assert (code, out.strip()) == (0, "no overrides")
    _, d = run_json(capsys, "route", TCP, "--config", cfg)
    assert (d["classification"]["task_type"], d["model"]) == ("analysis", "tiny")

    code, out, _ = run(capsys, "override", "code", "small", "--config", cfg)
    assert code == 0
    assert "code → tiny" in out  # the alias is stored as the model's id
    code, out, _ = run(capsys, "override", "analysis", "coder", "--config", cfg)
    assert code == 0
    assert stored(cfg, "overrides") == {"code": "tiny", "analysis": "coder"}

    code, out, _ = run(capsys, "override", "--config", cfg)
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows == [["code", "tiny", "stored"], ["analysis", "coder", "stored"]]
    code, d = run_json(capsys, "override", "--config", cfg)
    assert code == 0
    assert d["overrides"] == d["stored"] == {"code": "tiny", "analysis": "coder"}
    _, d = run_json(capsys, "route", TCP, "--config", cfg)
    assert d["model"] == "coder"
    assert "override analysis → coder" in d["reason"]

    code, out, _ = run(capsys, "override", "analysis", "--clear", "--config", cfg)
    assert code == 0
    assert "cleared" in out
    assert stored(cfg, "overrides") == {"code": "tiny"}
    code, out, _ = run(capsys, "override", "analysis", "--clear", "--config", cfg)
    assert (code, out.strip()) == (0, "no stored override for analysis")
    code, out, _ = run(capsys, "override", "--config", cfg)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["code"]
    _, d = run_json(capsys, "route", TCP, "--config", cfg)
    assert d["model"] == "tiny"


def test_override_refusals(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "override", "poetry", "tiny", "--config", cfg)
    assert code == 1
    assert "unknown task type 'poetry'" in err
    code, _, err = run(capsys, "override", "code", "gpt-9", "--config", cfg)
    assert code == 1
    assert "no model named 'gpt-9'" in err
    code, _, err = run(capsys, "override", "code", "--config", cfg)
    assert code == 2  # neither a model nor --clear
    assert stored(cfg, "overrides") is None


# --- setting ----------------------------------------------------------------------------------


def test_setting_stores_block_and_budgets_over_the_file_and_clears_back(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "setting", "routing.block", "small", "--config", cfg)
    assert (code, out.split("(")[0].strip()) == (0, "routing.block: tiny")  # stored as the id
    assert stored(cfg, "routing.block") == ["tiny"]
    _, d = run_json(capsys, "route", "hello!", "--config", cfg)
    assert d["model"] != "tiny" and "blocked by routing.block" in str(d["excluded"])
    run(capsys, "setting", "budget.daily_usd", "2.5", "--config", cfg)
    run(capsys, "setting", "budget.task_daily_usd", "code=1", "math=0.5", "--config", cfg)
    run(capsys, "setting", "budget.monthly_usd", "--none", "--config", cfg)
    code, out, _ = run(capsys, "setting", "--config", cfg)
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows["routing.block"] == ["tiny", "stored"]
    assert rows["routing.allow"] == ["(none)", "file"]
    assert rows["budget.daily_usd"] == ["2.5", "stored"]
    assert rows["budget.monthly_usd"] == ["no", "limit", "stored"]
    assert rows["budget.task_daily_usd"] == ["code=1,", "math=0.5", "stored"]

    code, out, _ = run(capsys, "setting", "routing.block", "--clear", "--config", cfg)
    assert code == 0 and "cleared" in out and stored(cfg, "routing.block") is None
    code, d = run_json(capsys, "setting", "budget.daily_usd", "--clear", "--config", cfg)
    assert d["settings"]["budget.daily_usd"] is None
    assert d["sources"]["budget.daily_usd"] == "file"
    assert d["sources"]["budget.monthly_usd"] == "stored"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["routing.allow", "gpt-9"], "no model named 'gpt-9'"),
        (["budget.daily_usd", "-1"], "must be a finite number >= 0"),
        (["budget.daily_usd", "nan"], "must be a finite number >= 0"),
        (["budget.daily_usd", "lots"], "'lots' is not a number"),
        (["budget.task_daily_usd", "poetry=1"], "unknown task type 'poetry'"),
        (["budget.task_daily_usd", "code"], "expected TASK=USD pairs"),
        (["budget.hourly_usd", "1"], "unknown setting 'budget.hourly_usd'"),
    ],
)
def test_setting_refuses_bad_values_and_stores_nothing(
    cfg: str, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, _, err = run(capsys, "setting", *argv, "--config", cfg)
    assert code == 1 and says in err
    assert stored(cfg, argv[0]) is None
    code, _, _ = run(capsys, "setting", "budget.daily_usd", "--config", cfg)
    assert code == 2  # neither a value, --none nor --clear


# --- models ------------------------------------------------------------------------------------


def test_models_table_and_backend_filter(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "--config", cfg)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "BACKEND", "LOCALITY"]
    assert [line.split()[0] for line in lines[1:]] == ["tiny", "coder", "opus"]
    assert "qwen2.5-coder:14b" in out and "small" in out and "200000" in out

    code, out, _ = run(capsys, "models", "--backend", "cloud", "--config", cfg)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["opus"]
    assert "75" in out

    code, rows = run_json(capsys, "models", "--backend", "laptop", "--config", cfg)
    assert code == 0
    assert [r["id"] for r in rows] == ["tiny", "coder"]
    assert rows[0]["aliases"] == ["small"] and rows[1]["upstream"] == "qwen2.5-coder:14b"
    _, rows = run_json(capsys, "models", "--config", cfg)
    opus = rows[2]
    assert (opus["locality"], opus["cost_output_per_mtok"], opus["enabled"]) == ("cloud", 75, True)

    code, _, err = run(capsys, "models", "--backend", "nowhere", "--config", cfg)
    assert code == 1
    assert "no backend named 'nowhere'" in err


# --- the first five minutes ------------------------------------------------------------------


def test_profile_clear_goes_back_to_the_config(
    cfg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "profile", "set", "premium", "--config", cfg)
    code, out, _ = run(capsys, "profile", "--clear", "--config", cfg)
    assert (code, out.split("(")[0]) == (0, "active profile: balanced ")
    assert stored(cfg, "profile") is None
    code, out, _ = run(capsys, "profile", "--config", cfg)
    assert out.startswith("active profile: balanced (routing.profile in the config file)")
    code, out, _ = run(capsys, "profile", "--clear", "--config", cfg)
    assert (code, out.split(";")[0]) == (0, "no stored profile")
    assert run(capsys, "profile", "set", "eco", "--clear", "--config", cfg)[0] == 2


def test_override_clear_all(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "override", "code", "coder", "--config", cfg)
    run(capsys, "override", "math", "tiny", "--config", cfg)
    code, out, _ = run(capsys, "override", "--clear-all", "--config", cfg)
    assert (code, out.split(";")[0]) == (0, "stored overrides cleared")
    assert stored(cfg, "overrides") is None
    code, out, _ = run(capsys, "override", "--config", cfg)
    assert out.strip() == "no overrides"
    assert run(capsys, "override", "code", "--clear-all", "--config", cfg)[0] == 2


def test_reading_commands_never_create_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "llmswitch.toml").write_text(
        CONFIG.replace('path = "{db}"', 'path = "llmswitch.db"'), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    for argv in (["profile"], ["override"], ["route", "hi"], ["keys", "list"], ["models"]):
        code, _, err = run(capsys, *argv, "--config", "sub/llmswitch.toml")
        assert code == 0, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["llmswitch.toml", "sub"]
    # A write goes beside the config file, whatever the working directory.
    assert run(capsys, "profile", "set", "eco", "--config", "sub/llmswitch.toml")[0] == 0
    assert (sub / "llmswitch.db").exists() and not (tmp_path / "llmswitch.db").exists()


def test_a_corrupt_database_is_one_line(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    Path(cfg).with_name("store.db").write_bytes(b"SQLite? no. " * 100)
    for argv in (["profile"], ["override"], ["keys", "list"], ["profile", "set", "eco"]):
        code, out, err = run(capsys, *argv, "--config", cfg)
        assert (code, out) == (3, "")
        assert err.startswith("llmswitch: store: ") and err.count("\n") == 1
        assert "not a usable SQLite database" in err


def test_models_write_needs_discover(cfg: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "--write", "--config", cfg)
    assert (code, out) == (2, "")
    assert "--write goes with --discover" in err


def test_init_makes_missing_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "dir" / "x.toml"
    code, out, _ = run(capsys, "init", str(target))
    assert code == 0 and target.exists()
    assert f"llmswitch serve --config {target}" in out


def test_bare_command_prints_help_and_version_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 0 and "start here:" in out and "exit codes:" in out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("llmswitch ")


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        texts += [p.format_help() for p in getattr(action, "choices", {}).values()]
    assert len(texts) > 5
    assert not any("``" in text or ":func:" in text for text in texts)
