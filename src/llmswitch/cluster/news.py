"""What the instances of a fleet tell each other, and how each one takes what it hears.

Pure: message formats and merge rules over plain data; no trio, no Redis (the shell is
:mod:`llmswitch.cluster.spread`).

Every change worth spreading is an :class:`Entry`: a topic, a key within it, the
wall-clock stamp of the change at its source, the instance that made it, and its data
(None: the key was deleted, e.g. a revoked client key). Entries of the stored topics are
kept in one Redis hash per topic, the newest stamp per key winning, and published on one
channel in the same atomic step; so two instances that change one key at once end up
agreeing on the later change, pub/sub brings a change within milliseconds, and reading
the hashes brings back what an outage made an instance miss.

Merge rules, by topic (a peer's entry is one more input to the decision its local
counterpart feeds):

- ``breaker``: a peer's "open" opens ours until the peer's cooldown ends (it never
  shortens ours); a peer's "closed" (its probe got through) ends our cooldown, so our
  breaker turns half-open and our next call is its own probe.
- ``health``: a peer's verdict counts as our own probe's, down or up at once; our next
  probe speaks for us again.
- ``key``: newest per name: a key created anywhere works everywhere; a revocation wins
  over the key it revokes, and over an older copy of it in an instance's own store.
- ``setting``: newest per key (``profile``, ``overrides``, ``rule:<name>``); each
  instance writes it into its own store, so it survives a restart without Redis.
- ``affinity`` (published, not stored): a conversation's pin, kept for its TTL.
- ``reload`` (published, not stored): a peer reloaded its config; reload ours.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

Topic = Literal["breaker", "health", "key", "setting", "affinity", "reload"]
TOPICS: Final[tuple[Topic, ...]] = get_args(Topic)
#: Topics kept in Redis (newest per key) as well as published: the state to resync from.
STORED: Final = frozenset[Topic]({"breaker", "health", "key", "setting"})
#: An entry bigger than this is refused on both ends: a rule or a policy is far smaller.
MAX_ENTRY_BYTES: Final = 64 * 1024


class BadEntry(ValueError):
    """Bytes on the channel or in a hash that are not an entry we understand."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    topic: Topic
    key: str
    #: Wall-clock seconds of the change at its source; the newest per (topic, key) wins.
    stamp: float
    #: The instance that made the change (a fresh id per process start).
    origin: str
    data: Mapping[str, Any] | None

    def encode(self) -> str:
        text = json.dumps(
            {"t": self.topic, "k": self.key, "s": self.stamp, "o": self.origin, "d": self.data},
            separators=(",", ":"),
            allow_nan=False,
        )
        if len(text) > MAX_ENTRY_BYTES:
            raise BadEntry(f"{self.topic} {self.key!r}: {len(text)} bytes, over the cap")
        return text

    @property
    def stored(self) -> bool:
        return self.topic in STORED


#: How an actor tells the fleet of a change it made: topic, key, data (None: deleted). The
#: fleet stamps it and sends it without blocking the actor.
Tell = Callable[[Topic, str, "Mapping[str, Any] | None"], None]


def silent(topic: Topic, key: str, data: Mapping[str, Any] | None) -> None:
    """The :data:`Tell` of a gateway with no fleet: nobody to tell."""


@dataclass(frozen=True)
class Heard:
    """An actor's message: a peer's change, to take as its topic's merge rule says."""

    entry: Entry


def decode(raw: str | bytes) -> Entry:
    """The entry in ``raw``; BadEntry says why not (a peer of another version, or junk)."""
    if len(raw) > MAX_ENTRY_BYTES:
        raise BadEntry(f"{len(raw)} bytes, over the cap")
    try:
        obj = json.loads(raw)
    except ValueError as exc:
        raise BadEntry(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BadEntry("not a JSON object")
    topic, key, stamp, origin, data = (obj.get(f) for f in ("t", "k", "s", "o", "d"))
    if topic not in TOPICS:
        raise BadEntry(f"unknown topic {topic!r}")
    if not isinstance(key, str) or not isinstance(origin, str):
        raise BadEntry("key and origin must be strings")
    if not isinstance(stamp, int | float) or isinstance(stamp, bool) or not math.isfinite(stamp):
        raise BadEntry("stamp must be a number")
    if data is not None and not isinstance(data, dict):
        raise BadEntry("data must be an object or null")
    return Entry(topic=topic, key=key, stamp=float(stamp), origin=origin, data=data)


class Seen:
    """The newest stamp applied per (topic, key) of the stored topics.

    An entry no newer than one already applied is stale: pub/sub and a resync may bring
    the same change twice, or an old one after a newer. An entry is noted only once it
    was applied (handed to its actor), so one dropped on the way comes back at the next
    resync.
    """

    def __init__(self) -> None:
        self._stamps: dict[tuple[str, str], float] = {}

    def fresh(self, entry: Entry) -> bool:
        """Whether ``entry`` is news: newer than any applied for its key."""
        return not entry.stored or self._stamps.get((entry.topic, entry.key), -math.inf) < (
            entry.stamp
        )

    def note(self, entry: Entry) -> None:
        """``entry`` was applied: nothing older for its key is news from now on."""
        if entry.stored:
            where = (entry.topic, entry.key)
            self._stamps[where] = max(entry.stamp, self._stamps.get(where, -math.inf))


def changes(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, Mapping[str, Any] | None]]:
    """What to tell of stored rows that went from ``before`` to ``after`` (key → data):
    each key added or changed with its data, then each key removed with None."""
    changed: list[tuple[str, Mapping[str, Any] | None]] = [
        (k, v) for k, v in after.items() if before.get(k) != v
    ]
    return changed + [(k, None) for k in before if k not in after]


def newest(entries: Iterable[Entry]) -> dict[str, Entry]:
    """Per key, the entry with the latest stamp (ties: the later one in ``entries``)."""
    out: dict[str, Entry] = {}
    for e in entries:
        if e.key not in out or e.stamp >= out[e.key].stamp:
            out[e.key] = e
    return out


# --- breakers ------------------------------------------------------------------------------


def breaker_key(kind: Literal["backend", "model"], name: str) -> str:
    """A backend's breaker is keyed ``backend:<name>``; a model's ``model:<id>``."""
    return f"{kind}:{name}"


@dataclass(frozen=True)
class BreakerNews:
    """What a breaker's entry says: open until a wall-clock time, or closed again."""

    is_open: bool
    until: float = 0.0

    def data(self) -> dict[str, Any]:
        return {"open": True, "until": self.until} if self.is_open else {"open": False}

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> BreakerNews:
        until = (data or {}).get("until", 0.0)
        if not isinstance(until, int | float) or isinstance(until, bool):
            raise BadEntry("breaker: until must be a number")
        return cls(bool((data or {}).get("open")), float(until))

    def open_for(self, wall_now: float) -> float:
        """How long a peer's open breaker has left from ``wall_now``; 0 once it is over."""
        return max(0.0, self.until - wall_now) if self.is_open else 0.0


def breaker_change(
    before: str, after: str, open_for: float | None, wall_now: float
) -> BreakerNews | None:
    """What to tell the fleet when one of our breakers moved from ``before`` to ``after``
    (states as strings; ``open_for``: its cooldown left): that it opened, that it closed
    again, or nothing (half-open is each instance's own probing)."""
    if after == "open" and before != "open":
        return BreakerNews(is_open=True, until=wall_now + (open_for or 0.0))
    if after == "closed" and before != "closed":
        return BreakerNews(is_open=False)
    return None


# --- presence --------------------------------------------------------------------------------

#: An instance renews its presence this often...
BEAT_S: Final = 1.0
#: ...and is gone once it has not for this long.
PEER_TTL_S: Final = 5.0
#: A gone peer is still shown (as gone) for this long, then forgotten.
PEER_FORGET_S: Final = 3600.0


@dataclass(frozen=True, kw_only=True)
class Peer:
    id: str
    address: str
    started: float
    last_seen: float

    def encode(self) -> str:
        return json.dumps(vars(self), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> Peer:
        try:
            obj = json.loads(raw)
            return cls(
                id=str(obj["id"]),
                address=str(obj["address"]),
                started=float(obj["started"]),
                last_seen=float(obj["last_seen"]),
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise BadEntry(f"peer: {exc!r}") from None

    def state(self, now: float) -> Literal["up", "gone"]:
        return "up" if now - self.last_seen < PEER_TTL_S else "gone"


def roster(peers: Iterable[Peer], now: float) -> tuple[list[dict[str, Any]], list[str]]:
    """The peers to show (each with its state and age), and the ids to forget."""
    shown, forget = [], []
    for p in sorted(peers, key=lambda p: p.started):
        if now - p.last_seen > PEER_FORGET_S:
            forget.append(p.id)
            continue
        age = round(max(0.0, now - p.last_seen), 1)
        shown.append(vars(p) | {"state": p.state(now), "last_seen_s_ago": age})
    return shown, forget
