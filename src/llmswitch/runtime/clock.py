"""Wall-clock time read through trio's clock.

Budgets roll over at calendar boundaries, which need wall time; anchoring wall time to
trio's clock once lets MockClock move the calendar in tests.
"""

from __future__ import annotations

import time

import trio


class WallClock:
    def __init__(self) -> None:
        self._wall0 = time.time()
        self._trio0 = trio.current_time()

    def now(self) -> float:
        """Unix seconds."""
        return self._wall0 + (trio.current_time() - self._trio0)
