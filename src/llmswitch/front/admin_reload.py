"""``POST /admin/reload``: re-read the config file and swap it in (see :mod:`reloader`).

Behind the admin lock like every ``/admin`` route. The file is the one the gateway was
started with: a request names no path. The body is empty or ``{}``, read up to
:data:`MAX_BODY_BYTES`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio

from llmswitch.front.body import parse_json_object, too_large
from llmswitch.front.errors import GatewayError, bad_request
from llmswitch.gateway import Gateway
from llmswitch.reloader import ReloadRefused

MAX_BODY_BYTES = 1024


async def _read_empty_body() -> None:
    """Accept no body or ``{}``; GatewayError otherwise (413 past MAX_BODY_BYTES)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise too_large(MAX_BODY_BYTES)
    raw = await request.get_data(cache=False)
    if len(raw) > MAX_BODY_BYTES:
        raise too_large(MAX_BODY_BYTES)
    if raw.strip() and parse_json_object(raw):
        raise bad_request("reload takes no parameters: it reads the gateway's own config file")


def register_reload_admin(
    app: QuartTrio,
    gw: Gateway,
    respond: Callable[[Any], Response],
    fail: Callable[[GatewayError], Response],
) -> None:
    @app.post("/admin/reload")
    async def reload() -> Response:
        try:
            await _read_empty_body()
            change = await gw.reloader.reload()
        except GatewayError as err:
            return fail(err)
        except ReloadRefused as exc:
            return fail(bad_request(f"reload refused: {exc}", code="config_invalid"))
        return respond(
            {
                "status": "reloaded" if change.applied else "unchanged",
                "generation": gw.reloader.generation,
                "applied": list(change.applied),
                "needs_restart": list(change.needs_restart),
            }
        )
