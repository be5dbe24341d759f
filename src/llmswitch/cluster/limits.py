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

A large bucket is not asked on every request: a take that goes to Redis also leases up
to ``LEASE_SHARE`` of the bucket's capacity when the tokens are there, and the next
requests take from that lease here, for ``LEASE_S`` at most. Leased tokens were taken
from the shared bucket already, so the fleet never admits more than the limit in a
window of ``LEASE_S``; a lease that lapses unused leaves at most that share per instance
unspent. A bucket under ``1 / LEASE_SHARE`` tokens (rpm under 100) is never leased: every
request asks Redis, and the limit holds to the token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import trio

from llmswitch.cluster.link import Link

#: The share of a bucket's capacity one take may lease ahead, and for how long.
LEASE_SHARE = 0.01
LEASE_S = 1.0

# KEYS: one per bucket. ARGV: per bucket capacity, rate per second, amount, lease; then
# the mode: 'take' (all or none; replies {'0', leased per bucket} when taken, else
# {seconds to wait}; a lease is granted as far as the tokens left allow) or 'charge'
# (usage learnt after the fact, may go below zero).
BUCKETS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[#ARGV]
local tokens, wait = {}, 0
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[4 * i - 3]), tonumber(ARGV[4 * i - 2]) / 1000
  local amount = tonumber(ARGV[4 * i - 1])
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
if wait > 0 then return {tostring(wait)} end
local out = {'0'}
for i = 1, #KEYS do
  local cap, rate = tonumber(ARGV[4 * i - 3]), tonumber(ARGV[4 * i - 2]) / 1000
  local left = tokens[i] - tonumber(ARGV[4 * i - 1])
  local lease = math.max(0, math.min(tonumber(ARGV[4 * i]), math.floor(left)))
  left = left - lease
  out[#out + 1] = tostring(lease)
  redis.call('HSET', KEYS[i], 'tokens', tostring(left), 'stamp', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil((cap - left) / rate) + 1000)
end
return out
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


def lease_size(capacity: float) -> int:
    """Tokens one take may lease ahead from a bucket of ``capacity``: 0 for small ones."""
    return math.floor(capacity * LEASE_SHARE)


@dataclass
class Lease:
    """Tokens taken from a shared bucket ahead of need, usable here until ``until``."""

    tokens: float
    until: float


def covered(leases: Mapping[str, Lease], specs: Sequence[BucketSpec], now: float) -> bool:
    """Whether live leases hold every bucket's amount (then Redis need not be asked)."""
    return all(
        s.amount <= 0 or (s.name in leases and leases[s.name].until > now
                          and leases[s.name].tokens >= s.amount)
        for s in specs
    )  # fmt: skip


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
        self.leases: dict[str, Lease] = {}
        #: Takes served from leases, without asking Redis.
        self.leased_takes = 0

    async def take(self, specs: Sequence[BucketSpec]) -> float:
        """Take every bucket's amount, all or none: 0.0, else the seconds to wait.
        From live leases when they cover it; else from Redis (LinkDown if it is away),
        leasing ahead where the bucket allows."""
        now = trio.current_time()
        if covered(self.leases, specs, now):
            for s in specs:
                if s.amount > 0:
                    self.leases[s.name].tokens -= s.amount
            self.leased_takes += 1
            return 0.0
        reply = await self._run(specs, "take", [lease_size(s.capacity) for s in specs])
        if float(reply[0]) > 0:
            return float(reply[0])
        for s, leased in zip(specs, reply[1:], strict=True):
            if float(leased) > 0:
                self.leases[s.name] = Lease(float(leased), now + LEASE_S)
        return 0.0

    async def charge(self, specs: Sequence[BucketSpec]) -> int:
        """Count usage learnt after the fact (tokens a call really used); the buckets."""
        await self._run(specs, "charge", [0] * len(specs))
        return len(specs)

    async def _run(self, specs: Sequence[BucketSpec], mode: str, leases: list[int]) -> list[str]:
        if not specs:
            return ["0"]
        keys = [self.link.key("bucket", s.name) for s in specs]
        args: list[Any] = [
            v
            for s, lease in zip(specs, leases, strict=True)
            for v in (s.capacity, s.rate_per_s, s.amount, lease)
        ]
        return [str(v) for v in await self.link.evalsha(self._buckets, keys, [*args, mode])]

    async def cooldowns(
        self, now: float, cool: tuple[str, float] | None = None
    ) -> Mapping[str, float]:
        """Put ``cool`` (scope, seconds) in, if given; every live cooldown, as deadlines
        on the clock ``now`` was read from. LinkDown if Redis is away."""
        scope, seconds = cool if cool else ("", 0.0)
        keys = [self.link.key("cooldowns")]
        reply = await self.link.evalsha(self._cooldowns, keys, [scope, seconds])
        return cooldowns_here([str(v) for v in reply], now)
