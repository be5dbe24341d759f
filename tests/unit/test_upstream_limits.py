"""[upstream_limits]: defaults defined once, every limit validated at load."""

from __future__ import annotations

import pytest

from llmswitch.config import DEFAULT_UPSTREAM_LIMITS, ConfigError, parse_config


def test_the_defaults_are_the_documented_ones() -> None:
    limits = parse_config({}).upstream_limits
    assert limits == DEFAULT_UPSTREAM_LIMITS
    assert (limits.answer_bytes, limits.error_bytes) == (16 * 2**20, 64 * 2**10)
    assert (limits.event_bytes, limits.probe_bytes) == (2**20, 64 * 2**10)


def test_a_limit_too_small_to_read_anything_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"upstream_limits\.event_bytes"):
        parse_config({"upstream_limits": {"event_bytes": 10}})
    with pytest.raises(ConfigError, match=r"upstream_limits\.answer_size"):
        parse_config({"upstream_limits": {"answer_size": 10}})
