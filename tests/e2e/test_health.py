"""Honest health: live, ready, unknown before the first probe, a 401 probe is down: auth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import trio

from llmswitch.actors.health import BackendHealth, HealthView, ProbeNow
from llmswitch.actors.ledger import BudgetView
from llmswitch.front.health import StoreCheck, check_store, readiness
from tests.e2e.harness import SIM_MODELS, Stack, closed_port, stack_config


async def ready_body(http: httpx.AsyncClient) -> dict[str, Any]:
    """/health once every backend has answered its first probe."""
    with trio.fail_after(10):
        while True:
            body: dict[str, Any] = (await http.get("/health")).json()
            if "unknown" not in {b["state"] for b in body["backends"].values()}:
                return body
            await trio.sleep(0.02)


async def test_ready_lists_backends_models_store_and_budget(stack: Stack) -> None:
    async with stack.http() as http:
        live = await http.get("/health/live")
        body = await ready_body(http)
        ready = await http.get("/health/ready")
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert body["status"] == "ok"
    assert body["models"] == {"up": 4, "down": 0, "unknown": 0}
    assert body["store"] == {"ok": True, "reason": None, "reachable": True, "down": None}
    assert body["budget"]["exceeded"] is False


async def test_a_probe_answered_401_is_down_with_reason_auth(stack: Stack) -> None:
    stack.sim("cloud").api_key = "the-right-key"  # the gateway sends none
    async with stack.http() as http:
        await ready_body(http)
        await stack.gw.health.cast(ProbeNow("cloud"))
        with trio.fail_after(10):
            while True:
                body = (await http.get("/health")).json()
                if body["backends"]["cloud"]["state"] == "down":
                    break
                await trio.sleep(0.02)
    assert body["backends"]["cloud"]["reason"].startswith("auth: HTTP 401")
    assert body["models"] == {"up": 3, "down": 1, "unknown": 0}
    assert body["status"] == "ok"  # the local models still serve


def test_not_ready_until_a_backend_has_answered(tmp_path: Path) -> None:
    config = stack_config({}, tmp_path / "db", extra_backends=[backend(n) for n in SIM_MODELS])
    ok, body = readiness(
        config.model_copy(update={"models": ()}),
        HealthView(),
        BudgetView(),
        StoreCheck(True),
        draining=False,
    )
    assert not ok and body["reason"] == "no models configured"


def backend(name: str) -> dict[str, Any]:
    return {"name": name, "base_url": f"http://127.0.0.1:{closed_port()}/v1", "locality": "lan"}


def test_readiness_says_why_it_is_not_ready(tmp_path: Path) -> None:
    config = stack_config(
        {},
        tmp_path / "db",
        extra_backends=[backend(n) for n in SIM_MODELS],
    )
    fresh = HealthView()
    ok, body = readiness(config, fresh, BudgetView(), StoreCheck(True), draining=False)
    assert not ok and body["reason"].startswith("starting")
    assert body["models"] == {"up": 0, "down": 0, "unknown": 4}

    down = BackendHealth(up=False, checked=True, last_error="auth: HTTP 401 from models")
    all_down = HealthView({n: down for n in ("local", "lan", "cloud")})
    ok, body = readiness(config, all_down, BudgetView(), StoreCheck(True), draining=False)
    assert not ok and body["reason"] == "no enabled model is on a backend that is up"
    assert body["backends"]["lan"]["reason"] == "auth: HTTP 401 from models"

    up = HealthView({"local": BackendHealth(checked=True)})
    broken = StoreCheck(False, "/data is not writable")
    ok, body = readiness(config, up, BudgetView(), broken, draining=True)
    assert not ok and body["status"] == "draining"
    assert body["reason"] == "draining; store: /data is not writable"


def test_store_check_sees_a_stopped_ledger_and_a_read_only_folder(tmp_path: Path) -> None:
    assert check_store(str(tmp_path / "x.db"), "running").ok
    assert check_store(str(tmp_path / "x.db"), "restarting").reason == (
        "the ledger actor is restarting"
    )
    missing = check_store("/proc/llmswitch-nowhere/x.db", "running")
    assert not missing.ok and "not writable" in str(missing.reason)


def test_a_store_that_cannot_be_reached_is_said_while_still_ready(tmp_path: Path) -> None:
    config = stack_config({}, tmp_path / "db", extra_backends=[backend(n) for n in SIM_MODELS])
    down = check_store(str(tmp_path / "x.db"), "running", "postgresql://***@db/x: refused")
    up = HealthView({b.name: BackendHealth(checked=True) for b in config.backends})
    ok, body = readiness(config, up, BudgetView(), down, draining=False)
    assert ok, "the journal keeps the rows: still serving"
    assert body["store"] == {
        "ok": True,
        "reason": None,
        "reachable": False,
        "down": "postgresql://***@db/x: refused",
    }
