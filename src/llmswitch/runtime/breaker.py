"""Circuit breaker: stop sending work to something that keeps failing, probe it later.

closed ── N consecutive failures, or failure ratio ≥ threshold over a window
          with at least ``min_volume`` calls ──▶ open
open ──── cooldown elapsed ──▶ half-open (exactly one probe allowed through)
half-open ─ probe succeeds ──▶ closed;  probe fails ──▶ open, with a longer cooldown

A probe permit not reported back within ``probe_timeout_s`` expires, and the next caller
gets one: a lost permit (a caller that vanished without a word) must not keep a healed
backend half-open for ever.

The cooldown doubles on each consecutive re-open, up to ``cooldown_max_s``, and resets
once the breaker closes. Time is read through trio so MockClock drives it in tests.

In a fleet, what a peer's breaker learnt comes in through :meth:`hold_open` (a peer's
breaker opened: ours is open until the peer's cooldown ends) and :meth:`end_cooldown`
(a peer's probe got through: ours turns half-open, so our next call is our own probe).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import trio


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    window_s: float = 30.0
    min_volume: int = 10
    cooldown_s: float = 5.0
    cooldown_max_s: float = 120.0
    probe_timeout_s: float = 60.0


class CircuitBreaker:
    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._opens = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._probe_since = 0.0
        self.last_transition = 0.0

    @property
    def cooldown(self) -> float:
        """The current open period; grows with each consecutive re-open."""
        p = self.policy
        growth: float = 2.0 ** max(0, self._opens - 1)
        return min(p.cooldown_max_s, p.cooldown_s * growth)

    @property
    def next_probe_at(self) -> float | None:
        """When an open breaker will let its next probe through (trio clock)."""
        if self._state is BreakerState.OPEN:
            return self._opened_at + self.cooldown
        return None

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self.cooldown:
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """Ask for a permit; in half-open only one caller gets one until it reports back."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_outstanding():
            self._probe_in_flight = True
            self._probe_since = self._clock()
            return True
        return False

    def _probe_outstanding(self) -> bool:
        """A probe permit is out and has not yet expired."""
        return (
            self._probe_in_flight
            and self._clock() < self._probe_since + self.policy.probe_timeout_s
        )

    def record_success(self) -> None:
        self._consecutive = 0
        self._probe_in_flight = False
        state = self.state
        if state is BreakerState.OPEN:
            return  # a call let through before the breaker opened: only a probe may close it
        if state is BreakerState.HALF_OPEN:
            self._opens = 0
            self._outcomes.clear()
            self._transition(BreakerState.CLOSED)
        else:
            self._remember(ok=True)

    def record_failure(self) -> None:
        self._probe_in_flight = False
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
            return
        if state is BreakerState.OPEN:
            return
        self._consecutive += 1
        self._remember(ok=False)
        if self._consecutive >= self.policy.consecutive_failures or self._ratio_tripped():
            self._open()

    def hold_open(self, until: float) -> None:
        """Be open until ``until`` at least (a peer found the backend failing).

        This does not count as one of our own re-opens: the cooldown does not grow.
        """
        now = self._clock()
        if until <= now:
            return
        state = self.state
        if state is BreakerState.OPEN and self._opened_at + self.cooldown >= until:
            return
        self._probe_in_flight = False
        self._consecutive = 0
        self._outcomes.clear()
        self._opened_at = until - self.cooldown
        if state is not BreakerState.OPEN:
            self._transition(BreakerState.OPEN)

    def end_cooldown(self) -> None:
        """An open breaker turns half-open now (a peer's probe got through)."""
        if self.state is BreakerState.OPEN:
            self._opened_at = self._clock() - self.cooldown
            self._transition(BreakerState.HALF_OPEN)

    def release(self) -> None:
        """Give back a half-open permit that was never used (the request went elsewhere)."""
        self._probe_in_flight = False

    def _remember(self, *, ok: bool) -> None:
        now = self._clock()
        self._outcomes.append((now, ok))
        horizon = now - self.policy.window_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()

    def _ratio_tripped(self) -> bool:
        total = len(self._outcomes)
        if total < self.policy.min_volume:
            return False
        failures = sum(1 for _, ok in self._outcomes if not ok)
        return failures / total >= self.policy.failure_ratio

    def _open(self) -> None:
        self._opens += 1
        self._opened_at = self._clock()
        self._consecutive = 0
        self._outcomes.clear()
        self._transition(BreakerState.OPEN)

    def _transition(self, state: BreakerState) -> None:
        self._state = state
        self.last_transition = self._clock()
