"""When a failed attempt is worth repeating on the same backend, and after how long.

Pure policy over what the attempt saw. A connection that broke before any byte (often a
stale pooled connection) and a 502/503 are transient: one more try on the same backend,
after a jittered backoff or the ``Retry-After`` it asked for (when that is short enough).
Timeouts, 429s, refused connections and repeated failures go straight to the next
candidate: waiting on a backend that is slow, full or down only delays the answer.
"""

from __future__ import annotations

from llmswitch.actors.limits import parse_retry_after
from llmswitch.front.upstream import UpstreamFailure
from llmswitch.runtime.backoff import Backoff

RETRY_SAME_STATUSES = frozenset({502, 503})
MAX_TRIES_PER_BACKEND = 2


def retry_same_in(
    failure: UpstreamFailure, tries: int, backoff: Backoff, retry_after_cap_s: float
) -> float | None:
    """Seconds to wait before trying the same backend again, or None to move on."""
    if tries >= MAX_TRIES_PER_BACKEND or failure.client_fault or failure.timeout:
        return None
    if failure.reset and failure.status is None:
        return backoff.delay(tries - 1)
    if failure.status in RETRY_SAME_STATUSES:
        asked = parse_retry_after(failure.retry_after)
        if asked is None:
            return backoff.delay(tries - 1)
        return asked if asked <= retry_after_cap_s else None
    return None
