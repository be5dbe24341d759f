"""``llmswitch status``'s store line, from /health's ``store`` (pure)."""

from __future__ import annotations

from llmswitch.cli.status import store_line


def test_the_store_line_says_writable_not_writable_or_unreachable() -> None:
    assert store_line({"ok": True, "reason": None, "reachable": True, "down": None}) == "ok"
    assert store_line({"ok": False, "reason": "/data is not writable"}) == (
        "not writable: /data is not writable"
    )
    down = {"ok": True, "reachable": False, "down": "postgresql://***@db/llm: refused"}
    assert store_line(down) == (
        "unreachable, rows wait in the journal: postgresql://***@db/llm: refused"
    )
    assert store_line({}) == "ok"  # an older gateway that does not say
