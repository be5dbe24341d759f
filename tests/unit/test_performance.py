"""The performance tracker, and its seed from ledger rows after a restart."""

from __future__ import annotations

import pytest

from llmswitch.routing.performance import Performance, Sample, ewma, outcome_of_status


def test_ewma_starts_at_the_first_sample_and_leans_to_recent_ones() -> None:
    assert ewma(None, 100.0) == 100.0
    assert ewma(100.0, 200.0) == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, True), (502, False), (504, False), (499, None), (503, None), (400, None), (403, None)],
)
def test_only_served_and_upstream_failures_say_anything_of_the_model(
    status: int, outcome: bool | None
) -> None:
    assert outcome_of_status(status) is outcome


def test_a_seed_replays_rows_in_order_as_live_outcomes_would() -> None:
    samples = [
        Sample("a", True, 100.0, 10.0),
        Sample("a", False, 5.0, None),
        Sample("a", True, 200.0, 20.0),
        Sample("b", None, 1.0, None),
    ]
    seeded, live = Performance(), Performance()
    seeded.seed(samples)
    for s in samples:
        live.record(s.model, s.ok, s.latency_ms or 0.0, s.ttfb_ms)
    assert seeded == live
    assert seeded.latency_ms["a"] == pytest.approx(120.0)  # failures carry no latency
    assert seeded.success["a"] == pytest.approx(0.8 * 0.8 + 0.2)
    assert "b" not in seeded.success  # a departure says nothing


def test_what_was_learnt_live_wins_over_the_seed() -> None:
    perf = Performance()
    perf.record("a", True, 50.0, 5.0)
    perf.seed([Sample("a", True, 900.0, 90.0), Sample("b", True, 70.0, None)])
    assert perf.latency_ms == {"a": 50.0, "b": 70.0}
    assert perf.ttfb_ms == {"a": 5.0}
