"""Client keys made at run time: by the CLI or the admin API, stored hashed, revocable."""

from __future__ import annotations

import hashlib
import io
import sqlite3
from pathlib import Path

import openai
import pytest
import trio

from llmswitch.config import KeyPolicy
from llmswitch.store.db import open_db
from llmswitch.store.keys import create_key
from tests.e2e.harness import Stack, start_stack
from tests.unit.test_cli import cfg, run  # noqa: F401  (cfg is a fixture)

HELLO = [{"role": "user", "content": "hello there"}]


def stored_text(db: Path) -> str:
    """Everything in the client_keys table, as text."""
    with sqlite3.connect(db) as conn:
        return repr(conn.execute("SELECT * FROM client_keys").fetchall())


def test_keys_create_list_revoke_and_hash_on_the_command_line(
    cfg: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = run(
        capsys, "keys", "create", "ide", "--models", "tiny", "--rpm", "5", "--config", cfg
    )
    assert code == 0 and "shown only now" in err
    key = out.strip()
    assert key.startswith("lsk-") and len(key) > 40
    db = Path(cfg).parent / "store.db"
    assert key not in stored_text(db)
    assert hashlib.sha256(key.encode()).hexdigest() in stored_text(db)
    code, out, _ = run(capsys, "keys", "list", "--config", cfg)
    assert code == 0 and "ide" in out and "models=('tiny',)" in out and key not in out
    assert run(capsys, "keys", "create", "ide", "--config", cfg)[0] == 1  # exists
    assert run(capsys, "keys", "create", "bad name", "--config", cfg)[0] == 2
    assert run(capsys, "keys", "create", "p", "--force-profile", "nope", "--config", cfg)[0] == 1
    assert run(capsys, "keys", "revoke", "ide", "--config", cfg)[0] == 0
    assert run(capsys, "keys", "revoke", "ide", "--config", cfg)[0] == 1
    assert "(no client keys)" in run(capsys, "keys", "list", "--config", cfg)[1]
    monkeypatch.setattr("sys.stdin", io.StringIO("my-key\n"))
    code, out, _ = run(capsys, "keys", "hash")
    assert out.strip() == hashlib.sha256(b"my-key").hexdigest()


async def create(stack: Stack, name: str, **rights: object) -> str:
    async with stack.http() as http:
        r = await http.post("/admin/keys", json={"name": name, **rights})
    assert r.status_code == 201, r.text
    key: str = r.json()["key"]
    return key


def sdk(stack: Stack, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=stack.url + "/v1", api_key=key, max_retries=0)


async def test_keys_through_the_admin_api_gate_the_model_doors(stack: Stack) -> None:
    # No key yet: anyone may ask.
    await stack.client().chat.completions.create(model="small", messages=HELLO)
    ide = await create(stack, "ide", models=["small"], rpm=100)
    bot = await create(stack, "bot")
    with pytest.raises(openai.AuthenticationError):
        await stack.client().chat.completions.create(model="small", messages=HELLO)
    await sdk(stack, ide).chat.completions.create(model="small", messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError) as err:
        await sdk(stack, ide).chat.completions.create(model="coder", messages=HELLO)
    assert err.value.code == "key_not_allowed"
    async with stack.http() as http:
        listed = (await http.get("/admin/keys")).json()["keys"]
        assert [(k["name"], k["source"]) for k in listed] == [("bot", "store"), ("ide", "store")]
        assert ide not in str(listed) and bot not in str(listed)
        assert (await http.post("/admin/keys", json={"name": "ide"})).status_code == 409
        for bad in ({"name": "a b"}, {"name": "x", "rpm": -1}, {"name": "x", "nope": 1}, [1]):
            assert (await http.post("/admin/keys", json=bad)).status_code == 400, bad
        assert (await http.delete("/admin/keys/ide")).status_code == 200
        assert (await http.delete("/admin/keys/ide")).status_code == 404
    with pytest.raises(openai.AuthenticationError):
        await sdk(stack, ide).chat.completions.create(model="small", messages=HELLO)
    await sdk(stack, bot).chat.completions.create(model="small", messages=HELLO)
    rows = await stack.rows()
    assert [(r.client, r.status) for r in rows] == [
        ("127.0.0.1", 200),
        ("127.0.0.1", 401),
        ("ide", 200),
        ("ide", 403),
        ("127.0.0.1", 401),
        ("bot", 200),
    ]
    assert all(k not in (r.error or "") for r in rows for k in (ide, bot))


async def test_a_key_the_cli_writes_is_picked_up_by_a_running_gateway(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path)
    async with open_db(stack.db_path) as db:
        key = await create_key(db, "cron", KeyPolicy(rpm=1))
    with trio.fail_after(10):
        while not stack.gw.keys.value.required:  # noqa: ASYNC110 (the keys actor polls)
            await trio.sleep(0.05)
    await sdk(stack, key).chat.completions.create(model="small", messages=HELLO)
    # A runtime key's own rpm holds too.
    with pytest.raises(openai.RateLimitError):
        await sdk(stack, key).chat.completions.create(model="small", messages=HELLO)
