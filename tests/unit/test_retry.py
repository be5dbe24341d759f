"""Which failures are retried on the same backend, and after how long."""

from __future__ import annotations

import random

from llmswitch.front.retry import retry_same_in
from llmswitch.front.upstream import UpstreamFailure
from llmswitch.runtime.backoff import Backoff

BACKOFF = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(7))


def wait(failure: UpstreamFailure, tries: int = 1) -> float | None:
    return retry_same_in(failure, tries, BACKOFF, retry_after_cap_s=5.0)


def test_a_reset_before_any_byte_is_retried_once_after_a_backoff() -> None:
    reset = UpstreamFailure("ReadError", reset=True)
    first = wait(reset)
    assert first is not None and 0.0 <= first <= 0.1
    assert wait(reset, tries=2) is None


def test_502_and_503_are_retried_once_honouring_a_short_retry_after() -> None:
    assert wait(UpstreamFailure("busy", status=503, retry_after="2")) == 2.0
    assert wait(UpstreamFailure("bad gateway", status=502)) is not None
    assert wait(UpstreamFailure("busy", status=503), tries=2) is None


def test_a_long_retry_after_moves_on_instead_of_waiting() -> None:
    assert wait(UpstreamFailure("busy", status=503, retry_after="60")) is None


def test_timeouts_429_refusals_other_5xx_and_client_faults_move_on() -> None:
    for failure in (
        UpstreamFailure("slow", timeout=True),
        UpstreamFailure("limited", status=429, retry_after="1"),
        UpstreamFailure("refused", connect=True),
        UpstreamFailure("boom", status=500),
        UpstreamFailure("bad request", status=400, client_fault=True),
    ):
        assert wait(failure) is None, failure
