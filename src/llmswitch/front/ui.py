"""The web dashboard: ``/ui``, its login, its two assets, and the admin reads it needs.

One page rendered here (its views, the settings the config fixes) and one script and
one stylesheet of our own, held in memory from start: serving them reads no file and
asks no actor, so the dashboard adds nothing to the request path. Live state comes over
``/admin/events`` (see :mod:`front.events`); the request log from ``/admin/requests``;
the rest from the admin API the CLI uses too.

Auth is the admin lock of :mod:`front.access`: a loopback browser needs nothing; with an
admin token, ``/ui`` answers 401 with a login form that trades the token for a session
cookie. The page forbids inline script and framing (Content-Security-Policy).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape
from importlib.resources import files
from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio

from llmswitch.config import TASK_TYPES, Config
from llmswitch.front.access import UI_COOKIE, ui_session
from llmswitch.front.admin import json_object
from llmswitch.front.errors import GatewayError, bad_request
from llmswitch.front.events import EventHub
from llmswitch.front.lockout import guessing_refusal
from llmswitch.gateway import Gateway
from llmswitch.store.connect import connect_store
from llmswitch.store.errors import StoreError
from llmswitch.store.request_log import FILTERS, filtered_recent_rows

VIEWS = (
    ("overview", "Overview"),
    ("backends", "Backends & models"),
    ("actors", "Actors"),
    ("requests", "Requests"),
    ("charts", "Charts"),
    ("settings", "Settings"),
    ("playground", "Playground"),
)
ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: /admin/requests: rows per answer (default and cap), rows searched, filter length.
DEFAULT_ROWS = 100
MAX_ROWS = 500
SCAN_ROWS = 20_000
MAX_FILTER_CHARS = 200


@dataclass(frozen=True)
class RequestQuery:
    limit: int
    where: dict[str, str | int]


def request_query(args: Mapping[str, str]) -> RequestQuery:
    """``/admin/requests``'s query: ``limit`` (1..500) and exact-match filters; 400 names
    the parameter."""
    for name in args:
        if name != "limit" and name not in FILTERS:
            raise bad_request(
                f"{name[:40]!r} is not a parameter; use limit, {', '.join(FILTERS)}", param=name
            )
    raw = args.get("limit", str(DEFAULT_ROWS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ROWS:
        raise bad_request(f"limit must be an integer from 1 to {MAX_ROWS}", param="limit")
    where: dict[str, str | int] = {}
    for name in FILTERS:
        value = args.get(name, "").strip()
        if not value:
            continue
        if len(value) > MAX_FILTER_CHARS:
            raise bad_request(f"{name}: at most {MAX_FILTER_CHARS} characters", param=name)
        if name == "status":
            if not value.isdigit() or not 100 <= int(value) <= 599:
                raise bad_request("status must be an HTTP status (100 to 599)", param=name)
            where[name] = int(value)
        else:
            where[name] = value
    return RequestQuery(int(raw), where)


def boot_data(config: Config, token: bool) -> dict[str, Any]:
    """What the page needs from the config: names to choose from (the settings in force
    come from /admin/routing)."""
    return {
        "views": [v for v, _ in VIEWS],
        "profiles": sorted(config.all_profiles),
        "tasks": list(TASK_TYPES),
        "models": [m.id for m in config.models if m.enabled],
        "token": token,
    }


def _json_script(data: Mapping[str, Any]) -> str:
    """JSON for a ``<script type=application/json>``: no ``<`` can close the element."""
    return json.dumps(data).replace("<", "\\u003c")


def _shell(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/ui/static/app.css">'
        f'<script src="/ui/static/app.js" defer></script></head>{body}</html>'
    )


def dashboard_page(boot: Mapping[str, Any]) -> str:
    """The dashboard: navigation, one empty section per view (the script fills them)."""
    nav = "".join(f'<li><a href="#{v}" data-view="{v}">{escape(t)}</a></li>' for v, t in VIEWS)
    sections = "".join(
        f'<section id="view-{v}" class="view" hidden aria-labelledby="h-{v}">'
        f'<h2 id="h-{v}" tabindex="-1">{escape(t)}</h2><div class="body"></div></section>'
        for v, t in VIEWS
    )
    logout = '<button type="button" id="logout">Log out</button>' if boot["token"] else ""
    body = (
        '<body data-page="dashboard"><a class="skip" href="#main">Skip to content</a>'
        f'<header><h1>llmswitch</h1><span id="live" role="status">connecting…</span>{logout}'
        f'</header><nav aria-label="Views"><ul>{nav}</ul></nav>'
        f'<main id="main">{sections}</main>'
        f'<script type="application/json" id="boot">{_json_script(boot)}</script></body>'
    )
    return _shell("llmswitch dashboard", body)


def login_page() -> str:
    body = (
        '<body data-page="login"><main id="main" class="login"><h1>llmswitch</h1>'
        '<form id="login"><label for="token">Admin token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password"'
        ' required autofocus><button type="submit">Open the dashboard</button>'
        '<p id="login-error" role="alert"></p></form></main></body>'
    )
    return _shell("llmswitch: log in", body)


def refused_page(err: GatewayError) -> Response:
    """``/ui`` refused: a login form when a token would open it, else the reason."""
    page = (
        login_page() if err.status == 401 else _shell("llmswitch", f"<p>{escape(err.message)}</p>")
    )
    return Response(page, err.status, PAGE_HEADERS, content_type="text/html; charset=utf-8")


def load_assets() -> dict[str, tuple[bytes, str]]:
    """Each asset's bytes and ETag, read once."""
    folder = files("llmswitch.front").joinpath("ui")
    out = {}
    for name in ASSETS:
        data = folder.joinpath(name).read_bytes()
        out[name] = (data, '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
    return out


def register_ui(
    app: QuartTrio,
    gw: Gateway,
    respond: Callable[..., Response],
    fail: Callable[[GatewayError], Response],
) -> None:
    """Add /ui, /ui/login, /ui/logout, /ui/static/*, /admin/events and /admin/requests."""
    assets = load_assets()
    hub = EventHub()

    @app.get("/ui")
    async def dashboard() -> Response:
        page = dashboard_page(boot_data(gw.config, gw.access.admin_digest is not None))
        return Response(page, 200, PAGE_HEADERS, content_type="text/html; charset=utf-8")

    @app.get("/ui/static/<name>")
    async def asset(name: str) -> Response:
        if name not in assets:
            return fail(GatewayError(404, "no such asset", code="not_found"))
        data, etag = assets[name]
        headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
        if request.headers.get("If-None-Match") == etag:
            return Response(b"", 304, headers)
        return Response(data, 200, headers, content_type=ASSETS[name])

    @app.post("/ui/login")
    async def login() -> Response:
        """The admin token for a session cookie; 401 for a wrong one."""
        try:
            body = await json_object()
        except GatewayError as err:
            return fail(err)
        token_digest = gw.access.admin_digest
        if token_digest is None:
            return fail(
                bad_request("no admin token is configured: /ui opens for loopback peers only")
            )
        peer, now = request.remote_addr or "unknown", trio.current_time()
        wait = gw.lockout.retry_after(peer, now)
        if wait is not None:
            return fail(guessing_refusal(wait))
        token = body.get("token")
        digest = hashlib.sha256(token.encode()).digest() if isinstance(token, str) else b""
        if not hmac.compare_digest(digest, token_digest):
            gw.lockout.failed(peer, now)
            return fail(
                GatewayError(
                    401,
                    "that is not the admin token",
                    "authentication_error",
                    param="token",
                    code="invalid_admin_token",
                )
            )
        response = Response(b"", 204)
        response.set_cookie(
            UI_COOKIE, ui_session(token_digest), httponly=True, samesite="Strict", path="/"
        )
        return response

    @app.post("/ui/logout")
    async def logout() -> Response:
        response = Response(b"", 204)
        response.delete_cookie(UI_COOKIE, path="/", httponly=True, samesite="Strict")
        return response

    @app.get("/admin/events")
    async def events() -> Response:
        sub = hub.subscribe(gw)
        if sub is None:
            return fail(
                GatewayError(
                    503,
                    f"at most {hub.cap} live-update subscribers; close another dashboard",
                    "server_error",
                    code="too_many_subscribers",
                    headers={"Retry-After": "5"},
                )
            )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = Response(sub, 200, headers, content_type="text/event-stream")
        response.timeout = None
        return response

    @app.get("/admin/requests")
    async def recent_requests() -> Response:
        """The newest ledger rows, filtered; at most MAX_ROWS, from the SCAN_ROWS newest."""
        try:
            query = request_query(request.args)
            conn = await connect_store(gw.config.store)
            try:
                rows = await filtered_recent_rows(conn, query.limit, SCAN_ROWS, query.where)
            finally:
                await conn.close()
        except GatewayError as err:
            return fail(err)
        except StoreError as exc:
            return fail(GatewayError(503, f"the request log is unavailable: {exc}", "server_error"))
        return respond({"requests": [r.as_dict() for r in rows], "scanned": SCAN_ROWS})
