"""`llmswitch check` against simulators and a refused port: a verdict and a hint for each."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from llmswitch.cli import main
from llmswitch.cli.check import Probe, Verdict, error_hint, status_hint, warnings
from llmswitch.config import BackendConfig, parse_config
from llmswitch.sim.backend import SimBackend
from llmswitch.sim.knobs import ModelKnobs
from llmswitch.sim.server import serve_sim
from tests.e2e.harness import closed_port

KEY_ENV = "LLMSWITCH_TEST_CHECK_KEY"


def write(tmp_path: Path, body: str) -> str:
    path = tmp_path / "llmswitch.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "db.sqlite"}"\n{body}', encoding="utf-8")
    return str(path)


async def check(capsys: pytest.CaptureFixture[str], config: str) -> tuple[int, Any]:
    code = await trio.to_thread.run_sync(main, ["check", "--config", config, "--json"])
    return code, json.loads(capsys.readouterr().out)


async def test_every_broken_backend_and_model_gets_its_hint(
    nursery: trio.Nursery,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    box = await nursery.start(serve_sim, SimBackend(["qwen2.5:1.5b"]))
    cloud = await nursery.start(serve_sim, SimBackend(["big"], api_key="sk-right"))
    refused = closed_port()
    config = write(
        tmp_path,
        f'[[backends]]\nname = "box"\nkind = "ollama"\nbase_url = "{box.openai_base_url}"\n'
        f'[[backends]]\nname = "gone"\nkind = "ollama"\n'
        f'base_url = "http://127.0.0.1:{refused}/v1"\n'
        f'[[backends]]\nname = "cloud"\nlocality = "cloud"\napi_key_env = "{KEY_ENV}"\n'
        f'base_url = "{cloud.openai_base_url}"\n'
        '[[models]]\nid = "qwen"\nbackend = "box"\nupstream = "qwen2.5:1.5b"\n'
        '[[models]]\nid = "llama3.2"\nbackend = "box"\n'
        '[[models]]\nid = "far"\nbackend = "gone"\n'
        '[[models]]\nid = "big"\nbackend = "cloud"\ncost_input_per_mtok = 1.0\n'
        '[[models]]\nid = "free"\nbackend = "cloud"\n'
        '[[models]]\nid = "off"\nbackend = "gone"\nenabled = false\n',
    )
    code, report = await check(capsys, config)
    assert code == 1
    backends = {b["backend"]: b for b in report["backends"]}
    assert backends["box"]["problem"] is None
    assert backends["gone"]["problem"].startswith("connection refused")
    assert backends["gone"]["hint"] == f"is Ollama running on 127.0.0.1:{refused}?"
    assert backends["cloud"]["problem"] == "HTTP 401"
    assert backends["cloud"]["hint"] == f"is {KEY_ENV} set? it is not set in this environment"
    models = {m["model"]: m for m in report["models"]}
    assert set(models) == {
        "qwen",
        "llama3.2",
        "far",
        "big",
        "free",
    }  # a disabled model is not checked
    assert models["qwen"]["served"]
    assert "`ollama pull llama3.2`" in models["llama3.2"]["why"]
    assert not models["far"]["served"] and not models["big"]["served"]

    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    code, report = await check(capsys, config)
    cloud_probe = next(b for b in report["backends"] if b["backend"] == "cloud")
    assert cloud_probe["hint"] == f"the key in {KEY_ENV} was refused: is it the right one?"
    assert "sk-wrong" not in json.dumps(report)

    monkeypatch.setenv(KEY_ENV, "sk-right")
    code, report = await check(capsys, config)
    models = {m["model"]: m for m in report["models"]}
    assert models["big"]["served"]
    assert "llmswitch prices sync" in models["free"]["why"] and not models["free"]["served"]
    assert "free: cloud does not list 'free'; check the name" in report["warnings"]


async def test_a_servable_config_exits_0_and_warns_of_a_tier_no_model_meets(
    nursery: trio.Nursery,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-right")
    box = await nursery.start(serve_sim, SimBackend(["qwen2.5:1.5b"]))
    cloud = await nursery.start(serve_sim, SimBackend(["gpt-4o"], api_key="sk-right"))
    config = write(
        tmp_path,
        '[routing]\nmetered_cloud = ["*"]\nfallback_model = "none"\n'
        f'[[backends]]\nname = "box"\nkind = "ollama"\nbase_url = "{box.openai_base_url}"\n'
        f'[[backends]]\nname = "cloud"\nlocality = "cloud"\napi_key_env = "{KEY_ENV}"\n'
        f'base_url = "{cloud.openai_base_url}"\n'
        '[[models]]\nid = "qwen2.5:1.5b"\nbackend = "box"\nquality = 20\n'
        # Catalogued: priced by the catalogue, two lines of config.
        '[[models]]\nid = "gpt-4o"\nbackend = "cloud"\n',
    )
    code, report = await check(capsys, config)
    assert code == 0, report
    assert all(m["served"] for m in report["models"])
    [warning] = report["warnings"]
    assert "reasoning floor" in warning and "no routing.fallback_model answers" in warning

    code = await trio.to_thread.run_sync(main, ["check", "--config", config])
    text = capsys.readouterr().out
    assert code == 0 and "warning: no model meets the reasoning floor" in text


async def test_a_backend_that_never_answers_times_out_within_health_timeout_s(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stuck = await nursery.start(serve_sim, SimBackend(["m"], knobs=ModelKnobs(hang=True)))
    config = write(
        tmp_path,
        "[health]\ntimeout_s = 0.2\n"
        f'[[backends]]\nname = "stuck"\nbase_url = "{stuck.openai_base_url}"\n'
        '[[models]]\nid = "m"\nbackend = "stuck"\n',
    )
    with trio.fail_after(10):
        code, report = await check(capsys, config)
    assert code == 1
    assert report["backends"][0]["problem"].startswith("timeout")
    assert "no answer within 0.2 s" in report["backends"][0]["hint"]


def test_a_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path, '[[models]]\nid = "m"\nbackend = "nowhere"\n')
    assert main(["check", "--config", config]) == 2
    assert "no backend named 'nowhere'" in capsys.readouterr().err


def test_dns_and_status_hints() -> None:
    backend = BackendConfig(name="x", preset="openai", base_url="https://api.example.test/v1")
    exc = httpx.ConnectError("[Errno -2] Name or service not known")
    exc.__cause__ = socket.gaierror(-2, "Name or service not known")
    assert error_hint(backend, exc, 2.0) == (
        "DNS failure",
        "cannot resolve 'api.example.test': check base_url",
    )
    assert "base_url" in status_hint(backend, 404)
    no_env = BackendConfig(name="y", base_url="http://127.0.0.1:1/v1")
    assert "set api_key_env" in status_hint(no_env, 401)


async def test_a_key_variable_not_set_fails_even_when_the_listing_is_public(
    nursery: trio.Nursery,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    public = await nursery.start(serve_sim, SimBackend(["m"]))
    config = write(
        tmp_path,
        f'[[backends]]\nname = "public"\napi_key_env = "{KEY_ENV}"\n'
        f'base_url = "{public.openai_base_url}"\n'
        '[[models]]\nid = "m"\nbackend = "public"\n',
    )
    code, report = await check(capsys, config)
    assert code == 1
    assert report["backends"][0]["problem"] == "key not set"
    assert KEY_ENV in report["backends"][0]["hint"]


def test_a_cloud_model_meets_a_tier_only_where_metered_cloud_lets_it() -> None:
    data = {
        "backends": [
            {"name": "box", "preset": "ollama"},
            {"name": "oa", "preset": "openai"},
        ],
        "models": [{"id": "small", "backend": "box", "quality": 45}, {"id": "o3", "backend": "oa"}],
        "routing": {"fallback_model": "none"},
    }
    probes = [
        Probe("box", "u", frozenset({"small"})),
        Probe("oa", "u", frozenset({"o3-2025-04-16"})),  # an alias of a listed version
    ]
    verdicts = [Verdict("small", "box", True, "ok"), Verdict("o3", "oa", True, "ok")]
    local_only = warnings(parse_config(data), probes, verdicts)
    assert [w.split(" floor")[0] for w in local_only] == [
        "no model meets the complex",
        "no model meets the reasoning",
    ]
    metered = parse_config(data | {"routing": {"metered_cloud": ["*"], "fallback_model": "none"}})
    assert warnings(metered, probes, verdicts) == []
