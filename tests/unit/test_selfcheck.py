"""The start-up self-check: each way a loadable config will serve badly gets one line."""

from __future__ import annotations

from typing import Any

from llmswitch.config import parse_config
from llmswitch.selfcheck import start_warnings


def config_data() -> dict[str, Any]:
    return {
        "backends": [
            {"name": "local", "kind": "ollama", "base_url": "http://127.0.0.1:11434"},
            {
                "name": "openai",
                "kind": "openai",
                "base_url": "https://api.openai.com/v1",
                "locality": "cloud",
                "api_key_env": "LLMSWITCH_TEST_OPENAI_KEY",
            },
        ],
        "models": [
            {"id": "small", "backend": "local", "quality": 30},
            {
                "id": "gpt",
                "backend": "openai",
                "quality": 90,
                "cost_input_per_mtok": 1.0,
                "cost_output_per_mtok": 2.0,
            },
        ],
    }


def config(**sections: Any) -> Any:
    return parse_config(config_data() | sections)


def test_a_sound_config_has_nothing_to_say() -> None:
    assert start_warnings(config(), {"LLMSWITCH_TEST_OPENAI_KEY": "sk-x"}) == []


def test_an_unset_key_variable_names_the_backend_and_its_models() -> None:
    (line,) = start_warnings(config(), {})
    assert "backend openai" in line and "LLMSWITCH_TEST_OPENAI_KEY is not set" in line
    assert "(gpt)" in line


def test_an_empty_key_variable_counts_as_unset() -> None:
    assert start_warnings(config(), {"LLMSWITCH_TEST_OPENAI_KEY": ""}) != []


def test_tiers_no_model_meets_are_named_when_nothing_falls_back() -> None:
    local_only = {
        "backends": [{"name": "local", "kind": "ollama", "base_url": "http://127.0.0.1:11434"}],
        "models": [{"id": "small", "backend": "local", "quality": 50}],
    }
    no_fallback = local_only | {"routing": {"fallback_model": "none"}}
    lines = start_warnings(config(**no_fallback), {})
    assert [line.split(" floor")[0] for line in lines] == [
        "no model meets the complex",
        "no model meets the reasoning",
    ]
    assert "best quality is 50" in lines[0] and "no routing.fallback_model answers" in lines[0]
    with_fallback = local_only | {"routing": {"fallback_model": "small"}}
    assert start_warnings(config(**with_fallback), {}) == []
    assert start_warnings(config(**local_only), {}) == []  # best-local, the default


def test_best_local_without_a_self_hosted_model_still_warns() -> None:
    cloud_only = {
        "backends": [config_data()["backends"][1]],
        "models": [config_data()["models"][1] | {"quality": 50}],
    }
    lines = start_warnings(config(**cloud_only), {"LLMSWITCH_TEST_OPENAI_KEY": "sk-x"})
    assert any(line.startswith("no model meets the reasoning floor") for line in lines)


def test_unpriced_cloud_models_are_named() -> None:
    data = config_data()
    data["models"][1] |= {"cost_input_per_mtok": 0.0, "cost_output_per_mtok": 0.0}
    lines = start_warnings(parse_config(data), {"LLMSWITCH_TEST_OPENAI_KEY": "k"})
    assert lines == [
        "cloud models without a price (gpt): excluded until priced (routing.allow_unpriced)"
    ]
