"""Client keys over HTTP: list, create (the key is in that one answer only), revoke.

Behind the admin lock like every ``/admin`` route (see :mod:`front.access`). Keys are
made and stored by the keys actor; this module only validates and renders.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ValidationError
from quart import Response
from quart_trio import QuartTrio

from llmswitch.actors.keys import CreateKey, ListKeys, RevokeKey
from llmswitch.config import KeyPolicy
from llmswitch.front.admin import CALL_TIMEOUT_S, json_object
from llmswitch.front.errors import GatewayError, bad_request
from llmswitch.gateway import Gateway
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Request
from llmswitch.store.keys import KEY_NAME, KeyExists

R = TypeVar("R")


def policy_json(policy: KeyPolicy) -> dict[str, Any]:
    return policy.model_dump(
        mode="json", exclude_defaults=True, include=set(KeyPolicy.model_fields)
    )


def read_policy(gw: Gateway, body: dict[str, Any]) -> tuple[str, KeyPolicy]:
    """The name and rights of a key to create; GatewayError 400 naming the bad field."""
    name = body.pop("name", None)
    if not isinstance(name, str) or not KEY_NAME.fullmatch(name):
        raise bad_request("name: 1 to 64 letters, digits, '.', '_' or '-'", param="name")
    try:
        policy = KeyPolicy.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "policy"
        raise bad_request(f"{where}: {first['msg']}", param=where) from None
    problem = gw.config.key_policy_problem(policy)
    if problem is not None:
        raise bad_request(problem)
    return name, policy


def register_key_admin(
    app: QuartTrio,
    gw: Gateway,
    respond: Callable[..., Response],
    fail: Callable[[GatewayError], Response],
) -> None:
    """Add /admin/keys; ``respond(payload, status)``/``fail`` render JSON and errors."""

    async def ask(msg: Request[R]) -> R:
        try:
            return await gw.keys_box.call(msg, timeout=CALL_TIMEOUT_S)
        except (CallTimeout, ActorCrashed) as exc:
            raise GatewayError(
                503, f"the keys actor is unavailable ({exc})", "server_error"
            ) from None

    @app.get("/admin/keys")
    async def list_keys() -> Response:
        try:
            stored = await ask(ListKeys())
        except GatewayError as err:
            return fail(err)
        keys: list[dict[str, Any]] = [
            {"name": c.name, "source": "config", "policy": policy_json(c)}
            for c in gw.config.clients
        ]
        keys += [
            {
                "name": k.name,
                "source": "store",
                "created_at": k.created_at,
                "policy": policy_json(k.policy),
            }
            for k in stored
        ]
        return respond({"keys": keys})

    @app.post("/admin/keys")
    async def create() -> Response:
        try:
            name, policy = read_policy(gw, await json_object())
            key = await ask(CreateKey(name, policy))
        except GatewayError as err:
            return fail(err)
        except KeyExists as exc:
            return fail(GatewayError(409, str(exc), param="name", code="key_exists"))
        # The only time the key is shown: it is stored as its SHA-256 alone.
        return respond({"name": name, "key": key, "policy": policy_json(policy)}, 201)

    @app.delete("/admin/keys/<name>")
    async def revoke(name: str) -> Response:
        try:
            revoked = await ask(RevokeKey(name))
        except GatewayError as err:
            return fail(err)
        if not revoked:
            return fail(GatewayError(404, f"no stored key named {name!r}", code="key_not_found"))
        return respond({"revoked": name})
