"""Backoff: exponential ceiling with a cap, full jitter, reproducible with a seed."""

from __future__ import annotations

import random

import pytest

from llmswitch.runtime.backoff import Backoff


class _TopRng(random.Random):
    """Always draws the top of the range, so delay() == ceiling()."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_ceiling_doubles_from_base_and_caps() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0)
    assert [backoff.ceiling(n) for n in range(7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    )


def test_ceiling_uses_the_factor() -> None:
    backoff = Backoff(base_s=1.0, cap_s=100.0, factor=3.0)
    assert [backoff.ceiling(n) for n in range(6)] == pytest.approx([1, 3, 9, 27, 81, 100])


def test_ceiling_stays_at_cap_for_huge_attempts() -> None:
    backoff = Backoff(base_s=0.05, cap_s=5.0)
    assert backoff.ceiling(10_000) == 5.0


def test_delay_is_a_draw_between_zero_and_the_ceiling() -> None:
    backoff = Backoff(base_s=0.1, cap_s=2.0, rng=random.Random(7))
    for attempt in range(8):
        draws = [backoff.delay(attempt) for _ in range(500)]
        assert all(0.0 <= d <= backoff.ceiling(attempt) for d in draws)
        # full jitter: draws spread over the whole range, not bunched at the ceiling
        assert min(draws) < 0.1 * backoff.ceiling(attempt)
        assert max(draws) > 0.9 * backoff.ceiling(attempt)


def test_delay_draws_up_to_the_ceiling_of_its_attempt() -> None:
    backoff = Backoff(base_s=0.5, cap_s=3.0, rng=_TopRng())
    assert [backoff.delay(n) for n in range(4)] == pytest.approx([0.5, 1.0, 2.0, 3.0])


def test_seeded_rng_is_reproducible() -> None:
    first = Backoff(rng=random.Random(42))
    second = Backoff(rng=random.Random(42))
    other = Backoff(rng=random.Random(43))
    sequence = [first.delay(n) for n in range(10)]
    assert sequence == [second.delay(n) for n in range(10)]
    assert sequence != [other.delay(n) for n in range(10)]


def test_partial_jitter_keeps_a_floor_under_each_delay() -> None:
    backoff = Backoff(base_s=1.0, cap_s=30.0, jitter=0.5, rng=random.Random(7))
    for attempt in range(6):
        ceiling = backoff.ceiling(attempt)
        draws = [backoff.delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
