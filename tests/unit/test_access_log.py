"""The request line: logfmt that greps and JSON that parses, both from the ledger row."""

from __future__ import annotations

import json
import logging
import shlex

import pytest

from llmswitch.front.access_log import (
    JsonFormatter,
    WorkerFormatter,
    log_request,
    logfmt,
    row_fields,
)
from llmswitch.store.request_log import RequestRow


def row(**kw: object) -> RequestRow:
    base: dict[str, object] = {
        "ts": 1_700_000_000.0,
        "request_id": "req-1",
        "client": "laptop",
        "harness": "openclaw",
        "tier": "medium",
        "chosen_model": "qwen",
        "backend": "ollama",
        "status": 200,
        "stream": True,
        "latency_ms": 123.456,
        "tokens_in": 10,
        "tokens_out": 20,
        "cost_usd": 0.0,
        "task": "code",
    }
    return RequestRow(**(base | kw))  # type: ignore[arg-type]


def test_logfmt_names_every_field_with_a_value_and_skips_the_rest() -> None:
    line = logfmt(row_fields(row()))
    assert line.startswith("id=req-1 client=laptop harness=openclaw task=code tier=medium")
    assert "model=qwen backend=ollama status=200 stream=true latency_ms=123.5" in line
    assert "tokens_in=10 tokens_out=20 cost_usd=0.0" in line
    assert "rule=" not in line and "error=" not in line


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("no route: quality 20 < floor 75", '"no route: quality 20 < floor 75"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("a=b", '"a=b"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("", '""'),
    ],
)
def test_logfmt_quotes_what_would_break_a_line(value: str, shown: str) -> None:
    line = logfmt(row_fields(row(error=value)))
    assert f"error={shown}" in line
    assert "\n" not in line


def test_a_client_string_cannot_forge_a_field() -> None:
    line = logfmt(row_fields(row(client="x status=500")))
    parsed = dict(pair.split("=", 1) for pair in shlex.split(line))
    assert parsed["client"] == "x status=500" and parsed["status"] == "200"


def test_json_format_puts_request_fields_at_the_top_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="llmswitch.requests"):
        log_request(row(status=503, error="all backends down"))
    (record,) = caplog.records
    assert record.levelno == logging.WARNING  # a 5xx stands out
    entry = json.loads(JsonFormatter().format(record))
    assert entry["id"] == "req-1" and entry["status"] == 503
    assert entry["error"] == "all backends down" and entry["rule"] is None
    assert entry["level"] == "warning" and entry["logger"] == "llmswitch.requests"


def test_json_format_keeps_plain_records_as_messages() -> None:
    record = logging.LogRecord("llmswitch.main", logging.INFO, __file__, 1, "up %s", ("x",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "up x" and entry["level"] == "info"


def test_a_worker_names_itself_in_every_line_in_either_format() -> None:
    record = logging.LogRecord("llmswitch.main", logging.INFO, __file__, 1, "hello", None, None)
    plain = WorkerFormatter(logging.Formatter("%(levelname)s %(message)s"), 2)
    assert plain.format(record) == "[w2] INFO hello"
    assert json.loads(JsonFormatter(2).format(record))["worker"] == 2
    assert "worker" not in json.loads(JsonFormatter().format(record))
