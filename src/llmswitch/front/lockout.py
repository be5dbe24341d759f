"""Wrong credentials cost time: a peer that keeps guessing is turned away for a while.

Admin tokens are chosen by people and may be short. Without a limit a LAN peer could try
thousands a second, through ``POST /ui/login`` or a bearer header on any admin or model
route. Each peer address has a bucket of :data:`GUESSES` wrong credentials, one coming
back every :data:`REFILL_S`; once it is empty, every credential that peer presents,
right or wrong, is refused with 429 and ``Retry-After`` until one is back, so guessing
on learns nothing. Requests without a credential are not affected, nor are other peers.

At most :data:`MAX_PEERS` addresses are remembered: when full, a peer whose bucket has
filled up again is forgotten first, then the one that guessed longest ago.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmswitch.front.errors import GatewayError

#: Wrong credentials a peer may present in a row before it waits.
GUESSES = 10
#: Seconds for one wrong guess to be forgiven (10 a minute once the bucket is empty).
REFILL_S = 6.0
MAX_PEERS = 4096


@dataclass
class Lockout:
    guesses: int = GUESSES
    refill_s: float = REFILL_S
    max_peers: int = MAX_PEERS
    #: peer -> (guesses left, when that count was taken)
    _left: dict[str, tuple[float, float]] = field(default_factory=dict)

    def _now_left(self, peer: str, now: float) -> float:
        left, at = self._left.get(peer, (float(self.guesses), now))
        return min(float(self.guesses), left + (now - at) / self.refill_s)

    def retry_after(self, peer: str, now: float) -> float | None:
        """Seconds until ``peer`` may present a credential again; None: it may now."""
        left = self._now_left(peer, now)
        return None if left >= 1.0 else (1.0 - left) * self.refill_s

    def failed(self, peer: str, now: float) -> None:
        """``peer`` presented a wrong credential."""
        left = max(0.0, self._now_left(peer, now) - 1.0)
        self._left.pop(peer, None)  # re-inserted last: the dict's order is guess order
        self._left[peer] = (left, now)
        if len(self._left) > self.max_peers:
            self._forget(now)

    def _forget(self, now: float) -> None:
        forgiven = [p for p in self._left if self._now_left(p, now) >= self.guesses]
        for peer in forgiven:
            del self._left[peer]
        while len(self._left) > self.max_peers:
            del self._left[next(iter(self._left))]

    def __len__(self) -> int:
        return len(self._left)


def guessing_refusal(wait_s: float) -> GatewayError:
    retry = max(1, math.ceil(wait_s))
    return GatewayError(
        429,
        f"too many wrong credentials from this address; retry in {retry}s",
        "rate_limit_error",
        code="too_many_wrong_credentials",
        headers={"Retry-After": str(retry)},
    )
