"""Exponential backoff with jitter.

Full jitter (a uniform draw from zero up to the exponential ceiling) spreads retries of
many clients apart, which plain exponential backoff does not. A smaller ``jitter`` keeps
a floor of ``(1 - jitter) * ceiling``: a retry that must not come at once (restarting an
actor into the outage that crashed it) waits at least that long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 0.1
    cap_s: float = 30.0
    factor: float = 2.0
    #: The part of the ceiling that is drawn at random; the rest is always waited.
    jitter: float = 1.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def ceiling(self, attempt: int) -> float:
        """The largest delay for the ``attempt``-th retry (0-based), before jitter."""
        return min(self.cap_s, self.base_s * self.factor ** min(attempt, 64))

    def delay(self, attempt: int) -> float:
        ceiling = self.ceiling(attempt)
        return self.rng.uniform((1.0 - self.jitter) * ceiling, ceiling)
