"""Token bucket: a rate limit that allows short bursts up to its capacity.

Refills continuously at ``rate_per_s``; time is read through trio so MockClock drives it.
"""

from __future__ import annotations

from collections.abc import Callable

import trio


class TokenBucket:
    def __init__(
        self, capacity: float, rate_per_s: float, clock: Callable[[], float] = trio.current_time
    ) -> None:
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    @classmethod
    def per_minute(cls, limit: int) -> TokenBucket:
        return cls(capacity=float(limit), rate_per_s=limit / 60.0)

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens

    def wait_for(self, amount: float = 1.0) -> float:
        """Seconds until ``amount`` could be taken (0.0 if now), taking nothing."""
        self._refill()
        need = min(amount, self.capacity)
        return 0.0 if self._tokens >= need else (need - self._tokens) / self.rate_per_s

    def take(self, amount: float = 1.0) -> float:
        """Take ``amount`` if available and return 0.0, else return seconds until it would be.

        A request larger than the whole capacity is let through when the bucket is full,
        so one oversized request cannot be locked out for ever.
        """
        self._refill()
        need = min(amount, self.capacity)
        if self._tokens >= need:
            self._tokens -= amount
            return 0.0
        return (need - self._tokens) / self.rate_per_s

    def charge(self, amount: float) -> None:
        """Account for usage learnt after the fact (may drive the bucket negative)."""
        self._refill()
        self._tokens -= amount

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate_per_s)
        self._stamp = now
