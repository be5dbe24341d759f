"""``GET /admin/events``: the dashboard's live state as Server-Sent Events.

Each subscriber gets one ``state`` event at once and then one a second (sooner when
the gateway starts to drain), built from the views the actors already publish and
:meth:`Gateway.debug`: no actor is asked, no database is read, and one snapshot a tick
serves every subscriber, so a subscriber costs what an idle stream costs. Subscribers
are capped (:data:`MAX_SUBSCRIBERS`); one more gets 503. On a drain every stream sends a
last ``bye`` event and ends, so it never holds the drain open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import trio

from llmswitch.actors.pool import ModelStats
from llmswitch.gateway import Gateway

MAX_SUBSCRIBERS = 16
TICK_S = 1.0


def state_json(
    debug: Mapping[str, Any],
    models: Mapping[str, ModelStats],
    cooldown_until: Mapping[str, float],
    now: float,
) -> dict[str, Any]:
    """One live snapshot: ``/debug``'s body, per-model stats, the cooldowns still running,
    and ``ledger_rows`` (rows written so far: the dashboard re-reads the request log when
    it moves)."""
    actors = debug["supervisor"]["actors"]
    ledger: Mapping[str, Any] = next((a for a in actors if a["name"] == "ledger"), {})
    return {
        **debug,
        "models": {name: asdict(s) for name, s in models.items()},
        "cooldowns": {
            scope: round(until - now, 3) for scope, until in cooldown_until.items() if until > now
        },
        "ledger_rows": ledger.get("summary", {}).get("written_rows", 0),
    }


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class Subscription:
    """One subscriber's event stream; its slot is given back when the stream closes."""

    def __init__(self, hub: EventHub, gw: Gateway) -> None:
        self._hub = hub
        self._gw = gw
        self._first = True
        self._done = False

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> bytes:
        gw = self._gw
        if self._done:
            await self.aclose()
            raise StopAsyncIteration
        if not self._first:
            with trio.move_on_after(TICK_S):
                await gw.stop_requested.wait()
        self._first = False
        if gw.stop_requested.is_set():
            self._done = True
            return sse("bye", {"reason": "the gateway is shutting down"})
        return self._hub.state_event(gw)

    async def aclose(self) -> None:
        """Give the slot back, however the stream ended (closing twice is harmless)."""
        self._done = True
        self._hub.release(self)


class EventHub:
    """Counts open subscriptions against the cap."""

    def __init__(self, cap: int = MAX_SUBSCRIBERS) -> None:
        self.cap = cap
        self._open: set[Subscription] = set()
        self._event = b""
        self._built_at = -math.inf

    def state_event(self, gw: Gateway) -> bytes:
        """The current ``state`` event, built at most once a tick for all subscribers."""
        now = trio.current_time()
        if now - self._built_at >= TICK_S / 2:
            views = gw.views
            state = state_json(
                gw.debug(), views.pool.value.models, views.limits.value.cooldown_until, now
            )
            self._event, self._built_at = sse("state", state), now
        return self._event

    @property
    def subscribers(self) -> int:
        return len(self._open)

    def subscribe(self, gw: Gateway) -> Subscription | None:
        """A new subscription, or None when ``cap`` are open."""
        if len(self._open) >= self.cap:
            return None
        sub = Subscription(self, gw)
        self._open.add(sub)
        return sub

    def release(self, sub: Subscription) -> None:
        self._open.discard(sub)
