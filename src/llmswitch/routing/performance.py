"""How each model has been doing lately: latency, time to first byte, success rate.

Exponentially weighted, so recent requests count most. Selection reads it to put slow or
failing models behind healthy ones. It is rebuilt from the ledger's newest rows when the
pool starts (:meth:`Performance.seed`), so a restart does not forget what was learnt.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

EWMA_ALPHA = 0.2
#: Ledger rows read per model at start: enough for the EWMA to forget its first value.
SEED_ROWS_PER_MODEL = 50


def ewma(previous: float | None, sample: float, alpha: float = EWMA_ALPHA) -> float:
    return sample if previous is None else previous + alpha * (sample - previous)


@dataclass(frozen=True)
class Sample:
    """One finished request as the ledger saw it; ``ok`` None says nothing of the model."""

    model: str
    ok: bool | None
    latency_ms: float | None
    ttfb_ms: float | None


def outcome_of_status(status: int) -> bool | None:
    """A ledger status as the model's outcome: served, failed upstream, or neither (the
    client's mistake or departure, a refusal, the gateway's own shutdown)."""
    if status == 200:
        return True
    if status in (502, 504):
        return False
    return None


@dataclass
class Performance:
    latency_ms: dict[str, float] = field(default_factory=dict)
    ttfb_ms: dict[str, float] = field(default_factory=dict)
    success: dict[str, float] = field(default_factory=dict)

    def record(self, model: str, ok: bool | None, latency_ms: float, ttfb_ms: float | None) -> None:
        if ok is not None:
            self.success[model] = ewma(self.success.get(model), 1.0 if ok else 0.0)
        if ok:
            self.latency_ms[model] = ewma(self.latency_ms.get(model), latency_ms)
            if ttfb_ms is not None:
                self.ttfb_ms[model] = ewma(self.ttfb_ms.get(model), ttfb_ms)

    def seed(self, samples: Iterable[Sample]) -> None:
        """Replay ``samples`` (oldest first) for the models nothing live was learnt of yet."""
        live = self.success.keys() | self.latency_ms.keys()
        learnt = Performance()
        for s in samples:
            if s.model not in live:
                learnt.record(s.model, s.ok, s.latency_ms or 0.0, s.ttfb_ms)
        self.latency_ms |= learnt.latency_ms
        self.ttfb_ms |= learnt.ttfb_ms
        self.success |= learnt.success
