"""What real agent harnesses sent, replayed through the gateway: routed on the user's words.

The requests are the ones captured in tests/data/harness (headers and bodies as the
harnesses sent them, to a capturing server on loopback); here they go to a real gateway
in front of the simulators.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.e2e.harness import Stack, model, start_stack
from tests.routing.harness_requests import captured, chat_request

#: Headers that belonged to the capture's connection, not to the harness.
_CONNECTION = frozenset(
    {"host", "content-length", "authorization", "x-api-key", "accept-encoding", "connection"}
)
CONTEXT = 32_768


@pytest.fixture
async def stack(nursery: trio.Nursery, tmp_path: Path) -> Stack:
    models = [
        model("small", "local", 20, context_window=CONTEXT),
        model("medium", "local", 45, context_window=CONTEXT),
        model("coder", "lan", 60, context_window=CONTEXT),
        model("big", "cloud", 90, context_window=200_000, cost_input_per_mtok=1.0),
    ]
    return await start_stack(nursery, tmp_path, models=models, routing={"self_model": "small"})


async def replay(http: httpx.AsyncClient, name: str, path: str | None = None) -> httpx.Response:
    request = captured(name)
    headers = {k: v for k, v in request["headers"].items() if k not in _CONNECTION}
    body: dict[str, Any] = request["body"]
    resp = await http.post(path or request["path"], json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp


async def test_harness_turns_route_on_the_users_words(stack: Stack) -> None:
    async with stack.http() as http:
        for name in (
            "openclaw/hello_00",
            "openclaw/heartbeat_constructed",
            "openclaw/ask_00",
            "opencode/ask_00",
            "opencode/ask_01",
            "claude-code/title_constructed",
        ):
            await replay(http, name)
    rows = {r.request_id: r for r in await stack.rows()}
    by_order = sorted(rows.values(), key=lambda r: r.ts)
    got = [(r.harness, r.rule, r.chosen_model) for r in by_order]
    assert got[:2] == [("openclaw", "greeting", "small"), ("openclaw", "heartbeat", "small")]
    assert got[2][:2] == ("openclaw", "catch-all")
    assert got[3] == ("opencode", "side-request", "small")
    assert got[4][:2] == ("opencode", "catch-all")
    assert got[5] == ("claude-code", "side-request", "small")
    assert all(r.status == 200 for r in by_order)
    first = captured("openclaw/hello_00")["body"]["messages"][1]["content"]
    assert by_order[0].conversation == "openclaw:" + first.split("sessionId=")[1].split(" ")[0]
    session = captured("opencode/ask_01")["headers"]["x-session-id"]
    assert by_order[3].conversation == by_order[4].conversation == f"opencode:{session}"


async def test_opencode_32k_max_tokens_is_clamped_not_a_reason_to_go_to_the_cloud(
    stack: Stack,
) -> None:
    """Its 32,000 max_tokens plus a 10k-token prompt overflow every 32k model: clamp it."""
    async with stack.http() as http:
        await replay(http, "opencode/ask_01")
    (row,) = await stack.rows()
    # "Explain in two sentences why the sky is blue." is simple or medium: a local model.
    assert row.chosen_model in ("small", "medium")
    assert row.output_cap is not None and 0 < row.output_cap < 32_000
    assert stack.sim("cloud").stats.by_path["/v1/chat/completions"] == 0


async def test_nothing_in_an_openclaw_envelope_is_sensitive(stack: Stack) -> None:
    async with stack.http() as http:
        request = captured("openclaw/ask_00")
        resp = await http.post("/v1/route", json=request["body"], headers={})
    cls = resp.json()["classification"]
    assert cls["sensitive"] is False
    assert cls["task_type"] != "tool-use"  # tools are offered; the ask is a question


#: Every capture that is a heartbeat or a side request (a title), by what it contains.
SELF_TURNS = [
    ("openclaw/heartbeat_constructed", "heartbeat"),
    ("claude-code/title_constructed", "side-request"),
    ("opencode/hello_00", "side-request"),
    ("opencode/ask_00", "side-request"),
    ("opencode/tool_00", "side-request"),
]


@pytest.mark.parametrize(("name", "rule"), SELF_TURNS)
async def test_heartbeats_and_side_requests_go_to_the_self_model_without_any_header(
    stack: Stack, name: str, rule: str
) -> None:
    """No User-Agent, no X-Source, no session header: the content alone says what it is."""
    _, body = chat_request(name)
    async with stack.http() as http:
        resp = await http.post("/v1/route", json=body, headers={"user-agent": "curl/8"})
    advice = resp.json()
    assert (resp.status_code, advice["tier"], advice["rule"]) == (200, "rules", rule)
    assert advice["model"] == "small"
