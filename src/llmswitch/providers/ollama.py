"""What Ollama's ``POST /api/show`` says about a model, and the quality derived from it.

``models --discover`` asks every Ollama model for its facts: the context length
(``model_info["<architecture>.context_length"]``, or the Modelfile's ``num_ctx`` when it
sets one), the parameter count (``model_info["general.parameter_count"]``, else
``details.parameter_size`` such as ``"7.6B"``), the family (``details.family``) and the
capabilities (``"completion"``, ``"tools"``, ``"vision"``, ``"thinking"``,
``"embedding"``). Pure: the answer's JSON in, plain data out; anything missing or
malformed is unknown, never an error.

Quality (0-100) is a rough start for a model nobody has judged yet, from size and family:
:data:`SIZE_QUALITY` by parameter count, plus :data:`FAMILY_BONUS` for families that do
more per parameter, plus :data:`THINKING_BONUS` for a model that reasons before it
answers; at most :data:`MAX_DERIVED_QUALITY` (a guess never outranks a judged model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

#: (at most this many billion parameters, quality); past the last row: :data:`LARGEST`.
SIZE_QUALITY: Final = ((1.0, 15), (2.0, 20), (4.5, 30), (9.0, 40), (15.0, 50), (35.0, 60))
LARGEST: Final = ((80.0, 70), (float("inf"), 78))
#: Ollama ``details.family`` values of newer families that do better for their size.
FAMILY_BONUS: Final = {
    "qwen3": 5,
    "qwen3moe": 5,
    "gemma3": 5,
    "gptoss": 8,
    "deepseek2": 3,
    "phi3": 3,
    "gemma": -5,
    "phi2": -5,
}
THINKING_BONUS: Final = 5
MAX_DERIVED_QUALITY: Final = 85
MIN_DERIVED_QUALITY: Final = 5

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_UNITS: Final = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}
_NUM_CTX = re.compile(r"^num_ctx\s+(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ModelFacts:
    """What /api/show told; None is unknown."""

    context_length: int | None = None
    billions: float | None = None
    family: str | None = None
    capabilities: tuple[str, ...] = ()

    @property
    def chat(self) -> bool:
        """False for an embedding model: it cannot answer a chat."""
        return "embedding" not in self.capabilities or "completion" in self.capabilities


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parameter_billions(size: Any) -> float | None:
    """``"7.6B"`` → 7.6, ``"135M"`` → 0.135; None when unreadable."""
    match = _SIZE.match(size) if isinstance(size, str) else None
    return float(match[1]) * _UNITS[match[2].upper()] if match else None


def parse_show(body: Any) -> ModelFacts:
    """The facts in an /api/show answer."""
    if not isinstance(body, dict):
        return ModelFacts()
    info = _object(body.get("model_info"))
    details = _object(body.get("details"))
    arch = info.get("general.architecture")
    context = _positive_int(info.get(f"{arch}.context_length")) if isinstance(arch, str) else None
    params = body.get("parameters")
    num_ctx = _NUM_CTX.search(params) if isinstance(params, str) else None
    if num_ctx:
        context = int(num_ctx[1])
    count = _positive_int(info.get("general.parameter_count"))
    billions = count / 1e9 if count else parameter_billions(details.get("parameter_size"))
    family = details.get("family")
    caps = body.get("capabilities")
    return ModelFacts(
        context_length=context,
        billions=billions,
        family=family if isinstance(family, str) else None,
        capabilities=tuple(c for c in caps if isinstance(c, str)) if isinstance(caps, list) else (),
    )


def derived_quality(facts: ModelFacts) -> int | None:
    """The documented guess from size and family; None without a parameter count."""
    if facts.billions is None:
        return None
    base = next(q for limit, q in (*SIZE_QUALITY, *LARGEST) if facts.billions <= limit)
    bonus = FAMILY_BONUS.get(facts.family or "", 0)
    bonus += THINKING_BONUS if "thinking" in facts.capabilities else 0
    return max(MIN_DERIVED_QUALITY, min(MAX_DERIVED_QUALITY, base + bonus))


def features(facts: ModelFacts) -> list[str] | None:
    """The catalogue's feature names the model has (every Ollama model can answer in
    JSON); None when Ollama listed no capabilities (versions before 0.6 do not)."""
    if not facts.capabilities:
        return None
    return ["json", *(c for c in ("tools", "vision") if c in facts.capabilities)]
