"""``llmswitch openclaw-config``: OpenClaw's provider block from the config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_cli import CONFIG, run

#: The keys OpenClaw 2026.9.6 accepts (its custom-provider reference; `openclaw config
#: validate` refuses any other: "Unrecognized key").
PROVIDER_KEYS = {"baseUrl", "apiKey", "api", "models"}
MODEL_KEYS = {"id", "name", "reasoning", "input", "cost", "contextWindow", "maxTokens"}
COST_KEYS = {"input", "output", "cacheRead", "cacheWrite"}


def write(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "llmswitch.toml"
    db = (tmp_path / "store.db").as_posix()
    path.write_text(extra + CONFIG.format(db=db), encoding="utf-8")
    return str(path)


def printed(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, _ = run(capsys, "openclaw-config", *argv)
    assert code == 0
    return json.loads(out)


def test_the_fragment_names_the_provider_and_auto_as_primary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path, '[server]\nhost = "0.0.0.0"\nport = 9000\n')
    out = printed(capsys, "--config", cfg)
    assert out["agents"]["defaults"]["model"]["primary"] == "llmswitch/auto"
    assert out["models"]["mode"] == "merge"
    provider = out["models"]["providers"]["llmswitch"]
    assert set(provider) == PROVIDER_KEYS
    # A wildcard bind is not an address to dial: this host's loopback instead.
    assert provider["baseUrl"] == "http://127.0.0.1:9000/v1"
    assert provider["api"] == "openai-completions"
    assert provider["apiKey"] == "llmswitch-no-key"


def test_each_model_with_its_window_output_cap_and_price_per_million(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = printed(capsys, "--config", write(tmp_path), "--provider-only")
    rows = {m["id"]: m for m in out["models"]}
    assert list(rows) == ["auto", "tiny", "coder", "opus"]
    for row in rows.values():
        assert set(row) == MODEL_KEYS and set(row["cost"]) == COST_KEYS
        assert row["input"] == ["text"]
    opus = rows["opus"]
    assert opus["cost"] == {"input": 15.0, "output": 75.0, "cacheRead": 0, "cacheWrite": 0}
    assert (opus["contextWindow"], opus["maxTokens"]) == (200000, 8192)
    assert (rows["tiny"]["contextWindow"], rows["tiny"]["maxTokens"]) == (8192, 8192)
    # auto may pick any of them: the largest window, and the highest price as a ceiling.
    assert rows["auto"]["contextWindow"] == 200000
    assert rows["auto"]["cost"]["output"] == 75.0


def test_client_keys_are_referenced_by_variable_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = '[[clients]]\nname = "claw"\nkey_env = "CLAW_KEY"\n'
    cfg = write(tmp_path, clients)
    out = printed(capsys, "--config", cfg, "--provider-only", "--api-key-env", "CLAW_KEY")
    assert out["apiKey"] == "${CLAW_KEY}"
    url = printed(capsys, "--config", cfg, "--provider-only", "--base-url", "http://gw:1/v1")
    assert url["baseUrl"] == "http://gw:1/v1"


def test_a_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[routing]\naffinity_max = -1\n", encoding="utf-8")
    code, out, err = run(capsys, "openclaw-config", "--config", str(path))
    assert (code, out) == (2, "")
    assert "routing.affinity_max" in err
