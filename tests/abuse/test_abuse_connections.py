"""Connections a client holds: capped in number, and none held by a client that stopped reading.

The real server on loopback, raw sockets as the hostile clients. Bounded in count and time.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import trio

from tests.abuse.evil_upstream import Evil, Request, head
from tests.abuse.test_abuse_client import WAIT_S, connect, request_head
from tests.abuse.test_abuse_upstream import evil_stack
from tests.e2e.harness import start_stack

HEALTH = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def test_at_max_connections_a_new_one_waits_until_one_closes(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(
        nursery, tmp_path, server={"port": 0, "max_connections": 3, "keep_alive_s": 60}
    )
    idle = [await connect(stack) for _ in range(3)]
    with trio.fail_after(WAIT_S):
        while stack.gw.listener.open < 3:  # noqa: ASYNC110 (a counter, not an event)
            await trio.sleep(0.01)
    late = await connect(stack)  # the kernel's backlog takes it; the gateway does not
    await late.send_all(HEALTH)
    with trio.move_on_after(0.5):
        await late.receive_some(65536)
        pytest.fail("a connection over the cap was served")
    assert stack.gw.listener.open == 3
    await idle.pop().aclose()
    with trio.fail_after(WAIT_S):
        answer = await late.receive_some(65536)
    assert answer.startswith(b"HTTP/1.1 200")
    for stream in [*idle, late]:
        await stream.aclose()


def endless_stream(closed: trio.Event) -> Evil:
    """An upstream streaming 4 KiB events for as long as the gateway takes them."""

    async def reply(evil: Evil, request: Request, stream: trio.SocketStream) -> None:
        delta = {"role": "assistant", "content": "x" * 4096}
        event = b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode()
        try:
            await evil.send(stream, head(200, {"Content-Type": "text/event-stream"}))
            while True:
                await evil.send(stream, event + b"\n\n")
        finally:
            closed.set()

    return Evil(reply=reply)


async def test_a_stream_whose_client_stops_reading_is_cut_after_idle_s_and_frees_its_upstream(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = trio.Event()
    evil = endless_stream(closed)
    stack = await evil_stack(nursery, tmp_path, monkeypatch, evil, fallback=False, idle_s=1)
    host, port = stack.url.removeprefix("http://").rsplit(":", 1)
    client = trio.socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await client.connect((host, int(port)))
    reader = trio.SocketStream(client)
    body = json.dumps(
        {"model": "evil", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    await reader.send_all(request_head("POST", "/v1/chat/completions", len(body)) + body.encode())
    # The client reads nothing more: the gateway's writes stall, then its deadline closes all.
    with trio.fail_after(WAIT_S):
        await closed.wait()
        while stack.gw.in_flight or stack.gw.views.pool.value.backends["evil"].in_flight:  # noqa: ASYNC110
            await trio.sleep(0.01)
    assert evil.sent > 64 * 1024  # the stream was flowing until the client stalled
    [row] = await stack.rows()
    assert row.status == 499
    await reader.aclose()
