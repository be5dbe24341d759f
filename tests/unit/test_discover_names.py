"""``models --discover --write``: what an Ollama box names its models is untrusted text."""

from __future__ import annotations

import tomllib
from typing import Any

import httpx
import pytest

from llmswitch.cli.models import fetch_tags, new_models, toml_entries
from llmswitch.config import BackendConfig, Config, parse_config

BOX = {"name": "box", "kind": "ollama", "base_url": "http://127.0.0.2:11434/v1", "auth": "none"}


def test_names_that_are_not_tokens_are_skipped_and_the_rest_written_as_valid_toml() -> None:
    config = Config.model_validate({"backends": [BOX]})
    names = ["ok:1b", "two words", "lone\ud800", "line\nbreak", "x" * 200, 'q"uote\\d:2b']
    entries = new_models(config, {"box": names})
    assert [e["id"] for e in entries] == ["ok:1b", 'q"uote\\d:2b']
    text = toml_entries(entries)
    written = tomllib.loads(text)
    config = parse_config({"backends": [BOX], **written})
    assert [m.upstream for m in config.models] == ["ok:1b", 'q"uote\\d:2b']
    assert "judge its quality" in text


async def test_model_entries_that_are_not_named_by_a_string_do_not_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listing = {"models": [{"name": 5}, {"name": None}, {"name": ["x"]}, {"name": "fine"}]}
    real = httpx.AsyncClient

    def client(**kwargs: Any) -> httpx.AsyncClient:
        answer = httpx.MockTransport(lambda request: httpx.Response(200, json=listing))
        return real(transport=answer, **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", client)
    found = await fetch_tags([BackendConfig.model_validate(BOX)])
    assert found == {"box": ["fine"]}
