"""front.lockout: wrong credentials cost time, per peer, in bounded memory."""

from __future__ import annotations

import pytest

from llmswitch.front.lockout import Lockout


def test_a_peer_waits_once_its_guesses_are_spent_and_gets_one_back_per_refill() -> None:
    lock = Lockout(guesses=3, refill_s=6.0)
    for _ in range(3):
        assert lock.retry_after("10.0.0.9", 0.0) is None
        lock.failed("10.0.0.9", 0.0)
    assert lock.retry_after("10.0.0.9", 0.0) == pytest.approx(6.0)
    assert lock.retry_after("10.0.0.9", 4.5) == pytest.approx(1.5)
    assert lock.retry_after("10.0.0.8", 0.0) is None  # another peer is not affected
    assert lock.retry_after("10.0.0.9", 6.0) is None  # one guess back
    lock.failed("10.0.0.9", 6.0)
    assert lock.retry_after("10.0.0.9", 6.0) == pytest.approx(6.0)
    assert lock.retry_after("10.0.0.9", 100.0) is None


def test_memory_is_bounded_forgiven_peers_first_then_the_oldest() -> None:
    lock = Lockout(guesses=2, refill_s=1.0, max_peers=3)
    lock.failed("a", 0.0)  # forgiven by t=1
    lock.failed("b", 5.0)
    lock.failed("b", 5.0)
    lock.failed("c", 5.0)
    lock.failed("d", 5.0)  # a fourth peer: "a" is forgotten, it owes nothing
    assert len(lock) == 3
    assert lock.retry_after("b", 5.0) is not None  # the guessers are still held
    lock.failed("e", 5.0)  # none forgiven now: the oldest ("b") goes
    assert len(lock) == 3
    assert lock.retry_after("b", 5.0) is None
