"""Secrets stay out of /debug: keys live in the environment, URLs lose their userinfo."""

from __future__ import annotations

from llmswitch.urls import redact_url


def test_userinfo_is_redacted() -> None:
    assert redact_url("https://user:s3cret@host:8443/v1") == "https://***@host:8443/v1"


def test_plain_urls_are_unchanged() -> None:
    assert redact_url("http://127.0.0.1:11434/v1") == "http://127.0.0.1:11434/v1"
