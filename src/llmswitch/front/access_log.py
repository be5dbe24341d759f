"""One log line per finished request, for operators who follow the log rather than SQL.

The line is built from the request's ledger row, so the log and the ledger never disagree.
logfmt (``key=value``, quoted when needed) reads well in a terminal and greps well. With
``log.format = "json"`` every log record, request lines included, is one JSON object, for
log shippers. Fields with no value are left out of logfmt and are ``null`` in JSON.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Literal

from llmswitch.store.request_log import RequestRow

LogFormat = Literal["logfmt", "json"]

log = logging.getLogger("llmswitch.requests")


def row_fields(row: RequestRow) -> dict[str, object]:
    """What a request line says, in the order it says it."""
    return {
        "id": row.request_id,
        "client": row.client,
        "harness": row.harness,
        "task": row.task,
        "tier": row.tier,
        "rule": row.rule,
        "model": row.chosen_model,
        "backend": row.backend,
        "status": row.status,
        "stream": row.stream,
        "latency_ms": None if row.latency_ms is None else round(row.latency_ms, 1),
        "ttfb_ms": None if row.ttfb_ms is None else round(row.ttfb_ms, 1),
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "cost_usd": round(row.cost_usd, 6),
        "error": row.error,
    }


def _logfmt_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' ="\\'):
        return text
    # json.dumps quotes, escapes quotes and backslashes, and makes control characters visible.
    return json.dumps(text)


def logfmt(fields: dict[str, object]) -> str:
    return " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields.items() if v is not None)


def log_request(row: RequestRow) -> None:
    """Emit ``row``'s line: INFO, or WARNING for a 5xx (the gateway or an upstream failed)."""
    level = logging.WARNING if row.status >= 500 else logging.INFO
    if log.isEnabledFor(level):
        fields = row_fields(row)
        log.log(level, "%s", logfmt(fields), extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """Each record as one JSON object; a request line's fields are top-level keys."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"), default=str)


class WorkerFormatter(logging.Formatter):
    """Another formatter's line, led by ``[w<n>]``: which of several workers wrote it."""

    def __init__(self, inner: logging.Formatter, worker: int) -> None:
        super().__init__()
        self.inner = inner
        self.prefix = f"[w{worker}] "

    def format(self, record: logging.LogRecord) -> str:
        return self.prefix + self.inner.format(record)


def use_format(fmt: LogFormat, worker: int | None = None) -> None:
    """Switch the root handlers to ``fmt`` (logfmt keeps the plain text format).

    A worker of several (``server.workers``) names itself in every line: ``[w1] ...``,
    or ``"worker": 1`` in JSON; the workers share the parent's stderr.
    """
    for handler in logging.getLogger().handlers:
        if fmt == "json":
            handler.setFormatter(JsonFormatter(worker))
        elif worker is not None and not isinstance(handler.formatter, WorkerFormatter):
            handler.setFormatter(WorkerFormatter(handler.formatter or logging.Formatter(), worker))
