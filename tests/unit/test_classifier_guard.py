"""A prompt that breaks the classifier must not crash the classifier actor (or the gateway)."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch.actors import classifier


def test_a_failing_classifier_defaults_to_medium(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(classifier, "classify_request", broken)
    result = classifier.classify_or_default([{"role": "user", "content": "hi"}])
    assert result.complexity == "medium"
    assert result.reason == "classifier error: RuntimeError"
