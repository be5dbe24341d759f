"""An upstream's usage report is untrusted: a count that is not a plausible one is no count.

A string, ``1e400`` (a float, infinite once parsed), a negative number or one too big for
SQLite's integers must neither fail the request nor reach the ledger: the answer is
served, and the row's tokens are estimated, on every wire and both doors, streamed or not.
"""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import pytest
import trio

from tests.abuse.evil_upstream import Evil, Handler, Request, head
from tests.abuse.test_abuse_upstream import HELLO, evil_stack, still_healthy
from tests.e2e.harness import Stack

BAD_COUNTS = ['"x"', "1e400", "-7", "1" + "0" * 30]
TEXT = "hi there"
WIRES = ["openai", "ollama", "anthropic", "gemini"]


def _streamed(request: Request) -> bool:
    if "streamGenerateContent" in request.path:
        return True
    return json.loads(request.body).get("stream") is True


def _sse(*payloads: str, events: tuple[str, ...] = ()) -> bytes:
    """SSE bytes of JSON ``payloads`` (raw text, so they can hold what json.dumps cannot)."""
    names = events or ("",) * len(payloads)
    out = "".join(
        (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
        for name, data in zip(names, payloads, strict=True)
    )
    return out.encode()


def openai_answer(bad: str, stream: bool) -> bytes:
    usage = f'{{"prompt_tokens": {bad}, "completion_tokens": {bad}, "total_tokens": {bad}}}'
    if not stream:
        message = {"role": "assistant", "content": TEXT}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        start = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m"}
        return (json.dumps(start | {"choices": [choice]})[:-1] + f', "usage": {usage}}}').encode()
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    delta = {"index": 0, "delta": {"role": "assistant", "content": TEXT}, "finish_reason": None}
    end = {"index": 0, "delta": {}, "finish_reason": "stop"}
    last = json.dumps(chunk | {"choices": []})[:-1] + f', "usage": {usage}}}'
    return _sse(
        json.dumps(chunk | {"choices": [delta]}),
        json.dumps(chunk | {"choices": [end]}),
        last,
        "[DONE]",
    )


def anthropic_answer(bad: str, stream: bool) -> bytes:
    usage = f'{{"input_tokens": {bad}, "output_tokens": {bad}}}'
    message = (
        f'{{"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "usage": {usage}'
    )
    if not stream:
        content = json.dumps([{"type": "text", "text": TEXT}])
        return f'{message}, "content": {content}, "stop_reason": "end_turn"}}'.encode()
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    block["content_block"]["text"] = ""  # type: ignore[index]
    text = {"type": "content_block_delta", "index": 0}
    text["delta"] = {"type": "text_delta", "text": TEXT}
    stop = '{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
    return _sse(
        f'{{"type": "message_start", "message": {message}, "content": []}}}}',
        json.dumps(block),
        json.dumps(text),
        json.dumps({"type": "content_block_stop", "index": 0}),
        stop + f'"usage": {{"output_tokens": {bad}}}}}',
        json.dumps({"type": "message_stop"}),
        events=(
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ),
    )


def gemini_answer(bad: str, stream: bool) -> bytes:
    meta = f'{{"promptTokenCount": {bad}, "candidatesTokenCount": {bad}, "totalTokenCount": {bad}}}'
    content = {"role": "model", "parts": [{"text": TEXT}]}
    candidate = json.dumps({"candidates": [{"index": 0, "content": content}]})
    finished = {"index": 0, "content": {"role": "model", "parts": []}, "finishReason": "STOP"}
    last = json.dumps({"candidates": [finished]})[:-1] + f', "usageMetadata": {meta}}}'
    if not stream:
        done = {"index": 0, "content": content, "finishReason": "STOP"}
        return (json.dumps({"candidates": [done]})[:-1] + f', "usageMetadata": {meta}}}').encode()
    return _sse(candidate, last)


ANSWERS = {
    "openai": openai_answer,
    "ollama": openai_answer,
    "anthropic": anthropic_answer,
    "gemini": gemini_answer,
}


def bad_usage(wire: str, bad: list[str]) -> Handler:
    """Answers on ``wire`` whose usage counts are ``bad[0]`` (which the test changes)."""

    async def reply(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
        streamed = _streamed(request)
        body = ANSWERS[wire](bad[0], streamed)
        kind = "text/event-stream" if streamed else "application/json"
        headers = {"Content-Type": kind, "Content-Length": str(len(body))}
        await evil.send(stream, head(200, headers) + body)

    return reply


@pytest.mark.parametrize("wire", WIRES)
async def test_an_implausible_usage_report_is_served_and_estimated_in_the_ledger(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wire: str
) -> None:
    bad = [BAD_COUNTS[0]]
    evil = Evil(reply=bad_usage(wire, bad))
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil, kind=wire, fallback=False)
    for count in BAD_COUNTS:
        bad[0] = count
        await _four_ways(stack)
    rows = await stack.rows()
    assert [(r.status, r.chosen_model) for r in rows] == [(200, "evil")] * 4 * len(BAD_COUNTS)
    assert all(r.usage_estimated and r.tokens_in and r.tokens_out for r in rows), rows
    await still_healthy(stack)


async def _four_ways(stack: Stack) -> None:
    """Ask for model "evil" on both doors, streamed and not; each answer is the whole text."""
    client = stack.client(timeout=30)
    answer = await client.chat.completions.create(model="evil", messages=HELLO)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == TEXT
    streamed = await client.chat.completions.create(
        model="evil",
        messages=HELLO,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    assert "".join([c.choices[0].delta.content or "" async for c in streamed if c.choices]) == TEXT
    claude = anthropic.AsyncAnthropic(base_url=stack.url, api_key="test", max_retries=0)
    message = await claude.messages.create(model="evil", max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    assert message.content[0].text == TEXT  # type: ignore[union-attr]
    assert message.usage.input_tokens >= 0 and message.usage.output_tokens >= 0
    async with claude.messages.stream(model="evil", max_tokens=50, messages=HELLO) as events:  # type: ignore[arg-type]
        assert await events.get_final_text() == TEXT
