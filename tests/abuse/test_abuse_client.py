"""A hostile client against the real server: raw sockets where an SDK would behave.

Every client mistake is a 4xx naming the field, early answers close their connection,
slow clients are cut, departures are 499s, and the gateway's own cuts end streams with
an error event. Loopback only, bounded in count and time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from llmswitch.sim.knobs import ModelKnobs
from llmswitch.store.db import open_db
from llmswitch.store.request_log import recent_rows
from tests.e2e.harness import Stack, start_stack

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "hello there"}]
BODY = json.dumps({"model": "small", "messages": HELLO}).encode()
JSON_TYPE = {"content-type": "application/json"}
#: Wall-clock bound on anything a test waits for from the server.
WAIT_S = 10


@pytest.fixture
async def stack(nursery: trio.Nursery, tmp_path: Path) -> Stack:
    return await start_stack(nursery, tmp_path)


def host_port(stack: Stack) -> tuple[str, int]:
    host, port = stack.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def connect(stack: Stack) -> trio.SocketStream:
    return await trio.open_tcp_stream(*host_port(stack))


async def read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection (within WAIT_S)."""
    got = b""
    with trio.fail_after(WAIT_S):
        while chunk := await stream.receive_some(65536):
            got += chunk
    return got


def request_head(method: str, path: str, length: int | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/nowhere", 404), ("GET", CHAT, 405), ("POST", CHAT, 413)],
)
async def test_an_answer_before_the_body_closes_the_connection_instead_of_wedging_it(
    nursery: trio.Nursery, tmp_path: Path, method: str, path: str, status: int
) -> None:
    stack = await start_stack(nursery, tmp_path, server={"max_body_bytes": 100, "port": 0})
    stream = await connect(stack)
    length = 1000 if status == 413 else len(BODY)
    await stream.send_all(request_head(method, path, length))
    await trio.sleep(0.2)  # the answer goes out before the body: the gateway did not wait
    # The body (or some of it) and a pipelined request follow; they must not hang.
    await stream.send_all(BODY + b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got = await read_until_closed(stream)
    head = got.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(f"http/1.1 {status}".encode())
    assert b"connection: close" in head
    async with stack.http() as http:
        assert (await http.get("/health")).status_code == 200


async def test_a_connection_that_never_finishes_its_headers_is_closed(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, server={"keep_alive_s": 0.5, "port": 0})
    stream = await connect(stack)
    await stream.send_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.")
    assert await read_until_closed(stream) == b""


async def test_a_stalled_upload_is_cut_and_never_holds_an_in_flight_slot(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(
        nursery, tmp_path, server={"body_timeout_s": 0.5, "max_in_flight": 1, "port": 0}
    )
    stream = await connect(stack)
    await stream.send_all(request_head("POST", CHAT, len(BODY)) + BODY[:10])
    await trio.sleep(0.1)
    # The stalled upload is not in flight: a whole request is served meanwhile.
    completion = await stack.client().chat.completions.create(model="small", messages=HELLO)
    assert completion.choices[0].message.content == "echo: hello there"
    got = await read_until_closed(stream)
    assert got.startswith(b"HTTP/1.1 408")
    assert b"connection: close" in got.lower()
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_timeout"
    assert stack.gw.in_flight == 0
    assert sorted(r.status for r in await stack.rows()) == [200, 408]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


CHAT_MISTAKES = [
    ('{"model": "small", "messages": ' + nested(5000) + "}", None, "invalid_json"),
    ('{"model": "small", "messages": [], "temperature": NaN}', None, "invalid_json"),
    ('{"model": "small", "messages": [], "top_p": Infinity}', None, "invalid_json"),
    (
        '{"model": "small", "messages": [{"role": "user", "content": [{"text": 5}]}]}',
        "messages[0].content[0].type",
        "invalid_request",
    ),
    (
        '{"model": "small", "messages": [{"role": "user", "content": [{"type": "text",'
        ' "text": 5}]}]}',
        "messages[0].content[0].text",
        "invalid_request",
    ),
    (
        '{"model": "small", "messages": [{"role": "user", "content": "hi"}],'
        ' "stream": true, "stream_options": "yes"}',
        "stream_options",
        "invalid_request",
    ),
    (
        '{"model": "small", "messages": [{"role": "user", "content": "hi"}], "stream": "false"}',
        "stream",
        "invalid_request",
    ),
    (
        '{"model": "small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "9"}',
        "max_tokens",
        "invalid_request",
    ),
]


@pytest.mark.parametrize(("raw", "param", "code"), CHAT_MISTAKES)
async def test_a_client_mistake_is_a_400_naming_the_field_never_a_500(
    stack: Stack, raw: str, param: str | None, code: str
) -> None:
    async with stack.http() as http:
        r = await http.post(CHAT, content=raw, headers=JSON_TYPE)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["param"], error["code"]) == (param, code)
    rows = await stack.rows()
    assert [row.status for row in rows] == [400]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/messages"),
        ("POST", "/v1/route"),
        ("POST", "/v1/responses"),
        ("PUT", "/admin/routing/rules/deep"),
        ("PUT", "/admin/routing/profile"),
    ],
)
async def test_deep_json_is_a_400_on_every_door_and_the_admin_api(
    stack: Stack, method: str, path: str
) -> None:
    raw = '{"model": "small", "max_tokens": 5, "messages": ' + nested(5000) + "}"
    async with stack.http() as http:
        r = await http.request(
            method, path, content=raw, headers={"content-type": "application/json"}
        )
    assert r.status_code == 400, r.text
    async with stack.http() as http:
        assert (await http.get("/health")).status_code == 200


async def test_a_megabyte_model_name_is_clipped_in_the_answer_and_the_ledger(
    stack: Stack,
) -> None:
    name = "m" * 1_000_000
    async with stack.http() as http:
        r = await http.post(CHAT, json={"model": name, "messages": HELLO})
    assert r.status_code == 404
    assert len(r.text) < 2000
    [row] = await stack.rows()
    assert row.requested_model is not None and len(row.requested_model) < 300
    assert row.error is not None and len(row.error) < 1100


async def test_a_lone_surrogate_in_the_model_name_is_a_400_with_its_ledger_row(
    stack: Stack,
) -> None:
    raw = '{"model": "bad\\ud800name", "messages": [{"role": "user", "content": "hi"}]}'
    async with stack.http() as http:
        r = await http.post(CHAT, content=raw, headers=JSON_TYPE)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "model"
    assert [row.status for row in await stack.rows()] == [400]


@pytest.mark.parametrize(
    ("name", "rule", "why"),
    [
        ("backref", {"pattern": r"(a)\1", "action": "route_self"}, "RE2"),
        ("lookahead", {"pattern": r"(?=a)", "action": "route_self"}, "look-around"),
        ("long", {"pattern": "a" * 5000, "action": "route_self"}, "1000"),
        ("bad%0D%0AX-Injected:%201", {"action": "route_self"}, "name"),
        ("spaced%20name", {"action": "route_self"}, "name"),
    ],
)
async def test_a_bad_rule_is_refused_at_the_admin_api_saying_why(
    stack: Stack, name: str, rule: dict[str, Any], why: str
) -> None:
    async with stack.http() as http:
        r = await http.put(f"/admin/routing/rules/{name}", json=rule)
        assert r.status_code == 400, r.text
        assert why in r.json()["error"]["message"]
        assert (await http.get("/admin/routing")).json()["stored_rules"] == []


async def test_a_backtracking_pattern_cannot_freeze_the_loop(stack: Stack) -> None:
    rule = {"pattern": "^(a+)+$", "action": "route_self", "priority": 1}
    async with stack.http() as http:
        assert (await http.put("/admin/routing/rules/evil", json=rule)).status_code == 200
        # Hours for a backtracking engine; RE2 answers at once. The bound is generous:
        # only a frozen loop would miss it.
        with trio.fail_after(WAIT_S):
            r = await http.post(
                "/v1/route",
                json={"model": "auto", "messages": [{"role": "user", "content": "a" * 5000 + "b"}]},
            )
            assert r.status_code == 200
            assert r.json()["rule"] != "evil"
            assert (await http.get("/health")).status_code == 200


async def test_a_client_that_leaves_a_waiting_request_is_a_499_not_a_500(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, knobs=ModelKnobs(ttft_s=2))
    async with stack.http() as http:
        with trio.move_on_after(0.5):
            await http.post(CHAT, json={"model": "small", "messages": HELLO})
    with trio.fail_after(WAIT_S):
        while stack.gw.in_flight:  # noqa: ASYNC110 (a counter, not an event)
            await trio.sleep(0.01)
    [row] = await stack.rows()
    assert (row.status, row.error) == (499, "client disconnected")


def last_event(data: bytes) -> Any:
    return json.loads([e for e in data.split(b"\n\n") if e.startswith(b"data: ")][-1][6:])


async def slow_stack(nursery: trio.Nursery, tmp_path: Path, **config: Any) -> Stack:
    """Streams of 100 tokens at 10 a second: they outlast the cuts under test."""
    return await start_stack(
        nursery, tmp_path, knobs=ModelKnobs(tokens_per_s=10, reply="tok " * 100), **config
    )


STREAM_BODY = {"model": "small", "stream": True, "messages": HELLO}


async def test_a_stream_is_cut_at_max_stream_s_with_an_error_event(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await slow_stack(nursery, tmp_path, routing={"max_stream_s": 1})
    async with stack.http() as http, http.stream("POST", CHAT, json=STREAM_BODY) as r:
        with trio.fail_after(WAIT_S):
            data = await r.aread()
    assert last_event(data)["error"]["code"] == "stream_too_long"
    [row] = await stack.rows()
    assert row.status == 504 and row.error is not None and "max_stream_s" in row.error
    assert stack.gw.views.pool.value.backends["local"].in_flight == 0


async def test_at_grace_expiry_a_stream_ends_with_an_error_event_and_a_shutdown_row(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await slow_stack(nursery, tmp_path, server={"grace_s": 0.5, "port": 0})
    async with (
        httpx.AsyncClient(base_url=stack.url, timeout=WAIT_S) as http,
        http.stream("POST", CHAT, json=STREAM_BODY) as r,
    ):
        data = b""
        with trio.fail_after(WAIT_S):
            async for chunk in r.aiter_raw():
                if not data:
                    stack.gw.stop_requested.set()  # SIGTERM, once the stream is under way
                data += chunk
    assert last_event(data)["error"]["code"] == "shutdown"
    with trio.fail_after(WAIT_S):
        while stack.gw.in_flight:  # noqa: ASYNC110 (a counter, not an event)
            await trio.sleep(0.01)
    with trio.fail_after(WAIT_S):
        # The ledger stops last, after flushing its last batch into SQLite.
        while stack.gw.supervisor.child("ledger").state != "stopped":  # noqa: ASYNC110
            await trio.sleep(0.01)
    async with open_db(stack.db_path) as db:
        [row] = await recent_rows(db, 10)
    assert row.status == 503 and row.error is not None and row.error.startswith("shutdown")
