"""Run-time routing settings over HTTP: the active profile, per-task overrides, rules,
and the config values that may be stored over the file's (allow/block, global budgets).

Changes go through the router actor, which validates them, persists them in SQLite (so
they survive restarts) and applies them to the next decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from quart import Response, request
from quart_trio import QuartTrio

from llmswitch.actors.router import (
    ClearSetting,
    DeleteRule,
    GetSettings,
    PutRule,
    PutSetting,
    SetOverride,
    SetProfile,
)
from llmswitch.config import RuleConfig
from llmswitch.front.body import parse_json_object
from llmswitch.front.errors import GatewayError, bad_request
from llmswitch.front.stats import stats
from llmswitch.gateway import Gateway
from llmswitch.routing.brain import RoutingSettings
from llmswitch.routing.live import live_values, sources
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Request

CALL_TIMEOUT_S = 5.0


def settings_json(s: RoutingSettings) -> dict[str, Any]:
    return {
        "profile": s.profile,
        "overrides": s.overrides,
        "rules": [r.model_dump(exclude_defaults=True) | {"name": r.name} for r in s.rules],
        "stored_rules": list(s.stored_rules),
        "settings": live_values(s),
        "sources": sources(s),
    }


async def json_object() -> dict[str, Any]:
    return parse_json_object(await request.get_data(cache=False))


def register_admin(
    app: QuartTrio,
    gw: Gateway,
    respond: Callable[[Any], Response],
    fail: Callable[[GatewayError], Response],
) -> None:
    """Add the /admin/routing routes; ``respond``/``fail`` render JSON and errors."""

    async def ask(msg: Request[RoutingSettings]) -> Response:
        try:
            settings = await gw.router.call(msg, timeout=CALL_TIMEOUT_S)
        except ValueError as exc:
            return fail(bad_request(str(exc)))
        except (CallTimeout, ActorCrashed) as exc:
            return fail(GatewayError(503, f"the router is unavailable ({exc})", "server_error"))
        return respond(settings_json(settings))

    @app.get("/admin/routing")
    async def get_settings() -> Response:
        return await ask(GetSettings())

    @app.put("/admin/routing/profile")
    async def put_profile() -> Response:
        try:
            body = await json_object()
        except GatewayError as err:
            return fail(err)
        return await ask(SetProfile(str(body.get("profile"))))

    @app.put("/admin/routing/overrides/<task>")
    async def put_override(task: str) -> Response:
        try:
            body = await json_object()
        except GatewayError as err:
            return fail(err)
        return await ask(SetOverride(task, str(body.get("model"))))

    @app.delete("/admin/routing/overrides/<task>")
    async def delete_override(task: str) -> Response:
        return await ask(SetOverride(task, None))

    @app.put("/admin/routing/rules/<name>")
    async def put_rule(name: str) -> Response:
        try:
            rule = RuleConfig.model_validate((await json_object()) | {"name": name})
        except GatewayError as err:
            return fail(err)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "rule"
            return fail(bad_request(f"{where}: {first['msg']}", param=where))
        return await ask(PutRule(rule))

    @app.delete("/admin/routing/rules/<name>")
    async def delete_rule(name: str) -> Response:
        return await ask(DeleteRule(name))

    @app.put("/admin/routing/settings/<key>")
    async def put_setting(key: str) -> Response:
        """Store ``{"value": ...}`` over the file's value of ``key`` (``routing.block``, ...)."""
        try:
            body = await json_object()
        except GatewayError as err:
            return fail(err)
        if "value" not in body:
            return fail(bad_request('expected {"value": ...}', param="value"))
        return await ask(PutSetting(key, body["value"]))

    @app.delete("/admin/routing/settings/<key>")
    async def clear_setting(key: str) -> Response:
        """Drop the stored value of ``key``: the file's is in force again."""
        return await ask(ClearSetting(key))

    @app.get("/admin/stats")
    async def get_stats() -> Response:
        try:
            return respond(await stats(gw.config, request.args))
        except GatewayError as err:
            return fail(err)
