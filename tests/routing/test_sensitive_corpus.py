"""The sensitive scan's error rates on a labelled corpus, pinned.

tests/data/sensitive_corpus.jsonl holds identifiers that are not secrets (UUIDs, session
ids, git SHAs, hashes, base64 images, paths, tracking numbers, opaque ids, ordinary
prose) and secrets (vendor key formats, PEM blocks, JWTs, passwords, labelled and bare
random secrets, some inside harness wrappings); the real harness requests in
tests/data/harness, as routing reads them, join the non-secrets. A change that flags one
more identifier or misses one more secret fails here; one that improves a rate should
lower its pin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmswitch.routing.classify import content_text
from llmswitch.routing.envelope import read_envelope
from llmswitch.routing.sensitive import request_kinds, sensitive_kinds
from tests.routing.harness_requests import all_captures, chat_request

CORPUS = Path(__file__).resolve().parent.parent / "data" / "sensitive_corpus.jsonl"
#: Measured 2026-12-02: 0 of 164 non-secrets flagged, 0 of 90 secrets missed (the scan
#: before identifiers were known flagged 32 of the corpus's 144 non-secrets, and every
#: OpenClaw request).
FALSE_POSITIVE_RATE = 0.0
FALSE_NEGATIVE_RATE = 0.0


def _envelope_items() -> list[dict[str, Any]]:
    items = []
    for name in all_captures():
        headers, body = chat_request(name)
        view = read_envelope(body, headers).body["messages"]
        text = "\n".join(content_text(m.get("content"))[0] for m in view)
        items.append({"text": text, "secret": False, "kind": f"harness {name}"})
    return items


def corpus() -> list[dict[str, Any]]:
    lines = CORPUS.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()] + _envelope_items()


def test_the_corpus_is_big_enough_and_covers_every_kind() -> None:
    items = corpus()
    assert len(items) >= 200
    kinds = {i["kind"] for i in items}
    for kind in ("uuid", "session_id", "git_sha", "hash", "base64_image", "path"):
        assert kind in kinds
    for kind in ("api_key", "private_key", "password", "token", "secret"):
        assert kind in kinds
    assert sum(i["kind"].startswith("harness ") for i in items) >= 16


def test_false_positive_and_false_negative_rates_are_pinned() -> None:
    items = corpus()
    clean = [i for i in items if not i["secret"]]
    secret = [i for i in items if i["secret"]]
    flagged = [i for i in clean if sensitive_kinds(i["text"], i["text"])]
    missed = [i for i in secret if not sensitive_kinds(i["text"], i["text"])]
    fp_rate = len(flagged) / len(clean)
    fn_rate = len(missed) / len(secret)
    assert fp_rate <= FALSE_POSITIVE_RATE, [i["text"][:80] for i in flagged]
    assert fn_rate <= FALSE_NEGATIVE_RATE, [i["kind"] for i in missed]


def test_a_remembered_system_prompt_gives_the_verdict_of_a_whole_scan() -> None:
    """The system prompt's verdict is remembered across requests; every corpus item after
    OpenClaw's real system prompt is judged as a scan of the whole request judges it."""
    _, body = chat_request("openclaw/ask_00")
    system = content_text(body["messages"][0]["content"])[0]
    assert len(system) > 20_000
    for item in corpus():
        text = item["text"]
        whole = sensitive_kinds(f"{system}\n{text}", text)
        assert request_kinds(system, text) == whole == request_kinds(system, text)
    key = "sk-proj-" + "aB3xK9mQ2vL7nR4tW8yZ1cE6" * 2
    for _ in range(2):
        assert "api_key" in request_kinds(f"{system}\nOPENAI_API_KEY={key}", "hi")
        assert request_kinds(f"{system}\nThese instructions are confidential.", "hi") == ()
