"""CircuitBreaker, driven by trio's MockClock through its default clock."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from llmswitch.runtime.breaker import BreakerPolicy, BreakerState, CircuitBreaker

POLICY = BreakerPolicy(
    consecutive_failures=3,
    failure_ratio=0.5,
    window_s=10.0,
    min_volume=4,
    cooldown_s=5.0,
    cooldown_max_s=12.0,
)
# the consecutive rule alone: the ratio never reaches min_volume
STREAK_ONLY = BreakerPolicy(consecutive_failures=3, min_volume=1000)
# the ratio rule alone: consecutive failures never trip it
RATIO_ONLY = BreakerPolicy(
    consecutive_failures=1000, failure_ratio=0.5, window_s=10.0, min_volume=4
)


def _tripped(policy: BreakerPolicy = POLICY) -> CircuitBreaker:
    breaker = CircuitBreaker(policy)
    for _ in range(policy.consecutive_failures):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    return breaker


async def test_opens_after_n_consecutive_failures(mock_clock: MockClock) -> None:
    breaker = CircuitBreaker(POLICY)
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    assert breaker.last_transition == trio.current_time()


async def test_a_success_resets_the_consecutive_count(mock_clock: MockClock) -> None:
    breaker = CircuitBreaker(STREAK_ONLY)
    for ok in [False, False, True, False, False]:
        breaker.record_success() if ok else breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


async def test_ratio_trips_only_once_min_volume_is_reached(mock_clock: MockClock) -> None:
    breaker = CircuitBreaker(RATIO_ONLY)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()  # 2/3 failed, but only 3 calls < min_volume 4
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()  # 3/4 failed with volume 4
    assert breaker.state is BreakerState.OPEN


async def test_ratio_below_threshold_stays_closed(mock_clock: MockClock) -> None:
    breaker = CircuitBreaker(RATIO_ONLY)
    for _ in range(4):
        breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_failure()  # 3/7 < 0.5
    assert breaker.state is BreakerState.CLOSED


async def test_outcomes_older_than_the_window_do_not_count(mock_clock: MockClock) -> None:
    breaker = CircuitBreaker(RATIO_ONLY)
    for _ in range(3):
        breaker.record_failure()
    mock_clock.jump(10.5)
    breaker.record_failure()  # only this one is within the 10 s window
    assert breaker.state is BreakerState.CLOSED
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN


async def test_open_breaker_rejects_until_the_cooldown_elapses(mock_clock: MockClock) -> None:
    breaker = _tripped()
    opened_at = trio.current_time()
    assert breaker.next_probe_at == opened_at + 5.0
    assert not breaker.allow()
    mock_clock.jump(4.9)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    mock_clock.jump(0.1)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.next_probe_at is None


async def test_half_open_lets_exactly_one_probe_through(mock_clock: MockClock) -> None:
    breaker = _tripped()
    mock_clock.jump(5)
    assert breaker.allow()
    assert not breaker.allow()
    assert not breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN


async def test_release_frees_the_half_open_permit(mock_clock: MockClock) -> None:
    breaker = _tripped()
    mock_clock.jump(5)
    assert breaker.allow()
    breaker.release()
    assert breaker.allow()
    assert not breaker.allow()


async def test_probe_success_closes_and_resets_the_cooldown(mock_clock: MockClock) -> None:
    breaker = _tripped()
    mock_clock.jump(5)
    assert breaker.allow()
    breaker.record_failure()  # re-open: cooldown doubles to 10
    assert breaker.cooldown == 10.0
    mock_clock.jump(10)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()
    assert breaker.cooldown == 5.0
    for _ in range(3):
        breaker.record_failure()
    assert breaker.next_probe_at == trio.current_time() + 5.0


async def test_probe_failure_reopens_with_doubled_cooldown_up_to_the_max(
    mock_clock: MockClock,
) -> None:
    breaker = _tripped()
    cooldowns = []
    for _ in range(4):
        cooldowns.append(breaker.cooldown)
        assert breaker.next_probe_at == trio.current_time() + breaker.cooldown
        mock_clock.jump(breaker.cooldown)
        assert breaker.allow()
        breaker.record_failure()
        assert breaker.state is BreakerState.OPEN
    assert cooldowns == [5.0, 10.0, 12.0, 12.0]


async def test_reopened_breaker_stays_open_for_the_longer_cooldown(
    mock_clock: MockClock,
) -> None:
    breaker = _tripped()
    mock_clock.jump(5)
    assert breaker.allow()
    breaker.record_failure()
    mock_clock.jump(9.9)
    assert not breaker.allow()
    mock_clock.jump(0.1)
    assert breaker.allow()


async def test_failures_while_open_change_nothing(mock_clock: MockClock) -> None:
    breaker = _tripped()
    mock_clock.jump(3)
    breaker.record_failure()
    assert breaker.next_probe_at == pytest.approx(trio.current_time() + 2.0)


async def test_a_late_success_while_open_does_not_close_early(mock_clock: MockClock) -> None:
    # a request that started before the breaker opened may still finish well; that is
    # not the probe, so the breaker stays open for its cooldown
    breaker = _tripped()
    mock_clock.jump(1)
    breaker.record_success()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.next_probe_at == pytest.approx(trio.current_time() + 4.0)


async def test_a_probe_permit_never_reported_back_expires(mock_clock: MockClock) -> None:
    breaker = _tripped(BreakerPolicy(consecutive_failures=1, cooldown_s=5.0, probe_timeout_s=30))
    mock_clock.jump(5.0)
    assert breaker.allow()  # the one probe; its caller vanishes without a word
    mock_clock.jump(29.9)
    assert not breaker.allow()
    mock_clock.jump(0.1)
    assert breaker.allow()  # expired: the next caller probes the healed backend
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_peer_opens_a_closed_breaker_until_its_cooldown_ends() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY, clock)
    breaker.hold_open(clock.now + 2.0)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.next_probe_at == pytest.approx(clock.now + 2.0)
    clock.now += 2.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_a_peer_never_shortens_our_own_cooldown_but_may_lengthen_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY, clock)
    for _ in range(POLICY.consecutive_failures):
        breaker.record_failure()
    breaker.hold_open(clock.now + 1.0)
    assert breaker.next_probe_at == pytest.approx(clock.now + POLICY.cooldown_s)
    breaker.hold_open(clock.now + 9.0)
    assert breaker.next_probe_at == pytest.approx(clock.now + 9.0)


def test_a_peers_open_in_the_past_changes_nothing() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY, clock)
    breaker.hold_open(clock.now - 1.0)
    assert breaker.state is BreakerState.CLOSED


def test_a_peer_open_takes_back_our_half_open_probe_permit() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY, clock)
    for _ in range(POLICY.consecutive_failures):
        breaker.record_failure()
    clock.now += POLICY.cooldown_s
    assert breaker.allow()  # our probe is out
    breaker.hold_open(clock.now + 3.0)
    assert breaker.state is BreakerState.OPEN
    breaker.record_success()  # our probe's late answer: stale, only a new probe may close
    assert breaker.state is BreakerState.OPEN


def test_a_peers_recovery_makes_ours_half_open_so_our_next_call_probes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(POLICY, clock)
    for _ in range(POLICY.consecutive_failures):
        breaker.record_failure()
    breaker.end_cooldown()
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_peers_recovery_leaves_a_closed_breaker_closed() -> None:
    breaker = CircuitBreaker(POLICY, FakeClock())
    breaker.end_cooldown()
    assert breaker.state is BreakerState.CLOSED
