"""When something that crashed is restarted, and when restarting has stopped helping.

One rule for both supervisors: the actor supervisor (runtime/supervisor.py) and the
parent of several worker processes (workers.py). More than ``max_restarts`` crashes
within ``window_s`` seconds is a crash loop: give up. Otherwise restart after a backoff
that grows with the recent crashes, so a quiet window resets it. Pure: the caller reads
its clock and keeps the crash times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llmswitch.runtime.backoff import Backoff


@dataclass
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 60.0
    #: Half of each ceiling is always waited (0.5, 1, 2, 4, 8 s): a shortage that lasts a
    #: few seconds cannot burn through the restarts in one second.
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=1.0, cap_s=30.0, jitter=0.5))


def recent_crashes(crashes: Sequence[float], now: float, window_s: float) -> tuple[float, ...]:
    """The earlier crashes still inside the window, then this one (at ``now``)."""
    return (*(t for t in crashes if t >= now - window_s), now)


def gives_up(recent: Sequence[float], policy: RestartPolicy) -> bool:
    """Whether ``recent`` (from :func:`recent_crashes`) is a crash loop."""
    return len(recent) > policy.max_restarts


def restart_delay(recent: Sequence[float], policy: RestartPolicy) -> float:
    """How long to wait before the restart after ``recent``'s last crash."""
    return policy.backoff.delay(len(recent) - 1)


def fleet_exit_code(gave_up: bool, worker_codes: Sequence[int]) -> int:
    """The parent's exit code once every worker has ended (README, Exit codes).

    0 when each worker drained and exited 0; 3 when a worker was given up on, or ended
    any other way during the drain (killed, or its own actors gave up), for systemd to
    start the whole fleet afresh.
    """
    if gave_up or any(code != 0 for code in worker_codes):
        return 3
    return 0
