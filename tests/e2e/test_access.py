"""Who may use and who may steer the gateway: client keys, the admin lock, hosts, CSRF."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import trio

from llmswitch.cli import main
from llmswitch.front.access import KeyRing, bind_refusal
from llmswitch.main import StartRefused, check_exposure
from tests.e2e.harness import Stack, stack_config, start_stack

HELLO = [{"role": "user", "content": "hello there"}]
IDE_KEY = "ide-secret-key"
BOT_KEY = "bot-secret-key"
ADMIN = "admin-token-for-tests"


async def keyed_stack(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **config: object
) -> Stack:
    """ "ide" by its key in the environment, "bot" by the key's SHA-256 in the config."""
    monkeypatch.setenv("IDE_KEY", IDE_KEY)
    clients = [
        {"name": "ide", "key_env": "IDE_KEY"},
        {"name": "bot", "key_sha256": hashlib.sha256(BOT_KEY.encode()).hexdigest()},
    ]
    return await start_stack(nursery, tmp_path, clients=clients, **config)


def from_lan_peer(stack: Stack, **headers: str) -> httpx.AsyncClient:
    """A client whose connections come from 127.0.0.2: a peer that is not this machine."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    return httpx.AsyncClient(base_url=stack.url, transport=transport, headers=headers, timeout=30)


async def test_with_keys_every_model_door_needs_one_in_its_own_error_shape(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await keyed_stack(nursery, tmp_path, monkeypatch)
    for key in ("wrong-key", "-"):
        # "-": the SDK insists on a key; a header without one is checked below.
        client = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as err:
            await client.chat.completions.create(model="small", messages=HELLO)
        assert err.value.code == "invalid_api_key"
        assert err.value.response.headers["www-authenticate"].startswith("Bearer")
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    claude = anthropic.AsyncAnthropic(base_url=stack.url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as aerr:
        await claude.messages.create(model="small", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    assert aerr.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert "www-authenticate" in aerr.value.response.headers
    async with stack.http() as http:
        route = await http.post("/v1/route", json={"model": "auto", "messages": HELLO})
        assert route.status_code == 401
        keyless = await http.post(
            "/v1/chat/completions", json={"model": "small", "messages": HELLO}
        )
        assert keyless.status_code == 401
        assert keyless.json()["error"]["message"].startswith("an API key is required")
        # Every door under /v1/, including ones added later, and unknown paths there.
        assert (await http.post("/v1/responses", json={})).status_code == 401
        assert (await http.post("/v1/messages/count_tokens", json={})).status_code == 401
        assert (await http.post("/v1/not-yet-a-door", json={})).status_code == 401
        # Health stays open for probes.
        assert (await http.get("/health")).status_code == 200
    rows = await stack.rows()
    assert [r.status for r in rows] == [401] * 5
    assert all("wrong-key" not in (r.error or "") for r in rows)


async def test_keys_by_env_or_sha256_by_bearer_in_any_case_or_x_api_key(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await keyed_stack(nursery, tmp_path, monkeypatch)
    ide = openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=IDE_KEY, max_retries=0)
    await ide.chat.completions.create(model="small", messages=HELLO)
    bot = anthropic.AsyncAnthropic(base_url=stack.url, api_key=BOT_KEY, max_retries=0)
    await bot.messages.create(model="small", max_tokens=20, messages=HELLO)  # type: ignore[arg-type]
    body = {"model": "small", "messages": HELLO}
    async with stack.http() as http:
        for scheme in ("bearer", "BEARER", "Bearer"):
            headers = {"Authorization": f"{scheme} {IDE_KEY}"}
            r = await http.post("/v1/chat/completions", json=body, headers=headers)
            assert r.status_code == 200, r.text
        basic = {"Authorization": f"Basic {IDE_KEY}"}
        r = await http.post("/v1/chat/completions", json=body, headers=basic)
        assert r.status_code == 401
    rows = await stack.rows()
    assert [r.client for r in rows] == ["ide", "bot", "ide", "ide", "ide", "127.0.0.1"]


async def test_admin_answers_loopback_only_without_a_token(stack: Stack) -> None:
    async with stack.http() as local:
        assert (await local.get("/debug")).status_code == 200
        assert (await local.get("/admin/routing")).status_code == 200
    async with from_lan_peer(stack) as lan:
        for method, path in [
            ("GET", "/debug"),
            ("GET", "/metrics"),
            ("GET", "/admin/routing"),
            ("PUT", "/admin/routing/profile"),
            ("PUT", "/admin/routing/rules/evil"),
        ]:
            r = await lan.request(method, path, json={"profile": "eco", "action": "reject"})
            assert r.status_code == 403, (path, r.text)
            assert r.json()["error"]["code"] == "admin_loopback_only"
        # Model doors are not the operator's: a LAN peer uses them (no keys configured).
        r = await lan.post("/v1/chat/completions", json={"model": "small", "messages": HELLO})
        assert r.status_code == 200
    async with stack.http() as local:
        assert (await local.get("/admin/routing")).json()["stored_rules"] == []


async def test_the_admin_token_opens_admin_from_any_peer_and_nothing_else_does(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
    stack = await keyed_stack(
        nursery, tmp_path, monkeypatch, server={"admin_token_env": "ADMIN_TOKEN", "port": 0}
    )
    async with from_lan_peer(stack, Authorization=f"bearer {ADMIN}") as lan:
        assert (await lan.get("/debug")).status_code == 200
        r = await lan.put("/admin/routing/profile", json={"profile": "eco"})
        assert r.status_code == 200 and r.json()["profile"] == "eco"
    # Loopback is not enough once a token is set; a client key is not an admin token.
    for headers in ({}, {"Authorization": f"Bearer {IDE_KEY}"}, {"Authorization": "Bearer x"}):
        async with stack.http() as local:
            r = await local.get("/admin/routing", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_admin_token"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert ADMIN not in r.text


async def test_metrics_can_be_opened_for_a_scraper(nursery: trio.Nursery, tmp_path: Path) -> None:
    stack = await start_stack(nursery, tmp_path, server={"metrics_open": True, "port": 0})
    async with from_lan_peer(stack) as lan:
        assert (await lan.get("/metrics")).status_code == 200
        assert (await lan.get("/debug")).status_code == 403


async def test_a_foreign_host_header_is_refused_against_dns_rebinding(stack: Stack) -> None:
    body = {"model": "small", "messages": HELLO}
    async with stack.http() as http:
        for host in ("evil.example", "evil.example:8080", "localhost.evil.example"):
            r = await http.post("/v1/chat/completions", json=body, headers={"Host": host})
            assert r.status_code == 403, host
            assert r.json()["error"]["code"] == "host_not_allowed"
            r = await http.put(
                "/admin/routing/profile", json={"profile": "eco"}, headers={"Host": host}
            )
            assert r.status_code == 403
        # Names of this machine and IP literals (no DNS involved) are served.
        for host in ("localhost:8080", "127.0.0.1", "[::1]:80", "192.168.1.20:8080"):
            r = await http.post("/v1/chat/completions", json=body, headers={"Host": host})
            assert r.status_code == 200, host
        assert (await http.get("/admin/routing")).json()["profile"] == "balanced"


async def test_a_configured_host_list_replaces_the_default_names(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    server = {"allowed_hosts": ["llm.home.arpa"], "port": 0}
    stack = await start_stack(nursery, tmp_path, server=server)
    async with stack.http() as http:
        assert (
            await http.get("/health", headers={"Host": "llm.home.arpa:8080"})
        ).status_code == 200
        assert (await http.get("/health", headers={"Host": "localhost"})).status_code == 403


async def test_a_cross_origin_simple_post_is_refused_as_csrf(stack: Stack) -> None:
    body = '{"model": "small", "messages": [{"role": "user", "content": "hi"}]}'
    origin = {"Origin": "http://evil.example"}
    async with stack.http() as http:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            headers = origin | {"Content-Type": ctype}
            r = await http.post("/v1/chat/completions", content=body, headers=headers)
            assert r.status_code == 403, ctype
            assert r.json()["error"]["code"] == "cross_origin_refused"
            r = await http.put(
                "/admin/routing/profile", content='{"profile": "eco"}', headers=headers
            )
            assert r.status_code == 403
        # JSON needs a CORS preflight, which the gateway never grants: it may pass here.
        r = await http.post(
            "/v1/chat/completions",
            content=body,
            headers=origin | {"Content-Type": "application/json"},
        )
        assert r.status_code == 200
        assert (await http.get("/admin/routing")).json()["profile"] == "balanced"


def test_a_lan_bind_without_auth_refuses_to_start_unless_open_lan(tmp_path: Path) -> None:
    exposed = stack_config({}, tmp_path / "db", models=[], server={"host": "0.0.0.0"})
    with pytest.raises(StartRefused, match=r"refusing to listen on 0\.0\.0\.0") as err:
        check_exposure(exposed, KeyRing())
    assert "\n" not in str(err.value)
    for server in (
        {"host": "0.0.0.0", "open_lan": True},
        {"host": "127.0.0.1"},
        {"host": "::1"},
        {"host": "localhost"},
    ):
        assert (
            bind_refusal(stack_config({}, tmp_path / "db", models=[], server=server), KeyRing())
            is None
        )
    keyed = stack_config(
        {},
        tmp_path / "db",
        models=[],
        server={"host": "0.0.0.0"},
        clients=[{"name": "a", "key_sha256": "0" * 64}],
    )
    check_exposure(keyed, KeyRing.build(keyed.clients))


def test_open_lan_and_unpriced_cloud_models_warn_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models = [{"id": "free-cloud", "backend": "cloud", "quality": 80}]
    backends = [{"name": "cloud", "base_url": "http://127.0.0.1:9/v1", "locality": "cloud"}]
    config = stack_config(
        {},
        tmp_path / "db",
        models=models,
        extra_backends=backends,
        server={"host": "0.0.0.0", "open_lan": True},
    )
    with caplog.at_level(logging.WARNING, logger="llmswitch.main"):
        check_exposure(config, KeyRing())
    text = caplog.text
    assert "server.open_lan = true: 0.0.0.0:8080 serves anyone" in text
    assert "cloud models without a price (free-cloud): excluded until priced" in text


def test_serve_on_a_lan_address_without_auth_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "llmswitch.toml"
    config.write_text(
        f'[server]\nhost = "0.0.0.0"\nport = 0\n[store]\npath = "{tmp_path / "db"}"\n'
        '[[backends]]\nname = "b"\nbase_url = "http://127.0.0.1:1/v1"\n'
        '[[models]]\nid = "m"\nbackend = "b"\n',
        encoding="utf-8",
    )
    assert main(["serve", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmswitch: refusing to listen on 0.0.0.0") and err.count("\n") == 1
