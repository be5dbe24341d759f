"""One scrubber for everything built from upstream text: the key never leaves."""

from __future__ import annotations

import json

from llmswitch.providers.scrub import Scrubber, known_keys

KEY = "sk-proj/Abc-0123456789xyz"


def test_the_key_is_masked_as_sent_and_in_every_json_escape() -> None:
    scrub = Scrubber(KEY)
    escaped = json.dumps({"echo": KEY}, ensure_ascii=True).replace("A", "\\u0041")
    escaped = escaped.replace("/", "\\/").replace("x", "\\u0078")
    assert KEY not in json.loads(scrub.data(escaped.encode()))["echo"]
    assert json.loads(scrub.data(escaped.encode())) == {"echo": "***"}
    body = b'{"headers": {"authorization": "Bearer ' + KEY.encode() + b'"}}'
    assert scrub.data(body) == b'{"headers": {"authorization": "Bearer ***"}}'


def test_text_without_the_key_is_returned_as_it_is() -> None:
    scrub = Scrubber(KEY)
    raw = b'data: {"content": "line\\nbreak \\u00e9"}\n\n'
    assert scrub.data(raw) is raw


def test_messages_also_lose_well_known_key_shapes_answers_keep_them() -> None:
    scrub = Scrubber(None)
    example = "sk-ant-api03-abcdef and AIzaSyA1234567890abcdefghijKLM"
    assert scrub.text(example) == "*** and ***" == known_keys(example)
    assert scrub.data(example.encode()) == example.encode()


def test_placeholders_too_short_to_be_keys_mask_nothing() -> None:
    assert Scrubber("none", "").data(b"none of it") == b"none of it"


def test_lone_surrogates_in_a_message_survive_the_scrub() -> None:
    assert Scrubber(KEY).text(f"\ud800 {KEY}") == "\ud800 ***"
