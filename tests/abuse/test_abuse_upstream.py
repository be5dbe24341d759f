"""A hostile upstream cannot overfill the gateway, fool a client or get its key out.

Every scenario runs the real gateway in hypercorn on loopback, in front of one upstream
of our own (raw sockets, see :mod:`tests.abuse.evil_upstream`) and a well-behaved
simulator to fail over to. Memory is shown by behaviour: the upstream counts what the
gateway accepted, and a failed-over answer arrives long before 96 MiB were read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest
import trio

from tests.abuse.evil_upstream import MIB, Evil, Request, head, serve_evil
from tests.e2e.harness import Stack, model, start_stack

KEY = "sk-evil-0123456789abcdef-KEY"
HELLO = [{"role": "user", "content": "hello there"}]
ECHO = "echo: hello there"
HUGE = 96 * MIB
#: Every candidate failed upstream: routing.exhaustion_status, by default.
EXHAUSTED = 503
#: Far below what the evil upstream offered: the gateway hung up early.
READ_AT_MOST = 32 * MIB


async def evil_stack(
    nursery: trio.Nursery,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    evil: Evil,
    *,
    kind: str = "openai",
    fallback: bool = True,
    idle_s: float = 10,
) -> Stack:
    """The gateway with model "evil" on the hostile upstream, falling back to "medium"."""
    monkeypatch.setenv("EVIL_KEY", KEY)
    await serve_evil(nursery, evil)
    backend = {
        "name": "evil",
        "kind": kind,
        "base_url": evil.base_url,
        "locality": "local",
        "api_key_env": "EVIL_KEY",
        "first_token_s": 10,
        "idle_s": idle_s,
        "total_s": 20,
    }
    models = [
        model("evil", "evil", 30, fallbacks=["medium"] if fallback else []),
        model("medium", "local", 45),
    ]
    return await start_stack(nursery, tmp_path, models=models, extra_backends=[backend])


async def still_healthy(stack: Stack) -> None:
    """The gateway answers, no actor restarted, nothing is left in flight."""
    async with stack.http() as http:
        assert (await http.get("/health")).status_code == 200
        debug = (await http.get("/debug")).json()
    assert debug["in_flight"] == 0
    assert all(a["restarts"] == 0 for a in debug["supervisor"]["actors"])


async def ask(stack: Stack, stream: bool = False) -> tuple[str, str]:
    """(served model, answer text) of one request for model "evil"."""
    client = stack.client(timeout=30)
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(model="evil", messages=HELLO)
        return raw.headers["x-router-model"], raw.parse().choices[0].message.content or ""
    async with client.chat.completions.with_streaming_response.create(
        model="evil", messages=HELLO, stream=True
    ) as resp:
        text = ""
        async for chunk in await resp.parse():
            text += "".join(c.delta.content or "" for c in chunk.choices)
        return resp.headers["x-router-model"], text


def sse_payloads(raw: bytes) -> list[Any]:
    """The JSON data of each SSE event in ``raw`` (``[DONE]`` left out)."""
    out = []
    for event in raw.split(b"\n\n"):
        data = b"".join(line[6:] for line in event.split(b"\n") if line.startswith(b"data: "))
        if data and data != b"[DONE]":
            out.append(json.loads(data))
    return out


# -- every read is bounded --------------------------------------------------------------


async def huge_answer(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    await evil.send(stream, head(200, {"Content-Length": str(5 * 10**9)}))
    await evil.send_filler(stream, HUGE)


async def huge_chunked_answer(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    await evil.send(stream, head(200, {"Transfer-Encoding": "chunked"}))
    for _ in range(HUGE // MIB):
        await evil.send(stream, b"%x\r\n" % MIB)
        await evil.send_filler(stream, MIB, b"[" * 65536)
        await evil.send(stream, b"\r\n")


async def huge_error(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    await evil.send(stream, head(500, {"Content-Type": "application/json"}))
    await evil.send_filler(stream, HUGE)


async def huge_event(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    await evil.send(stream, head(200, {"Content-Type": "text/event-stream"}) + b"data: ")
    await evil.send_filler(stream, HUGE // 2)


@pytest.mark.parametrize("reply", [huge_answer, huge_chunked_answer, huge_error])
async def test_a_huge_answer_fails_over_after_reading_a_bounded_part(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: Any
) -> None:
    evil = Evil(reply=reply)
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil)
    with trio.fail_after(30):
        assert await ask(stack) == ("medium", ECHO)
    assert evil.sent < READ_AT_MOST
    (row,) = await stack.rows()
    assert (row.status, row.chosen_model) == (200, "medium")
    await still_healthy(stack)


async def test_one_huge_sse_event_fails_over_before_the_first_byte(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = Evil(reply=huge_event)
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil)
    with trio.fail_after(30):
        assert await ask(stack, stream=True) == ("medium", ECHO)
    assert evil.sent < READ_AT_MOST
    await still_healthy(stack)


async def test_a_huge_event_after_the_first_byte_ends_the_stream_with_an_error_event(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}

    async def reply(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
        await evil.send(stream, head(200, {"Content-Type": "text/event-stream"}))
        await evil.send(stream, b"data: " + json.dumps(first).encode() + b"\n\ndata: ")
        await evil.send_filler(stream, HUGE // 2)

    evil = Evil(reply=reply)
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil)
    async with stack.http() as http:
        body = {"model": "evil", "messages": HELLO, "stream": True}
        with trio.fail_after(30):
            resp = await http.post("/v1/chat/completions", json=body)
    events = sse_payloads(resp.content)
    assert resp.status_code == 200 and events[0] == first
    assert events[-1]["error"]["code"] == "upstream_cut"
    assert "exceeds 1048576 bytes" in events[-1]["error"]["message"]
    assert evil.sent < READ_AT_MOST
    (row,) = await stack.rows()
    assert row.status == 502 and "exceeds" in (row.error or "")
    await still_healthy(stack)


async def test_a_huge_health_probe_answer_is_read_no_further_than_its_limit(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def probe(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
        await evil.send(stream, head(200, {"Content-Length": str(HUGE)}))
        await evil.send_filler(stream, HUGE)

    evil = Evil(probe=probe)
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil)
    with trio.fail_after(30):
        while not stack.gw.views.health.value.backends["evil"].checked:  # noqa: ASYNC110
            await trio.sleep(0.05)
    assert evil.sent < READ_AT_MOST
    await still_healthy(stack)


# -- what cannot be parsed is a failure, never a 200 ------------------------------------


def fixed(status: int, body: bytes, **headers: str) -> Any:
    async def reply(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
        fields = {"Content-Length": str(len(body))} | headers
        await evil.send(stream, head(status, fields) + body)

    return reply


REDIRECT = fixed(307, b"", Location="http://127.0.0.1:9/elsewhere")
NOT_JSON = fixed(200, b"<html>hello</html>", **{"Content-Type": "application/json"})
BROKEN_UTF8 = fixed(200, b'{"choices": [{"message": {"content": "\xff\xfe"}}]}')


@pytest.mark.parametrize("reply", [REDIRECT, NOT_JSON, BROKEN_UTF8])
async def test_a_redirect_or_an_unreadable_200_fails_over_on_both_doors(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: Any
) -> None:
    stack = await evil_stack(nursery, tmp_path, monkeypatch, Evil(reply=reply))
    assert await ask(stack) == ("medium", ECHO)
    claude = anthropic.AsyncAnthropic(base_url=stack.url, api_key="test", max_retries=0)
    message = await claude.messages.create(model="evil", max_tokens=50, messages=HELLO)  # type: ignore[arg-type]
    assert message.model == "medium"
    await still_healthy(stack)


@pytest.mark.parametrize("reply", [REDIRECT, NOT_JSON, BROKEN_UTF8])
async def test_with_nothing_to_fail_over_it_is_the_exhaustion_answer_never_200_or_500(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: Any
) -> None:
    stack = await evil_stack(nursery, tmp_path, monkeypatch, Evil(reply=reply), fallback=False)
    body = {"model": "evil", "max_tokens": 50, "messages": HELLO}
    async with stack.http() as http:
        for door in ("/v1/chat/completions", "/v1/messages"):
            resp = await http.post(door, json=body)
            assert resp.status_code == EXHAUSTED, (door, resp.text)
            assert resp.headers["content-type"] == "application/json"
    await still_healthy(stack)


# -- the backend key never leaves -------------------------------------------------------


async def echo_headers(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    """An answer quoting the Authorization header, with the key JSON-escaped in part."""
    echoed = json.dumps(request.headers["authorization"]).replace("e", "\\u0065")
    content = b'"you sent ' + echoed[1:].encode()
    body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": ' + content
    body += b'}, "finish_reason": "stop"}]}'
    await evil.send(stream, head(200, {"Content-Length": str(len(body))}) + body)


async def echo_headers_streamed(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    """A stream quoting the key, cut in two network writes in the middle of the key."""
    delta = {"role": "assistant", "content": f"you sent {request.headers['authorization']}"}
    event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode()
    cut = event.index(KEY.encode()) + 5
    await evil.send(stream, head(200, {"Content-Type": "text/event-stream"}) + event[:cut])
    await trio.sleep(0.05)  # two TCP segments, so two reads on the gateway's side
    await evil.send(stream, event[cut:] + b"\n\ndata: [DONE]\n\n")


@pytest.mark.parametrize("reply", [echo_headers, echo_headers_streamed])
async def test_an_upstream_echoing_the_key_gets_it_masked_in_the_relayed_answer(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: Any
) -> None:
    stack = await evil_stack(nursery, tmp_path, monkeypatch, Evil(reply=reply))
    served, text = await ask(stack, stream=reply is echo_headers_streamed)
    assert served == "evil" and text == "you sent Bearer ***"


async def anthropic_error_event(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
    """Claude's stream opening with an ``error`` event that quotes the key it was sent."""
    error = {"type": "error", "error": {"type": "overloaded_error", "message": f"bad {KEY}"}}
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 1}}}
    events = f"event: message_start\ndata: {json.dumps(start)}\n\n"
    events += f"event: error\ndata: {json.dumps(error)}\n\n"
    await evil.send(stream, head(200, {"Content-Type": "text/event-stream"}) + events.encode())


async def test_an_anthropic_error_event_quoting_the_key_reaches_no_one(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = Evil(reply=anthropic_error_event)
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil, kind="anthropic", fallback=False)
    body = {"model": "evil", "max_tokens": 50, "messages": HELLO, "stream": True}
    async with stack.http() as http:
        answers = [
            await http.post(door, json=body) for door in ("/v1/chat/completions", "/v1/messages")
        ]
        debug = (await http.get("/debug")).text
    assert [a.status_code for a in answers] == [EXHAUSTED, EXHAUSTED]
    assert all("bad ***" in a.text for a in answers)
    rows = await stack.rows()
    assert [r.status for r in rows] == [EXHAUSTED, EXHAUSTED] and "bad ***" in (rows[0].error or "")
    leaks = [a.text for a in answers] + [debug] + [r.error or "" for r in rows]
    assert not [text for text in leaks if KEY in text]
    await still_healthy(stack)
