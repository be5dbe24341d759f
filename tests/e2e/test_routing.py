"""The routing brain through the gateway: /v1/route, sensitivity, metering, settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
import trio

from tests.e2e.harness import Stack, start_stack

PROOF = "Prove step by step that the square root of 2 is irrational, and derive the lemma."
SECRET = f"{PROOF} Use my key sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0 when you are done."


def body(text: str, model: str = "auto", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def chat_requests(stack: Stack, sim: str) -> int:
    return stack.sim(sim).stats.by_path["/v1/chat/completions"]


async def test_route_advises_without_calling_any_backend(stack: Stack) -> None:
    async with stack.http() as http:
        resp = await http.post("/v1/route", json=body(PROOF))
        greeting = await http.post("/v1/route", json=body("hi"))
    # Only the cloud model is good enough, and metered cloud is opt-in: the best
    # self-hosted model answers (routing.fallback_model = "best-local", the default).
    assert resp.status_code == 200
    advice = resp.json()
    assert advice["tier"] == "fallback" and advice["rule"] == "catch-all"
    assert advice["classification"]["complexity"] == "reasoning"
    assert advice["profile"] == "balanced"
    assert advice["model"] == "coder"
    why = {e["model"]: e["why"] for e in advice["excluded"]}
    assert why["big"].startswith("metered cloud not enabled")
    assert greeting.json()["tier"] == "rules" and greeting.json()["model"] == "small"
    assert all(chat_requests(stack, name) == 0 for name in stack.sims)
    assert await stack.rows() == []  # advice is not a served request


async def test_route_signals_and_bad_input(stack: Stack) -> None:
    async with stack.http() as http:
        hinted = await http.post(
            "/v1/route", json=body(PROOF, signals={"work_class": "code", "token_estimate": 10})
        )
        bad = await http.post("/v1/route", json=body(PROOF, signals={"work_class": "dance"}))
        broken = await http.post("/v1/route", content=b"{")
    cls = hinted.json()["classification"]
    assert (cls["task_type"], cls["token_estimate"]) == ("code", 10)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "signals.work_class"
    assert broken.status_code == 400


async def test_sensitive_prompts_never_reach_a_cloud_model(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(
        nursery, tmp_path, routing={"metered_cloud": ["*"], "fallback_model": "coder"}
    )
    client = stack.client()
    raw = await client.chat.completions.with_raw_response.create(**body(SECRET))
    assert raw.headers["x-router-model"] == "coder"
    assert raw.headers["x-router-tier"] == "fallback"
    # Without the secret the same request goes to the cloud model: the gate made the difference.
    plain = await client.chat.completions.with_raw_response.create(**body(PROOF))
    assert plain.headers["x-router-model"] == "big"
    assert chat_requests(stack, "cloud") == 1


async def test_profiles_by_name_and_header(stack: Stack) -> None:
    async with stack.http() as http:
        eco = await http.post("/v1/route", json=body(PROOF, model="auto:eco"))
        bare = await http.post("/v1/route", json=body(PROOF, model="premium"))
        header = await http.post(
            "/v1/route", json=body(PROOF), headers={"X-Router-Profile": "premium"}
        )
    assert eco.json()["profile"] == "eco"
    assert bare.json()["profile"] == "premium"
    assert header.json()["profile"] == "premium"
    client = stack.client()
    with pytest.raises(openai.NotFoundError) as err:
        await client.chat.completions.create(**body(PROOF, model="auto:turbo"))
    assert err.value.code == "profile_not_found"


async def test_runtime_settings_persist_across_a_restart(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path)
    async with stack.http() as http:
        assert (await http.put("/admin/routing/profile", json={"profile": "premium"})).json()[
            "profile"
        ] == "premium"
        rule = {
            "priority": 1,
            "pattern": "weather",
            "action": "reject",
            "status": 403,
            "message": "no weather here",
        }
        assert (await http.put("/admin/routing/rules/no-weather", json=rule)).status_code == 200
        override = await http.put("/admin/routing/overrides/code", json={"model": "coder"})
        assert override.json()["overrides"] == {"code": "coder"}
        bad = await http.put("/admin/routing/profile", json={"profile": "turbo"})
        assert bad.status_code == 400
    with pytest.raises(openai.PermissionDeniedError, match="no weather here"):
        await stack.client().chat.completions.create(**body("what is the weather?"))

    # A second gateway on the same database: the settings were persisted.
    again = await start_stack(nursery, tmp_path)
    async with again.http() as http:
        settings = (await http.get("/admin/routing")).json()
        advice = (await http.post("/v1/route", json=body(PROOF))).json()
    assert settings["profile"] == "premium" and settings["overrides"] == {"code": "coder"}
    assert "no-weather" in settings["stored_rules"]
    assert advice["profile"] == "premium"


async def test_best_local_answers_what_no_model_meets_and_says_so(stack: Stack) -> None:
    raw = await stack.client().chat.completions.with_raw_response.create(**body(PROOF))
    assert (raw.headers["x-router-tier"], raw.headers["x-router-model"]) == ("fallback", "coder")
    assert raw.parse().model == "coder"
    (row,) = await stack.rows()
    assert (row.tier, row.chosen_model, row.status) == ("fallback", "coder", 200)
    assert row.reason is not None and "the best local model, coder, answers" in row.reason


async def test_without_a_fallback_the_503_says_how_to_serve_it(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    stack = await start_stack(nursery, tmp_path, routing={"fallback_model": "none"})
    with pytest.raises(openai.APIStatusError) as err:
        await stack.client().chat.completions.create(**body(PROOF))
    assert err.value.status_code == 503
    message = err.value.message
    assert "medium: quality 45 < floor" in message
    assert "auto:eco" in message and "routing.fallback_model" in message
    assert "raise a model's quality" in message
