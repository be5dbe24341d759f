"""The quart-trio application: routes, body validation, and error rendering."""

from __future__ import annotations

import json
from typing import Any

import trio
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout

from llmswitch.config import TASK_TYPES
from llmswitch.doors.door import (
    ANTHROPIC,
    ANTHROPIC_COUNT,
    OPENAI,
    RESPONSES,
    FrontDoor,
    door_for_path,
)
from llmswitch.doors.openai_chat import validate_chat
from llmswitch.front import chat
from llmswitch.front.access import presents_credential
from llmswitch.front.admin import register_admin
from llmswitch.front.admin_keys import register_key_admin
from llmswitch.front.admin_reload import register_reload_admin
from llmswitch.front.body import parse_json_object, too_large
from llmswitch.front.errors import GatewayError, bad_request
from llmswitch.front.health import check_store, readiness
from llmswitch.front.lockout import guessing_refusal
from llmswitch.front.ui import refused_page, register_ui
from llmswitch.gateway import Gateway
from llmswitch.routing.brain import Signals, describe_decision

JSON = "application/json"
#: The doors that serve completions; each of their requests leaves a ledger row.
SERVING_PATHS = frozenset({"/v1/chat/completions", "/v1/messages", "/v1/responses"})


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(json.dumps(payload), status, headers, content_type=JSON)


def error_response(err: GatewayError, extra: dict[str, str] | None = None) -> Response:
    return json_response(err.body(), err.status, {**(extra or {}), **err.headers})


def lower_headers() -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


async def read_json(max_bytes: int) -> dict[str, Any]:
    """The request's JSON object; GatewayError 413 over ``max_bytes``, 400 if not JSON."""
    try:
        raw = await request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise too_large(max_bytes) from None
    except RequestTimeout:
        raise GatewayError(
            408,
            f"request body not received within {request.body_timeout:g}s",
            code="body_timeout",
        ) from None
    if len(raw) > max_bytes:
        raise too_large(max_bytes)
    return parse_json_object(raw)


async def read_body(max_bytes: int) -> dict[str, Any]:
    """The request's OpenAI chat-completions body, validated."""
    return validate_chat(await read_json(max_bytes))


def read_signals(raw: Any) -> Signals:
    """``signals`` of a /v1/route body: ``work_class`` (a task type) and ``token_estimate``."""
    if raw is None:
        return Signals()
    if not isinstance(raw, dict):
        raise bad_request("signals must be an object", param="signals")
    work_class = raw.get("work_class")
    if work_class is not None and work_class not in TASK_TYPES:
        raise bad_request(
            f"signals.work_class must be one of {', '.join(TASK_TYPES)}",
            param="signals.work_class",
        )
    tokens = raw.get("token_estimate")
    if tokens is not None and (not isinstance(tokens, int) or tokens < 0):
        raise bad_request(
            "signals.token_estimate must be a non-negative integer",
            param="signals.token_estimate",
        )
    return Signals(work_class, tokens)


def create_app(gw: Gateway) -> QuartTrio:
    app = QuartTrio("llmswitch")
    app.config["MAX_CONTENT_LENGTH"] = gw.config.server.max_body_bytes
    # quart cuts responses after RESPONSE_TIMEOUT (60 s): long LLM streams would die.
    app.config["RESPONSE_TIMEOUT"] = None
    app.config["BODY_TIMEOUT"] = gw.config.server.body_timeout_s

    @app.before_request
    async def check_access() -> Response | None:
        """Hosts, CSRF, client keys, the admin lock: one place for every route and door."""
        headers = lower_headers()
        peer, now = request.remote_addr or "unknown", trio.current_time()
        credential = presents_credential(headers)
        try:
            wait = gw.lockout.retry_after(peer, now) if credential else None
            if wait is not None:
                raise guessing_refusal(wait)
            g.client = gw.access.check(gw.keys.value, request.method, request.path, headers, peer)
        except GatewayError as err:
            if err.status == 401 and credential:
                gw.lockout.failed(peer, now)
            if request.method == "POST" and request.path in SERVING_PATHS:
                await chat.record_refusal(gw, request.remote_addr or "unknown", err)
            if request.path == "/ui":
                response = refused_page(err)
            else:
                response = door_for_path(request.path).error(err, {})
            # The body was not read: the connection cannot carry another request.
            response.headers["Connection"] = "close"
            return response
        return None

    async def serve(door: FrontDoor) -> Response:
        ex = chat.Exchange(gw.new_request_id(), request.remote_addr or "unknown")
        try:
            # Only a request whose body is in counts as in flight: slow uploads must not
            # hold the slots of requests ready to be served.
            body = await read_json(gw.config.server.max_body_bytes)
            ex.counted = gw.begin_exchange()
            if gw.in_flight > gw.config.server.max_in_flight:
                # Shed load at once: queueing without bound only grows memory and latency.
                limit = gw.config.server.max_in_flight
                raise GatewayError(
                    503,
                    f"the gateway is at its limit of {limit} requests in flight; retry shortly",
                    "server_error",
                    code="overloaded",
                    headers={"Retry-After": "1"},
                )
            response = await _serve(ex, door, body)
        except GatewayError as err:
            ex.status, ex.error = err.status, err.message
            await chat.record(gw, ex)
            response = door.error(err, ex.router_headers())
        except BaseException as exc:
            if not ex.recorded:
                # The client left, or the drain deadline passed: neither is a gateway failure.
                if chat.client_left(exc):
                    chat.departed(gw, ex)
                else:
                    ex.status, ex.error = 500, f"gateway error: {type(exc).__name__}"
                await chat.record(gw, ex)
            raise
        if gw.draining:
            # Clients should not reuse this connection: the gateway is going away.
            response.headers["Connection"] = "close"
        return response

    async def _serve(ex: chat.Exchange, door: FrontDoor, body: dict[str, Any]) -> Response:
        """The exchange up to its answer; GatewayError for every refusal on the way."""
        ex.client_body = body
        ex.body = validate_chat(door.read(body))
        ex.requested_model = str(ex.body["model"])
        headers = lower_headers()
        await chat.admit_client(gw, ex, g.client)
        decision = await chat.decide(gw, ex, headers)
        opened = await chat.open_first(gw, ex, decision)
        if opened.tap is None:
            payload = await chat.finish_once(gw, ex, opened)
            await chat.record(gw, ex)
            return Response(door.answer(payload, ex), 200, ex.router_headers(), content_type=JSON)
        headers = ex.router_headers() | {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        events = door.stream(chat.stream_answer(gw, ex, opened), ex)
        response = Response(events, 200, headers, content_type="text/event-stream")
        response.timeout = None
        return response

    @app.post("/v1/chat/completions")
    async def chat_completions() -> Response:
        return await serve(OPENAI)

    @app.post("/v1/messages")
    async def messages() -> Response:
        return await serve(ANTHROPIC)

    @app.post("/v1/responses")
    async def responses() -> Response:
        return await serve(RESPONSES)

    @app.post("/v1/messages/count_tokens")
    async def count_tokens() -> Response:
        """An estimate of a Messages request's input tokens; nothing is sent upstream."""
        try:
            body = await read_json(gw.config.server.max_body_bytes)
            tokens = ANTHROPIC_COUNT(body)
        except GatewayError as err:
            return ANTHROPIC.error(err, {})
        return json_response({"input_tokens": tokens})

    @app.post("/v1/route")
    @app.post("/admin/route")
    async def advise() -> Response:
        """The routing brain without serving: which model would take this request, and why.

        ``/admin/route`` is the same for the dashboard's playground, behind the admin lock
        instead of a client key."""
        try:
            body = await read_body(gw.config.server.max_body_bytes)
            signals = read_signals(body.get("signals"))
            decision = await chat.route(gw, body, lower_headers(), signals, g.client)
        except GatewayError as err:
            return error_response(err)
        if decision.candidates:
            return json_response(describe_decision(decision))
        none = chat.exhausted_error(gw, decision)
        return json_response(describe_decision(decision), none.status, none.headers)

    @app.get("/v1/models")
    async def models() -> Response:
        created = 0
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "llmswitch"}
            for name in ["auto", *(f"auto:{p}" for p in gw.config.all_profiles)]
        ]
        data += [
            {"id": m.id, "object": "model", "created": created, "owned_by": m.backend}
            for m in gw.config.models
            if m.enabled
        ]
        return json_response({"object": "list", "data": data})

    def ready() -> tuple[bool, dict[str, Any]]:
        ledger = gw.supervisor.child("ledger").state
        store = check_store(gw.config.store.path, ledger, gw.ledger_memory.store_down)
        views = gw.views
        return readiness(
            gw.config,
            views.health.value,
            views.budget.value,
            store,
            draining=gw.draining,
            cluster=gw.link.state.value if gw.link else None,
        )

    @app.get("/health/live")
    async def health_live() -> Response:
        return json_response({"status": "alive"})

    @app.get("/health/ready")
    @app.get("/health")
    async def health() -> Response:
        ok, body = ready()
        return json_response(body | {"config": gw.reloader.public_status()}, 200 if ok else 503)

    @app.get("/debug")
    async def debug() -> Response:
        return json_response(gw.debug())

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gw.metrics.render(), 200, content_type="text/plain; version=0.0.4")

    register_admin(app, gw, json_response, error_response)
    register_key_admin(app, gw, json_response, error_response)
    register_reload_admin(app, gw, json_response, error_response)
    register_ui(app, gw, json_response, error_response)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        """404, 405, 413 from routing itself, in the dialect of the door that was asked."""
        status = exc.code or 500
        kind = "invalid_request_error" if status < 500 else "server_error"
        return door_for_path(request.path).error(
            GatewayError(status, exc.description or exc.name, kind), {}
        )

    return app
