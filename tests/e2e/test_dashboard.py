"""The dashboard's server side over real sockets: its lock, the login cookie, the live
event stream (shape, cap, drain) and the bounded request-log read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
import trio

from llmswitch.front.access import UI_COOKIE
from llmswitch.front.events import MAX_SUBSCRIBERS
from llmswitch.front.lockout import GUESSES
from tests.e2e.harness import Stack, start_stack
from tests.e2e.test_access import from_lan_peer

ADMIN = "dashboard-admin-token"
HELLO = [{"role": "user", "content": "hello there"}]


async def token_stack(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Stack:
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    server = {"host": "127.0.0.1", "port": 0, "grace_s": 10, "admin_token_env": "ADMIN_TOKEN"}
    return await start_stack(nursery, tmp_path, server=server)


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, object]]]:
    """(event name, data) from an SSE response, as they arrive."""
    name = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            yield name, json.loads(line[6:])


async def test_without_a_token_the_dashboard_answers_loopback_peers_only(stack: Stack) -> None:
    async with from_lan_peer(stack) as lan, stack.http() as local:
        for path in ("/ui", "/admin/events", "/admin/requests"):
            refused = await lan.get(path)
            assert refused.status_code == 403, path
        assert "loopback" in (await lan.get("/ui")).text
        assert (await lan.post("/admin/route", json={"model": "auto", "messages": HELLO})).is_error
        # The assets are our own code and hold no data: open, so a login form can load.
        assert (await lan.get("/ui/static/app.js")).status_code == 200
        page = await local.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert 'id="view-playground"' in page.text
        assert 'id="logout"' not in page.text
        # Loopback needs no token: a login has nothing to check.
        login = await local.post("/ui/login", json={"token": "x"})
        assert login.status_code == 400


async def test_a_token_opens_the_dashboard_directly_or_through_the_login_cookie(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await token_stack(nursery, tmp_path, monkeypatch)
    async with from_lan_peer(stack) as lan:
        form = await lan.get("/ui")
        assert form.status_code == 401
        assert 'id="login"' in form.text and 'id="boot"' not in form.text
        assert (await lan.get("/admin/events")).status_code == 401
        wrong = await lan.get("/ui", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        direct = await lan.get("/ui", headers={"Authorization": f"Bearer {ADMIN}"})
        assert direct.status_code == 200 and 'id="logout"' in direct.text

        assert (await lan.post("/ui/login", json={"token": "nope"})).status_code == 401
        assert (await lan.post("/ui/login", json={"token": 5})).status_code == 401
        assert (await lan.post("/ui/login", content=b"token")).status_code == 400
        assert not lan.cookies
        login = await lan.post("/ui/login", json={"token": ADMIN})
        assert login.status_code == 204
        set_cookie = login.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        assert ADMIN not in set_cookie
        assert (await lan.get("/ui")).status_code == 200
        assert (await lan.get("/admin/routing")).status_code == 200

        # Writes on the cookie only from our own origin (a page of another site cannot).
        origin = stack.url
        profile = {"profile": "eco"}
        no_origin = await lan.put("/admin/routing/profile", json=profile)
        assert no_origin.status_code == 401
        other = await lan.put(
            "/admin/routing/profile", json=profile, headers={"Origin": "http://evil.example"}
        )
        assert other.status_code == 401
        ours = await lan.put("/admin/routing/profile", json=profile, headers={"Origin": origin})
        assert ours.status_code == 200, ours.text
        assert ours.json()["profile"] == "eco"

        lan.cookies.clear()
        lan.cookies.set(UI_COOKIE, "0" * 64)
        assert (await lan.get("/ui")).status_code == 401


async def test_the_event_stream_sends_live_state_and_ends_on_drain(stack: Stack) -> None:
    async with stack.http() as http, http.stream("GET", "/admin/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        name, state = await anext(stream)
        assert name == "state"
        actors = {a["name"] for a in state["supervisor"]["actors"]}  # type: ignore[index]
        assert {"ledger", "router", "pool", "health"} <= actors
        assert set(state["backends"]) == {"local", "lan", "cloud"}  # type: ignore[arg-type]
        assert state["ledger_rows"] == 0
        await stack.client().chat.completions.create(model="small", messages=HELLO)  # type: ignore[arg-type]
        await stack.rows()
        with trio.fail_after(10):
            async for _name, state in stream:
                if state["ledger_rows"] == 1 and "small" in state["models"]:  # type: ignore[operator]
                    break
        stack.gw.stop_requested.set()
        with trio.fail_after(10):
            rest = [name async for name, _ in stream]
        assert rest[-1] == "bye"


async def subscribe_when_free(http: httpx.AsyncClient) -> None:
    """Subscribe once a place is free (a closed stream is noticed asynchronously)."""
    with trio.fail_after(10):
        while True:
            async with http.stream("GET", "/admin/events") as response:
                if response.status_code == 200:
                    return
                assert response.status_code == 503
            await trio.sleep(0.05)


async def test_live_subscribers_are_capped_and_a_closed_one_frees_its_place(
    stack: Stack,
) -> None:
    async with AsyncExitStack() as streams, stack.http() as http:
        open_ones = []
        for _ in range(MAX_SUBSCRIBERS):
            response = await streams.enter_async_context(http.stream("GET", "/admin/events"))
            assert response.status_code == 200
            open_ones.append(response)
        async with stack.http() as extra:
            refused = await extra.get("/admin/events")
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "too_many_subscribers"
            await open_ones[0].aclose()
            await subscribe_when_free(extra)


async def test_the_request_log_filters_and_bounds_its_query(stack: Stack) -> None:
    client = stack.client()
    await client.chat.completions.create(model="small", messages=HELLO)  # type: ignore[arg-type]
    await client.chat.completions.create(model="coder", messages=HELLO)  # type: ignore[arg-type]
    async with stack.http() as http:
        await http.post("/v1/chat/completions", json={"model": "no-such", "messages": HELLO})
        await stack.rows()
        every = (await http.get("/admin/requests")).json()["requests"]
        assert [r["chosen_model"] for r in every][1:] == ["coder", "small"]
        coder = (await http.get("/admin/requests", params={"model": "coder"})).json()
        assert [r["chosen_model"] for r in coder["requests"]] == ["coder"]
        assert coder["requests"][0]["reason"]
        ok = (await http.get("/admin/requests", params={"status": "200", "limit": "1"})).json()
        assert [r["chosen_model"] for r in ok["requests"]] == ["coder"]
        failed = (await http.get("/admin/requests", params={"status": every[0]["status"]})).json()
        assert [r["requested_model"] for r in failed["requests"]] == ["no-such"]
        for params, param in (
            ({"limit": "0"}, "limit"),
            ({"limit": "501"}, "limit"),
            ({"limit": "-1"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"status": "2000"}, "status"),
            ({"status": "ok"}, "status"),
            ({"client": "x" * 201}, "client"),
            ({"since": "7d"}, "since"),
        ):
            refused = await http.get("/admin/requests", params=params)
            assert refused.status_code == 400, params
            assert refused.json()["error"]["param"] == param


async def test_a_peer_that_keeps_guessing_the_token_is_made_to_wait(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await token_stack(nursery, tmp_path, monkeypatch)
    async with from_lan_peer(stack) as lan:
        for _ in range(GUESSES):
            assert (await lan.post("/ui/login", json={"token": "nope"})).status_code == 401
        # The right token, too late: guessing on would learn nothing.
        locked = await lan.post("/ui/login", json={"token": ADMIN})
        assert locked.status_code == 429
        assert int(locked.headers["Retry-After"]) >= 1
        assert locked.json()["error"]["code"] == "too_many_wrong_credentials"
        bearer = {"Authorization": f"Bearer {ADMIN}"}
        assert (await lan.get("/admin/routing", headers=bearer)).status_code == 429
        assert (await lan.get("/health")).status_code == 200  # no credential: not slowed
    async with httpx.AsyncClient(base_url=stack.url) as local:  # another peer
        assert (await local.get("/admin/routing", headers=bearer)).status_code == 200
