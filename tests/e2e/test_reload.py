"""Live reload: a changed config file swapped in while the gateway serves.

Each test edits the config file a running stack was started from, reloads it (POST
/admin/reload, the CLI or SIGHUP), and checks what changed on the wire with the SDK.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import tomli_w
import trio

from llmswitch.cli import main as cli_main
from tests.e2e.harness import Stack, closed_port, default_models, model, start_stack
from tests.e2e.test_access import from_lan_peer

HELLO = [{"role": "user", "content": "hello there"}]
METERED = {"metered_cloud": ["*"]}


async def reloadable(nursery: trio.Nursery, tmp_path: Path, **config: Any) -> tuple[Stack, Path]:
    path = tmp_path / "llmswitch.toml"
    return await start_stack(nursery, tmp_path, config_file=path, **config), path


def edit(path: Path, **sections: Any) -> None:
    """Replace whole top-level sections of the config file."""
    data = tomllib.loads(path.read_text("utf-8"))
    path.write_text(tomli_w.dumps(data | sections), "utf-8")


async def reload(stack: Stack, **headers: str) -> httpx.Response:
    async with stack.http() as http:
        return await http.post("/admin/reload", headers=headers)


async def debug_config(stack: Stack) -> dict[str, Any]:
    async with stack.http() as http:
        config: dict[str, Any] = (await http.get("/debug")).json()["config"]
        return config


def sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def test_streams_in_flight_finish_on_their_backend_when_a_reload_removes_it(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, path = await reloadable(nursery, tmp_path)
    lan = stack.sim("lan")
    lan.set_knobs(tokens_per_s=200, reply="tok " * 12)
    lan.hold_streams()
    client = stack.client()
    streams = [
        await client.chat.completions.create(model="coder", messages=HELLO, stream=True)
        for _ in range(3)
    ]
    firsts = [await anext(aiter(s)) for s in streams]

    # The reload removes the backend and the model the streams are on.
    config = tomllib.loads(path.read_text("utf-8"))
    edit(
        path,
        backends=[b for b in config["backends"] if b["name"] != "lan"],
        models=[m for m in config["models"] if m["id"] != "coder"],
    )
    answer = await reload(stack)
    assert answer.status_code == 200, answer.text
    assert "backends: -lan" in answer.json()["applied"]
    assert stack.gw.clients.retired == 1  # still streaming: not closed under them

    lan.release_streams()
    for first, stream in zip(firsts, streams, strict=True):
        text = (first.choices[0].delta.content or "") if first.choices else ""
        finish = None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        assert text == "tok " * 12
        assert finish == "stop"
    with trio.fail_after(5):
        while stack.gw.clients.retired:
            await stack.gw.views.pool.wait_newer(stack.gw.views.pool.version)
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="coder", messages=HELLO)
    rows = [r for r in await stack.rows() if r.chosen_model == "coder"]
    assert [r.status for r in rows] == [200, 200, 200]


async def test_a_budget_lowered_by_reload_refuses_the_next_metered_call(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, path = await reloadable(nursery, tmp_path, routing=METERED, budget={"daily_usd": 100.0})
    client = stack.client()
    await client.chat.completions.create(model="big", messages=HELLO, max_tokens=50)
    edit(path, budget={"daily_usd": 0.00001})
    assert (await reload(stack)).json()["applied"] == ["budget"]
    with pytest.raises(openai.PermissionDeniedError) as err:
        await client.chat.completions.create(model="big", messages=HELLO, max_tokens=50)
    assert err.value.code == "budget_exceeded"
    async with stack.http() as http:
        assert (await http.get("/debug")).json()["budget"]["daily_usd"] == 0.00001
    # A local model costs nothing: still served.
    await client.chat.completions.create(model="small", messages=HELLO)


async def test_a_model_added_is_served_and_a_model_removed_is_gone(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    without_coder = [m for m in default_models() if m["id"] != "coder"]
    stack, path = await reloadable(nursery, tmp_path, models=without_coder)
    client = stack.client()
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="coder", messages=HELLO)
    config = tomllib.loads(path.read_text("utf-8"))
    # A second backend on the local simulator, serving its "small" as "twin".
    twin = config["backends"][0] | {"name": "twin"}
    edit(
        path,
        backends=[*config["backends"], twin],
        models=[m for m in without_coder if m["id"] != "big"]
        + [model("coder", "lan", 60), model("twin", "twin", 20, upstream="small")],
    )
    answer = (await reload(stack)).json()
    assert answer["applied"] == ["backends: +twin", "models: +coder +twin -big"]
    assert answer["generation"] == 2
    served = await client.chat.completions.create(model="coder", messages=HELLO)
    assert served.model == "coder"
    raw = await client.chat.completions.with_raw_response.create(model="twin", messages=HELLO)
    assert raw.headers["x-router-backend"] == "twin"
    with trio.fail_after(10):
        while not stack.gw.views.health.value.backends["twin"].checked:
            await stack.gw.views.health.wait_newer(stack.gw.views.health.version)
    assert stack.gw.views.health.value.backends["twin"].up
    with pytest.raises(openai.NotFoundError):
        await client.chat.completions.create(model="big", messages=HELLO)
    ids = {m.id async for m in client.models.list()}
    assert "coder" in ids and "big" not in ids


async def test_a_client_key_added_works_and_a_key_removed_gets_401(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    old = {"name": "old", "key_sha256": sha256("old-key")}
    stack, path = await reloadable(nursery, tmp_path, clients=[old])

    def sdk(key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=key, max_retries=0)

    await sdk("old-key").chat.completions.create(model="small", messages=HELLO)
    edit(path, clients=[{"name": "new", "key_sha256": sha256("new-key")}])
    assert (await reload(stack)).json()["applied"] == ["clients: +new -old"]
    await sdk("new-key").chat.completions.create(model="small", messages=HELLO)
    with pytest.raises(openai.AuthenticationError) as err:
        await sdk("old-key").chat.completions.create(model="small", messages=HELLO)
    assert err.value.code == "invalid_api_key"


async def test_an_invalid_config_is_refused_with_its_reason_and_the_old_one_serves(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, path = await reloadable(nursery, tmp_path)
    good = path.read_text("utf-8")
    config = tomllib.loads(good)
    edit(path, models=[*config["models"], model("ghost", "nowhere", 50)])
    answer = await reload(stack)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "config_invalid"
    assert "models.ghost.backend: no backend named 'nowhere'" in error["message"]
    state = await debug_config(stack)
    assert state["generation"] == 1
    assert "no backend named 'nowhere'" in state["last_refusal"]["reason"]
    served = await stack.client().chat.completions.create(model="coder", messages=HELLO)
    assert served.model == "coder"

    path.write_text("[server\nport = 1", "utf-8")  # not TOML at all
    answer = await reload(stack)
    assert answer.status_code == 400 and "not valid TOML" in answer.json()["error"]["message"]
    async with stack.http() as http:
        health = (await http.get("/health")).json()["config"]
    assert health["generation"] == 1 and health["last_refusal_at"] is not None
    assert "reason" not in health  # /health is public: the reason is in /debug only

    path.write_text(good, "utf-8")
    answer = await reload(stack)
    assert answer.json() == {
        "status": "unchanged",
        "generation": 1,
        "applied": [],
        "needs_restart": [],
    }


async def test_a_config_that_drops_a_model_a_stored_rule_routes_to_is_refused(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, path = await reloadable(nursery, tmp_path)
    async with stack.http() as http:
        rule = {"pattern": "deploy", "action": "route", "target": "coder", "priority": 1}
        assert (await http.put("/admin/routing/rules/deploys", json=rule)).status_code == 200
    config = tomllib.loads(path.read_text("utf-8"))
    edit(path, models=[m for m in config["models"] if m["id"] != "coder"])
    answer = await reload(stack)
    assert answer.status_code == 400
    assert (
        "rule deploys (stored at run time) routes to 'coder'" in answer.json()["error"]["message"]
    )
    served = await stack.client().chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "deploy it"}]
    )
    assert served.model == "coder"


async def test_a_change_that_needs_a_restart_is_reported_and_not_applied(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, path = await reloadable(nursery, tmp_path)
    config = tomllib.loads(path.read_text("utf-8"))
    edit(path, server=config["server"] | {"port": 1, "max_in_flight": 7})
    answer = (await reload(stack)).json()
    assert answer["applied"] == ["server.max_in_flight"]
    assert answer["needs_restart"] == ["server.port: 0 -> 1"]
    assert stack.gw.config.server.port == 0 and stack.gw.config.server.max_in_flight == 7
    await stack.client().chat.completions.create(model="small", messages=HELLO)


async def test_reload_takes_no_parameters_and_needs_the_admin(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, path = await reloadable(nursery, tmp_path)
    async with stack.http() as http:
        bad = await http.post("/admin/reload", json={"path": "/etc/passwd"})
        assert bad.status_code == 400
        assert (await http.post("/admin/reload", content=b"not json")).status_code == 400
        big = await http.post("/admin/reload", content=b"{" + b" " * 4096 + b"}")
        assert big.status_code == 413
        assert (await http.post("/admin/reload", json={})).status_code == 200
    async with from_lan_peer(stack) as lan:
        refused = await lan.post("/admin/reload")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "admin_loopback_only"

    # With an admin token set (by a reload), every peer needs it, loopback included.
    monkeypatch.setenv("RELOAD_TEST_TOKEN", "s3cret-admin")
    config = tomllib.loads(path.read_text("utf-8"))
    edit(path, server=config["server"] | {"admin_token_env": "RELOAD_TEST_TOKEN"})
    assert (await reload(stack)).status_code == 200
    assert (await reload(stack)).status_code == 401
    async with from_lan_peer(stack, authorization="Bearer s3cret-admin") as lan:
        assert (await lan.post("/admin/reload")).status_code == 200
    assert (await reload(stack, authorization="Bearer s3cret-admin")).status_code == 200


async def test_the_reload_cli_prints_one_line_and_exits_2_on_a_refusal(
    nursery: trio.Nursery, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, path = await reloadable(nursery, tmp_path, budget={"daily_usd": 5.0})
    edit(path, budget={"daily_usd": 1.0})

    def cli(*argv: str) -> int:
        return cli_main(["reload", "--config", str(path), *argv])

    assert await trio.to_thread.run_sync(cli, "--url", stack.url) == 0
    assert capsys.readouterr().out == "reloaded: generation 2 (budget)\n"
    assert stack.gw.config.budget.daily_usd == 1.0

    edit(path, budget={"daily_usd": -1})
    assert await trio.to_thread.run_sync(cli, "--url", stack.url) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("llmswitch: reload refused: ") and "budget.daily_usd" in err

    port = closed_port()
    assert await trio.to_thread.run_sync(cli, "--url", f"http://127.0.0.1:{port}") == 1
    assert "cannot reach the gateway" in capsys.readouterr().err


async def test_sighup_reloads_a_served_gateway(tmp_path: Path) -> None:
    """A real ``llmswitch serve`` process: SIGHUP applies the edited file, and a bad file
    is refused while the process keeps serving."""
    backend = {"name": "box", "base_url": f"http://127.0.0.1:{closed_port()}/v1"}
    path = tmp_path / "llmswitch.toml"
    path.write_text(
        tomli_w.dumps(
            {
                "server": {"port": 0},
                "store": {"path": str(tmp_path / "ledger.db")},
                "backends": [backend],
                "models": [{"id": "one", "backend": "box"}],
            }
        ),
        "utf-8",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-m", "llmswitch", "serve", "--config", str(path)],
            stderr=stderr,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
    try:
        with trio.fail_after(30):
            url = await _listening_url(proc, log)
            async with httpx.AsyncClient(base_url=url) as http:
                edit(
                    path, models=[{"id": "one", "backend": "box"}, {"id": "two", "backend": "box"}]
                )
                proc.send_signal(signal.SIGHUP)
                await _until(http, lambda state: state["generation"] == 2)
                ids = {m["id"] for m in (await http.get("/v1/models")).json()["data"]}
                assert {"one", "two"} <= ids

                path.write_text("not = [toml", "utf-8")
                proc.send_signal(signal.SIGHUP)
                await _until(http, lambda state: state["last_refusal"] is not None)
                assert (await http.get("/v1/models")).status_code == 200
                assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(15):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _listening_url(proc: trio.Process, log: Path) -> str:
    while True:
        seen = await trio.Path(log).read_text("utf-8", errors="replace")
        assert proc.poll() is None, f"the gateway exited: {seen}"
        found = re.search(r"listening on (http://[0-9.]+:\d+)", seen)
        if found:
            return found.group(1)
        await trio.sleep(0.05)  # another process's log: nothing to wait on here


async def _until(http: httpx.AsyncClient, done: Callable[[dict[str, Any]], bool]) -> None:
    """Poll the other process's /debug until its reload state is ``done``."""
    while not done((await http.get("/debug")).json()["config"]):  # noqa: ASYNC110 (another process)
        await trio.sleep(0.05)  # another process's log: nothing to wait on here


async def test_a_profile_changed_by_reload_routes_the_next_auto_request(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack, path = await reloadable(nursery, tmp_path)
    client = stack.client()
    ask = [{"role": "user", "content": "explain how a hash map handles collisions"}]
    before = await client.chat.completions.with_raw_response.create(model="auto", messages=ask)
    assert before.headers["x-router-profile"] == "balanced"
    edit(
        path,
        routing={"profile": "thrifty"},
        profiles={"thrifty": {"floor_shift": -100, "ordering": "cost"}},
    )
    assert (await reload(stack)).json()["applied"] == ["routing", "profiles"]
    after = await client.chat.completions.with_raw_response.create(model="auto", messages=ask)
    assert after.headers["x-router-profile"] == "thrifty"
    assert after.headers["x-router-model"] == "small"  # no floor: the cheapest local model
    async with stack.http() as http:
        assert (await http.get("/admin/routing")).json()["profile"] == "thrifty"
