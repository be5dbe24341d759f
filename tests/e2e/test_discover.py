"""`llmswitch models --discover` asks a (simulated) Ollama box what it serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from llmswitch.cli import main
from llmswitch.config import ConfigError, load_config
from llmswitch.sim.backend import SimBackend
from llmswitch.sim.server import serve_sim


async def test_discover_lists_and_writes_new_models(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = await nursery.start(serve_sim, SimBackend(["qwen2.5:1.5b", "llama3.2"]))
    config = tmp_path / "llmswitch.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n'
        f'[[backends]]\nname = "box"\nkind = "ollama"\nbase_url = "{running.openai_base_url}"\n'
        '[[models]]\nid = "qwen"\nbackend = "box"\nupstream = "qwen2.5:1.5b"\n',
        encoding="utf-8",
    )
    args = ["models", "--config", str(config), "--discover", "--json", "--write"]
    code = await trio.to_thread.run_sync(main, args)
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["found"]["box"] == ["qwen2.5:1.5b", "llama3.2:latest"]
    assert [e["id"] for e in report["new"]] == ["llama3.2"]
    written = load_config(config)
    assert [(m.id, m.upstream) for m in written.models] == [
        ("qwen", "qwen2.5:1.5b"),
        ("llama3.2", "llama3.2:latest"),
    ]


async def test_discover_describes_each_new_model_from_api_show(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["qwen3:32b", "gemma3:4b", "llama3.2", "nomic-embed-text"]
    running = await nursery.start(serve_sim, SimBackend(names))
    config = tmp_path / "llmswitch.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n'
        f'[[backends]]\nname = "box"\nkind = "ollama"\nbase_url = "{running.openai_base_url}"\n'
        # A config needs a model; this one is not on the box.
        '[[models]]\nid = "old"\nbackend = "box"\nquality = 40\n',
        encoding="utf-8",
    )
    args = ["models", "--config", str(config), "--discover", "--write"]
    assert await trio.to_thread.run_sync(main, args) == 0
    out = capsys.readouterr().out
    assert "skipped: embedding model" in out
    # qwen3:32b: 60 for 32B, +5 for the qwen3 family, +5 for thinking.
    assert "new: quality 70, context 40960" in out
    written = {m.id: m for m in load_config(config).models}
    assert set(written) == {"old", "qwen3:32b", "gemma3:4b", "llama3.2"}
    qwen, gemma, llama = written["qwen3:32b"], written["gemma3:4b"], written["llama3.2"]
    assert (qwen.quality, qwen.context_window) == (70, 40960)
    assert not qwen.can("vision") and qwen.can("tool-use")
    assert (gemma.quality, gemma.context_window) == (35, 131072)  # 4.3B: 30, +5 gemma3
    assert gemma.can("vision") and not gemma.can("tool-use")
    assert (llama.quality, llama.context_window) == (30, 131072)
    requests = [r for r in running.sim.requests if r.path == "/api/show"]
    assert sorted(r.body["model"] for r in requests) == sorted(
        ["qwen3:32b", "gemma3:4b", "llama3.2:latest", "nomic-embed-text:latest"]
    )


async def test_discover_fills_a_config_that_names_only_its_backend(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    running = await nursery.start(serve_sim, SimBackend(["qwen2.5:7b"]))
    config = tmp_path / "llmswitch.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n'
        f'[[backends]]\nname = "box"\nkind = "ollama"\nbase_url = "{running.openai_base_url}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="models --discover --write"):
        load_config(config)  # the gateway refuses it, and says how to fill it
    listing = ["models", "--config", str(config)]
    assert await trio.to_thread.run_sync(main, listing) == 0
    assert "no models configured" in capsys.readouterr().out
    args = ["models", "--config", str(config), "--discover", "--write"]
    assert await trio.to_thread.run_sync(main, args) == 0
    assert [m.upstream for m in load_config(config).models] == ["qwen2.5:7b"]
