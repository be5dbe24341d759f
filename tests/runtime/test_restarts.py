"""The restart rule shared by the actor supervisor and the workers' parent, without either."""

from __future__ import annotations

import random

from llmswitch.runtime.backoff import Backoff
from llmswitch.runtime.restarts import (
    RestartPolicy,
    fleet_exit_code,
    gives_up,
    recent_crashes,
    restart_delay,
)

POLICY = RestartPolicy(max_restarts=2, window_s=10.0)


def test_crashes_older_than_the_window_are_forgotten() -> None:
    assert recent_crashes((1.0, 5.0, 9.0), now=16.0, window_s=10.0) == (9.0, 16.0)


def test_a_crash_on_the_window_edge_still_counts() -> None:
    assert recent_crashes((6.0,), now=16.0, window_s=10.0) == (6.0, 16.0)


def test_more_crashes_than_max_restarts_within_the_window_is_a_crash_loop() -> None:
    crashes: tuple[float, ...] = ()
    verdicts = []
    for now in (0.0, 1.0, 3.0):
        crashes = recent_crashes(crashes, now, POLICY.window_s)
        verdicts.append(gives_up(crashes, POLICY))
    assert verdicts == [False, False, True]


def test_crashes_spread_wider_than_the_window_never_give_up() -> None:
    crashes: tuple[float, ...] = ()
    for now in range(0, 200, 6):
        crashes = recent_crashes(crashes, float(now), POLICY.window_s)
        assert not gives_up(crashes, POLICY)


def test_the_delay_grows_with_recent_crashes_and_keeps_its_floor() -> None:
    policy = RestartPolicy(
        backoff=Backoff(base_s=1.0, cap_s=30.0, jitter=0.5, rng=random.Random(7))
    )
    first = restart_delay((0.0,), policy)
    third = restart_delay((0.0, 1.0, 2.0), policy)
    assert 0.5 <= first <= 1.0
    assert 2.0 <= third <= 4.0


def test_the_fleet_exits_0_only_when_every_worker_drained_cleanly() -> None:
    assert fleet_exit_code(False, [0, 0]) == 0
    assert fleet_exit_code(True, [0, 0]) == 3
    assert fleet_exit_code(False, [0, 3]) == 3  # a worker's own actors gave up
    assert fleet_exit_code(False, [0, -9]) == 3  # killed during the drain
