"""Extended thinking, as each upstream wire takes it.

The Anthropic door carries a client's ``thinking`` (``{"type": "enabled", "budget_tokens":
N}``, ``{"type": "adaptive"}`` or ``{"type": "disabled"}``) into the pipeline's body as
given. Which backend serves is known only per candidate, so :func:`thinking_for` shapes
the body for one candidate, the way ``max_tokens`` is capped per candidate:

* Anthropic wire: passed through. An ``enabled`` budget must stay under ``max_tokens``
  (and at or over Anthropic's 1,024 minimum): it is cut to fit the capped output, or
  dropped when it cannot fit.
* OpenAI-compatible wires: a model marked ``reasoning = true`` gets ``reasoning_effort``
  (unless the body has one already): ``low`` up to 4,096 budget tokens, ``medium`` up to
  16,384, ``high`` above; ``adaptive`` thinking is ``medium``. Other models get nothing:
  a model without reasoning refuses the parameter.
* Gemini: dropped (its wire drops ``reasoning_effort`` too).
"""

from __future__ import annotations

from typing import Any, Final

#: The smallest ``budget_tokens`` the Messages API takes.
MIN_BUDGET_TOKENS: Final = 1024
#: ``budget_tokens`` up to each bound map to that ``reasoning_effort``; above: ``high``.
EFFORT_BOUNDS: Final = ((4096, "low"), (16384, "medium"))
OPENAI_KINDS: Final = frozenset({"openai", "ollama"})


def thinking_for(body: dict[str, Any], kind: str, reasoning: bool) -> dict[str, Any]:
    """``body`` for a backend of wire ``kind`` (its model takes reasoning if ``reasoning``)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return body
    out = {k: v for k, v in body.items() if k != "thinking"}
    budget = thinking.get("budget_tokens")
    budget = budget if isinstance(budget, int) and not isinstance(budget, bool) else None
    if kind == "anthropic":
        fitted = _fitted(thinking, budget, out.get("max_tokens"))
        if fitted is not None:
            out["thinking"] = fitted
    elif kind in OPENAI_KINDS and reasoning and "reasoning_effort" not in out:
        if thinking.get("type") == "adaptive":
            out["reasoning_effort"] = "medium"
        elif thinking.get("type") == "enabled" and budget is not None:
            out["reasoning_effort"] = effort_of(budget)
    return out


def effort_of(budget_tokens: int) -> str:
    return next((name for bound, name in EFFORT_BOUNDS if budget_tokens <= bound), "high")


def _fitted(thinking: dict[str, Any], budget: int | None, max_tokens: Any) -> dict[str, Any] | None:
    """An ``enabled`` budget cut below ``max_tokens``; None when no allowed budget fits."""
    if thinking.get("type") != "enabled" or budget is None or not isinstance(max_tokens, int):
        return thinking
    budget = min(budget, max_tokens - 1)
    if budget < MIN_BUDGET_TOKENS:
        return None
    return {**thinking, "budget_tokens": budget}
