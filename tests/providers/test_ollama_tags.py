"""``llmswitch models --discover`` reading an Ollama ``/api/tags`` answer.

The answer is a fixture written from Ollama's documented ``GET /api/tags`` response;
cli.models has no separate parser, so :func:`fetch_tags` is driven through an httpx
mock transport (no network).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llmswitch.cli.models import fetch_tags, new_models, tags_url
from llmswitch.config import BackendConfig, Config
from tests.providers.samples import data_bytes, data_json

NAMES = ["llama3.2:latest", "qwen2.5-coder:7b", "nomic-embed-text:latest"]


def backend(name: str = "lan", base_url: str = "http://127.0.0.2:11434/v1") -> BackendConfig:
    return BackendConfig(name=name, kind="ollama", base_url=base_url, auth="none")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every /api/tags request; 127.0.0.2 answers with the fixture, others with 404."""
    requests: list[httpx.Request] = []
    real = httpx.AsyncClient

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.host == "127.0.0.2":
            return httpx.Response(200, content=data_bytes("ollama", "tags.json"))
        return httpx.Response(404, json={"error": "not found"})

    def client(**kwargs: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "AsyncClient", client)
    return requests


def test_the_fixture_is_what_ollama_documents() -> None:
    models = data_json("ollama", "tags.json")["models"]
    for m in models:
        assert {"name", "model", "modified_at", "size", "digest", "details"} <= set(m)
        assert {"format", "family", "parameter_size", "quantization_level"} <= set(m["details"])
        assert len(m["digest"]) == 64 and isinstance(m["size"], int)
    assert [m["name"] for m in models] == NAMES


def test_tags_url_drops_the_openai_suffix() -> None:
    assert tags_url(backend()) == "http://127.0.0.2:11434/api/tags"
    assert tags_url(backend(base_url="http://127.0.0.2:11434/")) == (
        "http://127.0.0.2:11434/api/tags"
    )


async def test_fetch_tags_reads_the_model_names(seen: list[httpx.Request]) -> None:
    found = await fetch_tags([backend()])
    assert found == {"lan": NAMES}
    assert [str(r.url) for r in seen] == ["http://127.0.0.2:11434/api/tags"]
    assert seen[0].method == "GET"


async def test_a_backend_that_fails_gets_its_error_text(seen: list[httpx.Request]) -> None:
    found = await fetch_tags([backend(), backend("gone", "http://elsewhere:11434")])
    assert found["lan"] == NAMES
    assert isinstance(found["gone"], str) and "404" in found["gone"]


async def test_discovered_names_become_new_model_entries(seen: list[httpx.Request]) -> None:
    config = Config.model_validate(
        {
            "backends": [{"name": "lan", "kind": "ollama", "base_url": "http://127.0.0.2:11434"}],
            "models": [{"id": "llama3.2", "backend": "lan", "upstream": "llama3.2"}],
        }
    )
    entries = new_models(config, await fetch_tags(config.backends))
    assert [(e["id"], e["upstream"]) for e in entries] == [
        ("qwen2.5-coder:7b", "qwen2.5-coder:7b"),
        ("nomic-embed-text", "nomic-embed-text:latest"),
    ]
    json.dumps(entries)  # what --json prints
