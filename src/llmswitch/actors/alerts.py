"""Budget alerts: a WARN line and an optional webhook POST, once per threshold and period.

The ledger calls :meth:`Alerts.note` as spend is counted (synchronously, inside its
step); posts go out from a background task of the ledger, so a slow or dead webhook
never holds up a reservation. A full queue drops (and counts) the post, never the log.

In a fleet every instance may see a threshold crossed; ``claim`` (the fleet's Redis)
lets one of them post it. Without an answer from Redis an instance posts anyway: an
alert twice is better than none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import trio

from llmswitch.config import BudgetConfig

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 5.0
QUEUE_SIZE = 64


def alert_id(event: dict[str, Any]) -> str:
    """One alert's name across the fleet: scope, period, its start and the threshold."""
    return f"{event['scope']}/{event['period']}/{event['period_start']}/{event['threshold']}"


class Alerts:
    def __init__(
        self, config: BudgetConfig, claim: Callable[[str], Awaitable[bool]] | None = None
    ) -> None:
        self.retarget(config)
        self._claim = claim
        #: Alerts another instance of the fleet posted first.
        self.posted_elsewhere = 0
        self._fired: set[tuple[str, str, float, float]] = set()
        self._send, self._receive = trio.open_memory_channel[dict[str, Any]](QUEUE_SIZE)
        self.sent = 0
        self.dropped = 0
        self.failed = 0

    def retarget(self, config: BudgetConfig) -> None:
        """The thresholds and webhook of a (re)loaded config; alerts sent stay sent."""
        self._thresholds = tuple(sorted(config.alert_at))
        self._url = config.webhook_url

    def note(self, scope: str, period: str, start: float, spent: float, limit: float) -> None:
        """Spend in (scope, period) reached ``spent`` of ``limit``: alert on new thresholds."""
        ratio = spent / limit
        for threshold in self._thresholds:
            key = (scope, period, start, threshold)
            if ratio < threshold or key in self._fired:
                continue
            self._fired.add(key)
            log.warning(
                "budget: %s %s spend $%.4f is %.0f%% of $%g (alert at %.0f%%)",
                scope,
                period,
                spent,
                ratio * 100,
                limit,
                threshold * 100,
            )
            if self._url is None:
                continue
            event = {
                "event": "budget_threshold",
                "scope": scope,
                "period": period,
                "period_start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "threshold": threshold,
                "spent_usd": round(spent, 6),
                "limit_usd": limit,
                "used_ratio": round(ratio, 4),
            }
            try:
                self._send.send_nowait(event)
            except trio.WouldBlock:
                self.dropped += 1

    async def run(self) -> None:
        """Post queued alerts to ``budget.webhook_url`` one at a time."""
        if self._url is None:
            return
        async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as client:
            async for event in self._receive:
                if self._claim is not None and not await self._claim(alert_id(event)):
                    self.posted_elsewhere += 1
                    continue
                try:
                    response = await client.post(self._url, json=event)
                    response.raise_for_status()
                    self.sent += 1
                except httpx.HTTPError as exc:
                    self.failed += 1
                    log.warning("budget: webhook failed: %s", type(exc).__name__)
