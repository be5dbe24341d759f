"""The fleet's rate limits in Redis: token buckets taken by a Lua script on Redis's clock,
and cooldowns learnt from a 429 shared by every instance.

A :class:`FleetLimits` belongs to the gateway; the limits actor calls it while the link
is up and falls back to its own buckets while it is not (N instances degraded together
may then allow up to N times a limit, for as long as Redis is away).

A bucket is a hash (tokens, stamp in ms) that refills at ``rate`` per ms up to
``capacity`` and expires once it would be full again: an idle scope costs Redis nothing.
Taking is all or none across a request's buckets, with the rule of
:class:`~llmswitch.runtime.bucket.TokenBucket` (a request larger than a whole bucket
goes through when the bucket is full). Cooldowns are one hash, scope → until (Redis ms),
read by every instance each ``SYNC_INTERVAL_S``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmswitch.cluster.link import Link

# KEYS: one per bucket. ARGV: per bucket capacity, rate per second, amount; then the mode:
# 'take' (all or none; replies the seconds to wait, '0' when taken) or 'charge' (usage
# learnt after the fact, may go below zero).
BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[#ARGV]
local tokens, wait = {}, 0
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]) / 1000
  local amount = tonumber(ARGV[3 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'stamp')
  local have = cap
  if state[1] then
    have = math.min(cap, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
  end
  tokens[i] = have
  local need = math.min(amount, cap)
  if mode == 'take' and have < need then
    wait = math.max(wait, (need - have) / rate / 1000)
  end
end
if wait > 0 then return tostring(wait) end
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[3 * i - 2]), tonumber(ARGV[3 * i - 1]) / 1000
  local left = tokens[i] - tonumber(ARGV[3 * i])
  redis.call('HSET', KEYS[i], 'tokens', tostring(left), 'stamp', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil((cap - left) / rate) + 1000)
end
return '0'
"""

# KEYS: the cooldowns hash. ARGV: scope and seconds ('' to only read). Replies Redis's
# now (ms) and the live entries, scope then until; dropping the ones that are over.
COOLDOWNS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] ~= '' then
  local until_ms = now + math.floor(tonumber(ARGV[2]) * 1000)
  local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  if until_ms > old then redis.call('HSET', KEYS[1], ARGV[1], until_ms) end
end
local out = {tostring(now)}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
"""


@dataclass(frozen=True)
class BucketSpec:
    """One bucket a request takes from: ``rpm:<scope>`` or ``tpm:<scope>``."""

    name: str
    capacity: float
    rate_per_s: float
    amount: float


def cooldowns_here(reply: Sequence[str], now: float) -> dict[str, float]:
    """The cooldowns Redis listed, as deadlines on this process's clock ``now``."""
    redis_now_ms = float(reply[0])
    pairs = zip(reply[1::2], reply[2::2], strict=True)
    return {scope: now + (float(until) - redis_now_ms) / 1000 for scope, until in pairs}


class FleetLimits:
    def __init__(self, link: Link) -> None:
        self.link = link
        self._buckets = link.script(BUCKETS)
        self._cooldowns = link.script(COOLDOWNS)

    async def take(self, specs: Sequence[BucketSpec]) -> float:
        """Take every bucket's amount, all or none: 0.0, else the seconds to wait.
        LinkDown if Redis is away."""
        return await self._run(specs, "take")

    async def charge(self, specs: Sequence[BucketSpec]) -> float:
        """Count usage learnt after the fact (tokens a call really used); 0.0."""
        return await self._run(specs, "charge")

    async def _run(self, specs: Sequence[BucketSpec], mode: str) -> float:
        if not specs:
            return 0.0
        keys = [self.link.key("bucket", s.name) for s in specs]
        args: list[Any] = [v for s in specs for v in (s.capacity, s.rate_per_s, s.amount)]
        return float(await self.link.evalsha(self._buckets, keys, [*args, mode]))

    async def cooldowns(
        self, now: float, cool: tuple[str, float] | None = None
    ) -> Mapping[str, float]:
        """Put ``cool`` (scope, seconds) in, if given; every live cooldown, as deadlines
        on the clock ``now`` was read from. LinkDown if Redis is away."""
        scope, seconds = cool if cool else ("", 0.0)
        keys = [self.link.key("cooldowns")]
        reply = await self.link.evalsha(self._cooldowns, keys, [scope, seconds])
        return cooldowns_here([str(v) for v in reply], now)
