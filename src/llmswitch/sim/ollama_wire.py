"""Ollama's native discovery endpoints (/api/tags, /api/version), enough to probe.

The gateway can tell an Ollama box from a plain OpenAI-compatible server by these; the
chat itself goes through Ollama's OpenAI-compatible /v1 routes, which the sim serves.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

OLLAMA_VERSION = "0.5.7"


def tags(models: Iterable[str], created: int) -> dict[str, Any]:
    """GET /api/tags body: the locally available models."""
    modified = datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")
    return {"models": [_tag(model, modified) for model in models]}


def version() -> dict[str, Any]:
    """GET /api/version body."""
    return {"version": OLLAMA_VERSION}


def _tag(model: str, modified: str) -> dict[str, Any]:
    name = model if ":" in model else f"{model}:latest"
    digest = hashlib.sha256(name.encode()).hexdigest()
    family = name.split(":", 1)[0].split("-", 1)[0]
    return {
        "name": name,
        "model": name,
        "modified_at": modified,
        "size": 1_000_000_000,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "1B",
            "quantization_level": "Q4_K_M",
        },
    }
