"""`llmswitch models --discover` asks a (simulated) Ollama box what it serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from llmswitch.cli import main
from llmswitch.config import load_config
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
