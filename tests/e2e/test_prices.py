"""`llmswitch prices sync` reads LiteLLM's list (a trimmed real copy) from a file or a
loopback URL, shows the diff, and stores the overlay only with --yes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from llmswitch.cli import main, prices
from llmswitch.config import load_config
from llmswitch.providers.catalogue import Entry, builtin
from llmswitch.providers.pricelist import Wanted, entry_of, match

FIXTURE = Path(__file__).parents[1] / "data/providers/litellm/model_prices_and_context_window.json"


def write(tmp_path: Path) -> str:
    path = tmp_path / "llmswitch.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n'
        '[[backends]]\nname = "oa"\npreset = "openai"\n'
        '[[backends]]\nname = "mistral"\npreset = "mistral"\n'
        '[[models]]\nid = "o3-mini"\nbackend = "oa"\n'  # not catalogued: priced by the sync
        '[[models]]\nid = "mistral-large-latest"\nbackend = "mistral"\n'
        '[[models]]\nid = "large"\nupstream = "mistral-large-latest"\nbackend = "mistral"\n'
        "cost_output_per_mtok = 9.0\n",
        encoding="utf-8",
    )
    return str(path)


def sync(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["prices", "sync", *args, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def test_a_file_shows_the_diff_and_yes_stores_it_under_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path)
    code, report, _ = sync(capsys, str(FIXTURE), "--config", config)
    assert code == 0 and not report["applied"]
    changed = {
        c["model"]: {f: (old, new) for f, old, new in c["changes"]} for c in report["changes"]
    }
    assert changed["mistral-large-latest"]["input_per_mtok"] == (2.0, 0.5)
    assert changed["deepseek-chat"] == {"context_window": (128000, 131072)}
    assert changed["o3-mini"]["output_per_mtok"] == (None, 4.4)
    assert "gpt-4o" not in changed  # the list agrees with the shipped catalogue
    # Only Groq's own key would do: another host's llama-3.3-70b-versatile is another price.
    assert "llama-3.3-70b-versatile" in report["missing"]
    assert not (tmp_path / "db.sqlite").exists()  # showing writes nothing

    code, report, _ = sync(capsys, str(FIXTURE), "--config", config, "--yes")
    assert code == 0 and report["applied"]
    models = {m.id: m for m in load_config(config).models}
    assert (models["o3-mini"].cost_input_per_mtok, models["o3-mini"].context_window) == (
        1.1,
        200000,
    )
    big = models["mistral-large-latest"]
    assert (big.cost_input_per_mtok, big.cost_output_per_mtok, big.context_window) == (
        0.5,
        1.5,
        262144,
    )
    assert big.quality == builtin().entries["mistral-large-latest"].quality  # not in the list
    assert models["large"].cost_output_per_mtok == 9.0  # the config still wins

    code, report, _ = sync(capsys, str(FIXTURE), "--config", config)
    assert report["changes"] == []


async def serve_bytes(
    body: bytes, status: str, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """A loopback HTTP server answering every request with ``body``."""

    async def answer(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        await stream.send_all(head.encode() + body)
        await stream.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(answer, listeners)


async def run_main(*args: str) -> int:
    code: int = await trio.to_thread.run_sync(main, list(args))
    return code


async def test_a_loopback_url_is_read_within_the_size_cap(
    nursery: trio.Nursery,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write(tmp_path)
    start: Callable[..., Any] = nursery.start
    port = await start(partial(serve_bytes, FIXTURE.read_bytes(), "200 OK"))
    url = f"http://127.0.0.1:{port}/model_prices_and_context_window.json"
    secret = url.replace("http://", "http://user:hunter2@") + "?token=hunter2"
    assert await run_main("prices", "sync", secret, "--config", config, "--json", "--yes") == 0
    report = json.loads(capsys.readouterr().out)
    assert {c["model"] for c in report["changes"]} >= {"mistral-large-latest", "o3-mini"}
    with closing(sqlite3.connect(tmp_path / "db.sqlite")) as db:
        sources = {row[0] for row in db.execute("SELECT source FROM catalogue_overlay")}
    assert sources == {url}  # where it came from, never a credential in it

    monkeypatch.setattr(prices, "MAX_LIST_BYTES", 1024)
    assert await run_main("prices", "sync", url, "--config", config) == 1
    assert "over 1024" in capsys.readouterr().err

    missing = await start(partial(serve_bytes, b"{}", "404 Not Found"))
    assert (
        await run_main("prices", "sync", f"http://127.0.0.1:{missing}/x", "--config", config) == 1
    )
    assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "source", "message"),
    [
        ("{not json", None, "not JSON"),
        ("[1, 2]", None, "not a JSON object"),
        (None, "ftp://example.com/prices.json", "only http:// and https:// URLs"),
        (None, "no-such-file.json", "No such file"),
    ],
)
def test_a_bad_source_is_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    source: str | None,
    message: str,
) -> None:
    config = write(tmp_path)
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    where = source if source is not None else str(path)
    if source == "no-such-file.json":
        where = str(tmp_path / source)
    assert main(["prices", "sync", where, "--config", config]) == 1
    err = capsys.readouterr().err
    assert err.startswith("llmswitch: ") and message in err and err.count("\n") == 1


def test_values_of_the_wrong_type_are_unknown_and_only_chat_models_count() -> None:
    assert entry_of({"mode": "embedding", "input_cost_per_token": 1e-6}) is None
    assert entry_of("gpt") is None
    odd = entry_of(
        {
            "mode": "chat",
            "input_cost_per_token": "cheap",
            "output_cost_per_token": True,
            "max_input_tokens": -1,
            "max_tokens": 4096,
            "max_output_tokens": 1.5,
        }
    )
    assert odd == Entry(context_window=4096)


def test_a_name_is_looked_up_under_its_providers_prefix_only() -> None:
    items = {"inferenceapis/llama-3.3-70b-versatile": {"mode": "chat"}}
    want = Wanted("llama-3.3-70b-versatile", "groq", ("llama-3.3-70b-versatile",))
    assert match(items, want) is None
    items["groq/llama-3.3-70b-versatile"] = {"mode": "chat", "input_cost_per_token": 5.9e-7}
    assert match(items, want) == ("groq/llama-3.3-70b-versatile", Entry(input_per_mtok=0.59))
