"""The Redis link: one client for the fleet's shared state, and whether Redis answers.

A :class:`Link` owns one coredis client for ``cluster.redis_url``. Every key and channel
goes through :meth:`Link.key`, so one Redis serves several fleets (``cluster.prefix``).
Its :attr:`Link.state` is a :class:`~llmswitch.runtime.watch.Watch` of
:class:`LinkState`: ``up`` while Redis answers, degraded (with the reason) when it does
not. Users read it without a round trip and fall back to local state while degraded.

Redis going away never raises out of :meth:`Link.run`: it pings every
``ping_interval_s``, and after a failure tries again with the project's backoff. A
command that fails (refused, reset, timed out after ``op_timeout_s``) marks the link
degraded at once and raises :class:`LinkDown`, the one error callers handle; the next
good answer, from a command or the pinger, marks it up. coredis reconnects by itself
once the server is back, so there is no client to rebuild.

The URL may hold a password: only :func:`describe_url` of it reaches logs, /debug and
the reasons in :class:`LinkState`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import coredis
import coredis.exceptions
import trio
from coredis.commands.script import Script
from coredis.retry import NoRetryPolicy

from llmswitch.config import ClusterConfig
from llmswitch.runtime.backoff import Backoff
from llmswitch.runtime.watch import Watch

log = logging.getLogger(__name__)

#: Waits between pings while Redis is away: soon at first, then every few seconds.
RECONNECT = Backoff(base_s=0.2, cap_s=5.0, jitter=0.5)
#: How long one command may take before Redis counts as away.
OP_TIMEOUT_S = 2.0
PING_INTERVAL_S = 1.0

#: What a Redis that is away, hung or refusing raises, once mapped at this edge.
_FAILURES = (coredis.exceptions.RedisError, OSError)


class LinkDown(Exception):
    """Redis did not answer; the link is degraded and the caller falls back to local state."""


@dataclass(frozen=True)
class LinkState:
    up: bool = False
    #: Why the link is degraded ("" while up); never holds the URL's password.
    reason: str = "connecting"
    #: Times the link went from up to degraded.
    outages: int = 0


def describe_url(url: str) -> str:
    """``url`` for logs and /debug: no user, password or query (which may hold one)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


class Link:
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        op_timeout_s: float = OP_TIMEOUT_S,
        ping_interval_s: float = PING_INTERVAL_S,
        backoff: Backoff = RECONNECT,
    ) -> None:
        self._url = url
        self.prefix = prefix
        #: This process among the fleet's: a fresh id at each start.
        self.instance = uuid.uuid4().hex[:12]
        self.described = describe_url(url)
        self._secret = urlsplit(url).password
        self.op_timeout_s = op_timeout_s
        self.ping_interval_s = ping_interval_s
        self.backoff = backoff
        #: Changes only when the link goes up or degraded (or the reason changes).
        self.state: Watch[LinkState] = Watch(LinkState())
        #: trio time of Redis's last answer; None: never answered.
        self.last_seen: float | None = None
        self._client: coredis.Redis[str] | None = None

    @classmethod
    def of(cls, cluster: ClusterConfig) -> Link | None:
        """The link ``cluster`` asks for; None without ``redis_url`` (one process alone)."""
        return cls(cluster.redis_url, cluster.prefix) if cluster.redis_url else None

    @property
    def up(self) -> bool:
        return self.state.value.up

    def key(self, *parts: str) -> str:
        """The key (or channel) ``<prefix>:<part>:<part>...``: every name goes through here."""
        return ":".join((self.prefix, *parts))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the client open and keep :attr:`state` true until cancelled; never raises
        for Redis's sake. Started (``task_status``) once the first ping has answered or
        failed (``op_timeout_s`` at most): a gateway whose Redis is away starts degraded."""
        client = coredis.Redis.from_url(
            self._url,
            decode_responses=True,
            # The link itself retries (the pinger, with backoff) and callers fall back at
            # once; coredis's own retries would only delay that and log every attempt.
            retry_policy=NoRetryPolicy(),
            stream_timeout=self.op_timeout_s,
            connect_timeout=self.op_timeout_s,
        )
        async with client:
            self._client = client
            try:
                await self._keep_alive(task_status)
            finally:
                self._client = None

    async def _keep_alive(self, task_status: trio.TaskStatus[None]) -> None:
        attempt = 0
        while True:
            try:
                await self.call(lambda c: c.ping())
            except LinkDown:
                wait = self.backoff.delay(attempt)
                attempt += 1
            else:
                wait, attempt = self.ping_interval_s, 0
            task_status.started()
            task_status = trio.TASK_STATUS_IGNORED
            await trio.sleep(wait)

    async def call(self, command: Any) -> Any:
        """``await command(client)`` within ``op_timeout_s``; LinkDown if Redis fails it.

        The one place Redis's errors are mapped: every other method goes through here.
        """
        client = self._client
        if client is None:
            self._lost("not connected")
            raise LinkDown("not connected")
        try:
            with trio.fail_after(self.op_timeout_s):
                result = await command(client)
        except trio.TooSlowError as exc:
            reason = f"no answer within {self.op_timeout_s:g}s"
            self._lost(reason)
            raise LinkDown(reason) from exc
        except _FAILURES as exc:
            reason = self._scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            self._lost(reason)
            raise LinkDown(reason) from exc
        self._seen()
        return result

    def script(self, source: str) -> Script[str]:
        """A Lua script run by :meth:`evalsha` (loaded once per Redis, again after a restart)."""
        return Script(script=source)

    async def evalsha(self, script: Script[str], keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` by its SHA; a Redis that lost it (NOSCRIPT, e.g. restarted) gets
        it loaded again and the call is retried once. LinkDown if Redis is away."""
        return await self.call(lambda c: script(keys=list(keys), args=list(args), client=c))

    async def publish(self, channel: str, message: str) -> int:
        """Publish on ``<prefix>:<channel>``; the number of subscribers that got it."""
        return int(await self.call(lambda c: c.publish(self.key(channel), message)))

    @asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[AsyncIterator[tuple[str, str]]]:
        """Messages on ``<prefix>:<channel>`` as (channel, data), channel without the prefix.

        coredis resubscribes by itself after Redis returns; what was published meanwhile
        is lost, so a subscriber resynchronises when :attr:`state` goes up again.
        """
        if self._client is None:
            raise LinkDown("not connected")
        names = [self.key(c) for c in channels]
        cut = len(self.prefix) + 1
        async with self._client.pubsub(channels=names, ignore_subscribe_messages=True) as ps:

            async def messages() -> AsyncIterator[tuple[str, str]]:
                async for message in ps:
                    if message["type"] == "message":
                        yield str(message["channel"])[cut:], str(message["data"])

            yield messages()

    def _seen(self) -> None:
        self.last_seen = trio.current_time()
        state = self.state.value
        if not state.up:
            log.info("cluster: Redis at %s answers", self.described)
            self.state.publish(replace(state, up=True, reason=""))

    def _lost(self, reason: str) -> None:
        state = self.state.value
        if state.up:
            log.warning("cluster degraded: Redis at %s: %s", self.described, reason)
            self.state.publish(replace(state, up=False, reason=reason, outages=state.outages + 1))
        elif state.reason != reason:
            self.state.publish(replace(state, reason=reason))

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def snapshot(self) -> dict[str, Any]:
        """The link for /debug: redacted URL, prefix, up or degraded and why."""
        state, seen = self.state.value, self.last_seen
        return {
            "redis": self.described,
            "prefix": self.prefix,
            "instance": self.instance,
            "state": "up" if state.up else "degraded",
            "reason": state.reason,
            "status": "cluster up" if state.up else f"cluster degraded: {state.reason}",
            "last_seen_s_ago": None if seen is None else round(trio.current_time() - seen, 1),
            "outages": state.outages,
        }
