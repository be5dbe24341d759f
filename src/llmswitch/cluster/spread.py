"""The fleet's shell: what our actors tell goes out through Redis, what peers tell comes in.

Out: an actor's :data:`~llmswitch.cluster.news.Tell` puts a stamped entry in a bounded
outbox and returns at once (a full outbox drops and counts). The sender stores a stored
topic's entry in its hash and publishes it, in one Lua step that keeps the newest stamp
per key, for every entry waiting (up to ``BATCH``) at once. While Redis is away, the
newest entry per key waits in ``pending`` and goes out when it returns (the newest-stamp
rule drops it if a peer changed that key since).

In: every message on the fleet's channel is decoded, checked against :class:`Seen` (a
change applied once, never an older one after a newer) and handed to the topic's sink,
which casts it to the actor that owns that state (a full mailbox drops it, and it is
not noted as applied: the next resync brings it back). A resync reads the stored
hashes: when the link comes up, and every ``RESYNC_S`` as a safety net for messages
pub/sub lost while reconnecting.

Presence: every ``BEAT_S`` the instance writes itself (id, address, started, last seen)
into the peers hash and reads the others back for /debug and the dashboard.

With no ``cluster.redis_url`` there is no :class:`Fleet`: actors get
:func:`~llmswitch.cluster.news.silent` and nothing changes.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final

import anyio
import coredis.exceptions
import trio

from llmswitch.cluster.link import Link, LinkDown
from llmswitch.cluster.news import (
    BEAT_S,
    STORED,
    BadEntry,
    Entry,
    Peer,
    Seen,
    Topic,
    decode,
    roster,
)

log = logging.getLogger(__name__)

CHANNEL: Final = "fleet"
#: Entries waiting for the sender; past this, new ones are dropped and counted.
OUTBOX: Final = 4096
#: Entries stored and published by one script call at most.
BATCH: Final = 64
#: The stored hashes are read again this often, besides each time the link comes up.
RESYNC_S: Final = 5.0

# KEYS: the channel, then each entry's hash. ARGV: four per entry: field, stamp, entry,
# "1" to store it. A stored entry no newer than the one in its hash is neither stored nor
# published. Returns how many were published.
_PUT: Final = """
local published = 0
for i = 2, #KEYS do
  local a = (i - 2) * 4
  local fresh = true
  if ARGV[a + 4] == '1' then
    local cur = redis.call('HGET', KEYS[i], ARGV[a + 1])
    fresh = not cur or tonumber(cjson.decode(cur)['s']) < tonumber(ARGV[a + 2])
    if fresh then redis.call('HSET', KEYS[i], ARGV[a + 1], ARGV[a + 3]) end
  end
  if fresh then
    redis.call('PUBLISH', KEYS[1], ARGV[a + 3])
    published = published + 1
  end
end
return published
"""

#: Hands a peer's entry to the actor that owns its state; False if it could not (a full
#: mailbox), and then the next resync brings it again.
Sink = Callable[[Entry], bool]
#: What a subscription raises when Redis goes away (coredis's own task group wraps it),
#: or when the link's client closes under it (a second signal cancels everything at once).
_LOST = (
    LinkDown,
    coredis.exceptions.RedisError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    OSError,
)


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of a (nested) exception group: what to say in one log line."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


class Fleet:
    def __init__(self, link: Link, *, started: float | None = None) -> None:
        self.link = link
        #: This process, for its peers: fresh at every start.
        self.id = uuid.uuid4().hex[:12]
        self.started = time.time() if started is None else started
        #: Where clients reach this instance; set once the gateway listens.
        self.address = ""
        self.sinks: dict[Topic, Sink] = {}
        # Entries with their wire text, encoded (and size-checked) when told.
        self._out_send, self._out_recv = trio.open_memory_channel[tuple[Entry, str]](OUTBOX)
        self._pending: dict[tuple[str, str], tuple[Entry, str]] = {}
        self._seen = Seen()
        self._put = link.script(_PUT)
        self.peers: list[dict[str, Any]] = []
        self._scope: trio.CancelScope | None = None
        self._done = trio.Event()
        self.counts = dict.fromkeys(
            ("told", "dropped", "sent", "heard", "stale", "undelivered", "bad"), 0
        )

    def tell(self, topic: Topic, key: str, data: Mapping[str, Any] | None) -> None:
        """Spread one change of ours (see :data:`~llmswitch.cluster.news.Tell`)."""
        entry = Entry(topic=topic, key=key, stamp=time.time(), origin=self.id, data=data)
        try:
            text = entry.encode()
        except BadEntry as exc:
            self.counts["bad"] += 1
            log.warning("fleet: not telling %s", exc)
            return
        self._seen.note(entry)  # a peer's older news of this key is stale from now on
        try:
            self._out_send.send_nowait((entry, text))
        except trio.WouldBlock:
            self.counts["dropped"] += 1
            return
        self.counts["told"] += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Until :meth:`stop` (or cancelled)."""
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                nursery.start_soon(self._send)
                nursery.start_soon(self._listen)
                nursery.start_soon(self._resync_loop)
                nursery.start_soon(self._beat)
                task_status.started()
        finally:
            self._done.set()

    async def stop(self) -> None:
        """A clean stop, before the link closes under our subscription: leave the roster
        at once (instead of waiting to look gone), then end every task of ours."""
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.link.op_timeout_s), contextlib.suppress(LinkDown):
                await self.link.call(lambda c: c.hdel(self.link.key("peers"), [self.id]))
            if self._scope is not None:
                self._scope.cancel()
                await self._done.wait()

    # --- out --------------------------------------------------------------------------

    async def _send(self) -> None:
        """Store and publish what our actors told, as many as are waiting in one call."""
        async for told in self._out_recv:
            batch = [told]
            while len(batch) < BATCH:
                try:
                    batch.append(self._out_recv.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                await self._store(batch)
            except LinkDown:
                for entry, text in batch:
                    if entry.stored:
                        self._pending[(entry.topic, entry.key)] = (entry, text)

    async def _store(self, batch: list[tuple[Entry, str]]) -> None:
        keys = [self.link.key(CHANNEL)] + [self.link.key(CHANNEL, e.topic) for e, _ in batch]
        args = [
            arg
            for e, text in batch
            for arg in (e.key, repr(e.stamp), text, "1" if e.stored else "0")
        ]
        await self.link.evalsha(self._put, keys, args)
        self.counts["sent"] += len(batch)

    async def _flush_pending(self) -> None:
        while self._pending:
            batch = list(self._pending.values())[:BATCH]
            await self._store(batch)
            for told in batch:
                where = (told[0].topic, told[0].key)
                if self._pending.get(where) is told:
                    del self._pending[where]

    # --- in ---------------------------------------------------------------------------

    def hear(self, raw: str) -> None:
        """One entry from the channel or a hash: to its sink if it is news from a peer."""
        try:
            entry = decode(raw)
        except BadEntry as exc:
            self.counts["bad"] += 1
            log.warning("fleet: ignoring an entry: %s", exc)
            return
        if entry.origin == self.id:
            return
        if not self._seen.fresh(entry):
            self.counts["stale"] += 1
            return
        sink = self.sinks.get(entry.topic)
        if sink is None:
            return
        if sink(entry):
            self._seen.note(entry)
            self.counts["heard"] += 1
        else:
            self.counts["undelivered"] += 1

    async def _listen(self) -> None:
        while True:
            await self._wait_up()
            try:
                async with self.link.subscribe(CHANNEL) as messages:
                    await self._resync()  # after subscribing: nothing falls in between
                    async for _, raw in messages:
                        self.hear(raw)
            except* _LOST as lost:
                log.info("fleet: subscription lost (%s); subscribing again", _first(lost))
            await trio.sleep(BEAT_S)

    async def _wait_up(self) -> None:
        state = self.link.state
        while not state.value.up:
            await state.wait_newer(state.version)

    async def _resync_loop(self) -> None:
        """Read the stored state again when the link comes back, and every RESYNC_S."""
        state = self.link.state
        while True:
            with trio.move_on_after(RESYNC_S):
                await state.wait_newer(state.version)
            if state.value.up:
                with contextlib.suppress(LinkDown):
                    await self._resync()

    async def _resync(self) -> None:
        """Send what waited for Redis, then take every stored entry that is news."""
        await self._flush_pending()
        for topic in sorted(STORED):
            for raw in (await self._stored(topic)).values():
                self.hear(raw)

    async def _stored(self, topic: str) -> dict[str, str]:
        return dict(await self.link.call(lambda c: c.hgetall(self.link.key(CHANNEL, topic))))

    # --- presence ---------------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(LinkDown):
                await self._renew()
            await trio.sleep(BEAT_S)

    async def _renew(self) -> None:
        """Say we are here; read who else is (and forget the long gone)."""
        peers_key, now = self.link.key("peers"), time.time()
        me = Peer(id=self.id, address=self.address, started=self.started, last_seen=now)
        await self.link.call(lambda c: c.hset(peers_key, {self.id: me.encode()}))
        found = await self.link.call(lambda c: c.hgetall(peers_key))
        self.peers, forget = roster(_peers(found.values()), now)
        if forget:
            await self.link.call(lambda c: c.hdel(peers_key, forget))

    def snapshot(self) -> dict[str, Any]:
        """The fleet for /debug: who we are, the peers (gone ones too), what went through."""
        return {
            "id": self.id,
            "address": self.address,
            "peers": [p | {"self": p["id"] == self.id} for p in self.peers],
            "pending": len(self._pending),
            "counts": dict(self.counts),
        }


def _peers(raws: Any) -> list[Peer]:
    peers = []
    for raw in raws:
        try:
            peers.append(Peer.decode(raw))
        except BadEntry as exc:
            log.warning("fleet: ignoring a peer: %s", exc)
    return peers
