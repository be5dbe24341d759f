"""The dashboard's pure parts: query parsing, the live snapshot, the page, the cookie."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from llmswitch.actors.pool import ModelStats
from llmswitch.config import parse_config
from llmswitch.front.access import (
    UI_COOKIE,
    admin_refusal,
    cookie,
    route_kind,
    same_origin,
    ui_session,
)
from llmswitch.front.errors import GatewayError
from llmswitch.front.events import EventHub, sse, state_json
from llmswitch.front.ui import MAX_ROWS, boot_data, dashboard_page, request_query

TOKEN = "s3cret-admin-token"
DIGEST = hashlib.sha256(TOKEN.encode()).digest()
HOST = "192.168.1.5:8080"


def test_request_query_takes_a_limit_and_exact_filters() -> None:
    q = request_query({"limit": "20", "client": " ide ", "status": "429", "harness": ""})
    assert q.limit == 20
    assert q.where == {"client": "ide", "status": 429}
    assert request_query({}).limit == 100
    assert request_query({"limit": str(MAX_ROWS)}).limit == MAX_ROWS


@pytest.mark.parametrize(
    ("args", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": str(MAX_ROWS + 1)}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"status": "99"}, "status"),
        ({"status": "20x"}, "status"),
        ({"model": "m" * 201}, "model"),
        ({"order": "asc"}, "order"),
    ],
)
def test_request_query_refuses_what_it_does_not_bound(args: dict[str, str], param: str) -> None:
    with pytest.raises(GatewayError) as err:
        request_query(args)
    assert err.value.status == 400
    assert err.value.param == param


def debug_body(written: int) -> dict[str, Any]:
    ledger = {"name": "ledger", "summary": {"written_rows": written}}
    return {"supervisor": {"actors": [{"name": "router", "summary": {}}, ledger]}, "in_flight": 2}


def test_the_live_state_adds_models_running_cooldowns_and_the_ledger_position() -> None:
    models = {"small": ModelStats("closed", None, latency_ms=12.0, success=1.0)}
    state = state_json(debug_body(7), models, {"lan": 105.5, "cloud": 90.0}, now=100.0)
    assert state["in_flight"] == 2
    assert state["models"]["small"]["latency_ms"] == 12.0
    assert state["cooldowns"] == {"lan": 5.5}
    assert state["ledger_rows"] == 7
    event = sse("state", state).decode()
    assert event.startswith("event: state\ndata: {") and event.endswith("\n\n")
    assert json.loads(event.split("data: ", 1)[1]) == state


def test_the_hub_caps_subscribers_and_a_closed_one_frees_its_place() -> None:
    hub = EventHub(cap=2)
    gw: Any = object()
    first, second = hub.subscribe(gw), hub.subscribe(gw)
    assert first is not None and second is not None
    assert hub.subscribe(gw) is None
    hub.release(first)
    hub.release(first)
    assert hub.subscribers == 1
    assert hub.subscribe(gw) is not None


def test_the_page_embeds_config_text_so_it_cannot_close_its_element() -> None:
    config = parse_config(
        {
            "backends": [{"name": "b", "base_url": "http://127.0.0.1:1/v1"}],
            "models": [{"id": "m", "backend": "b"}],
        },
        source="test",
    )
    hostile = ["</script><script>alert(1)</script>"]
    page = dashboard_page(boot_data(config, token=True) | {"block": hostile})
    assert "</script><script>" not in page
    boot = page.split('id="boot">', 1)[1].split("</script>", 1)[0]
    assert json.loads(boot)["block"] == hostile
    assert 'id="logout"' in page


def test_the_cookie_is_derived_from_the_token_and_opens_admin_reads() -> None:
    session = ui_session(DIGEST)
    assert TOKEN not in session and len(session) == 64
    headers = {"host": HOST, "cookie": f"theme=dark; {UI_COOKIE}={session}"}
    assert cookie(headers, UI_COOKIE) == session
    assert admin_refusal(DIGEST, "GET", headers, "192.168.1.9") is None
    forged = {"host": HOST, "cookie": f"{UI_COOKIE}={ui_session(b'other')}"}
    assert admin_refusal(DIGEST, "GET", forged, "192.168.1.9") is not None


def test_cookie_writes_need_our_own_origin() -> None:
    base = {"host": HOST, "cookie": f"{UI_COOKIE}={ui_session(DIGEST)}"}
    ours = base | {"origin": f"http://{HOST}"}
    assert same_origin(ours)
    assert admin_refusal(DIGEST, "PUT", ours, "192.168.1.9") is None
    for origin in (None, "http://evil.example", f"http://{HOST}.evil.example"):
        headers = base | ({"origin": origin} if origin else {})
        refusal = admin_refusal(DIGEST, "PUT", headers, "192.168.1.9")
        assert refusal is not None and refusal.status == 401


def test_only_the_login_and_the_assets_of_the_dashboard_are_public() -> None:
    assert route_kind("/ui/login", metrics_open=False) == "public"
    assert route_kind("/ui/static/app.js", metrics_open=False) == "public"
    for path in ("/ui", "/ui/logout", "/ui/static/other.js", "/admin/events", "/admin/requests"):
        assert route_kind(path, metrics_open=False) == "admin"
