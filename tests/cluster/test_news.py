"""The fleet's message formats and merge rules: pure, no trio, no Redis."""

from __future__ import annotations

import json

import pytest

from llmswitch.cluster.news import (
    MAX_ENTRY_BYTES,
    PEER_FORGET_S,
    PEER_TTL_S,
    BadEntry,
    BreakerNews,
    Entry,
    Peer,
    Seen,
    breaker_change,
    breaker_key,
    decode,
    newest,
    roster,
)


def entry(key: str = "k", stamp: float = 1.0, topic: str = "key", **data: object) -> Entry:
    return Entry(topic=topic, key=key, stamp=stamp, origin="a", data=data or None)  # type: ignore[arg-type]


def test_an_entry_survives_the_wire() -> None:
    e = Entry(topic="setting", key="profile", stamp=12.5, origin="i-1", data={"value": "cheap"})
    assert decode(e.encode()) == e
    assert decode(e.encode().encode()) == e


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        "[]",
        '{"t":"weather","k":"x","s":1,"o":"a","d":null}',
        '{"t":"key","k":1,"s":1,"o":"a","d":null}',
        '{"t":"key","k":"x","s":"1","o":"a","d":null}',
        '{"t":"key","k":"x","s":true,"o":"a","d":null}',
        '{"t":"key","k":"x","s":1,"o":"a","d":[1]}',
        '{"t":"key","k":"x","s":NaN,"o":"a","d":null}',
        "x" * (MAX_ENTRY_BYTES + 1),
    ],
)
def test_what_is_not_an_entry_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(BadEntry):
        decode(raw)


def test_an_entry_over_the_cap_is_not_sent() -> None:
    with pytest.raises(BadEntry, match="over the cap"):
        entry(blob="x" * MAX_ENTRY_BYTES).encode()


def test_a_stored_topic_applies_each_change_once_and_never_an_older_one() -> None:
    seen = Seen()
    assert seen.fresh(entry(stamp=2.0))
    seen.note(entry(stamp=2.0))
    assert not seen.fresh(entry(stamp=2.0))  # the same change again (pub/sub, then a resync)
    assert not seen.fresh(entry(stamp=1.0))  # an older one arriving late
    seen.note(entry(stamp=1.0))
    assert seen.fresh(entry(stamp=3.0))
    assert seen.fresh(entry(key="other", stamp=1.0))


def test_a_change_not_applied_yet_is_still_news() -> None:
    seen = Seen()
    assert seen.fresh(entry(stamp=2.0))
    assert seen.fresh(entry(stamp=2.0))  # dropped on the way: the next resync brings it


def test_published_only_topics_are_always_news() -> None:
    seen = Seen()
    pin = entry(topic="affinity", stamp=1.0, model="m")
    seen.note(pin)
    assert seen.fresh(pin)


def test_the_newest_entry_per_key_wins_a_revocation_included() -> None:
    created = entry("alice", 1.0, sha256="ab")
    revoked = entry("alice", 2.0)
    other = entry("bob", 1.5, sha256="cd")
    assert newest([revoked, created, other]) == {"alice": revoked, "bob": other}


def test_breaker_keys_tell_backends_from_models() -> None:
    assert breaker_key("backend", "x") != breaker_key("model", "x")


def test_a_peers_open_breaker_has_what_is_left_of_its_cooldown() -> None:
    news = BreakerNews.of(BreakerNews(is_open=True, until=105.0).data())
    assert news.open_for(wall_now=103.0) == pytest.approx(2.0)
    assert news.open_for(wall_now=106.0) == 0.0
    assert BreakerNews.of(BreakerNews(is_open=False).data()).open_for(0.0) == 0.0


def test_a_breaker_entry_with_a_bad_until_is_refused() -> None:
    with pytest.raises(BadEntry):
        BreakerNews.of({"open": True, "until": "soon"})


def peer(pid: str, last_seen: float, started: float = 0.0) -> Peer:
    return Peer(id=pid, address="127.0.0.1:1", started=started, last_seen=last_seen)


def test_a_peer_that_stops_renewing_is_gone_after_the_ttl() -> None:
    assert peer("a", 100.0).state(100.0 + PEER_TTL_S / 2) == "up"
    assert peer("a", 100.0).state(100.0 + PEER_TTL_S) == "gone"
    assert Peer.decode(peer("a", 1.0).encode()) == peer("a", 1.0)
    with pytest.raises(BadEntry):
        Peer.decode(json.dumps({"id": "a"}))


def test_the_roster_shows_peers_by_start_and_forgets_long_gone_ones() -> None:
    now = 10_000.0
    shown, forget = roster(
        [
            peer("b", now, started=2.0),
            peer("a", now - 30, started=1.0),
            peer("z", now - PEER_FORGET_S - 1),
        ],
        now,
    )
    assert [(p["id"], p["state"]) for p in shown] == [("a", "gone"), ("b", "up")]
    assert forget == ["z"]


def test_a_breaker_tells_the_fleet_when_it_opens_and_when_it_closes_again() -> None:
    assert breaker_change("closed", "open", 5.0, 100.0) == BreakerNews(is_open=True, until=105.0)
    assert breaker_change("half_open", "open", 10.0, 100.0) == BreakerNews(True, 110.0)
    assert breaker_change("half_open", "closed", None, 100.0) == BreakerNews(is_open=False)
    assert breaker_change("open", "half_open", None, 100.0) is None
    assert breaker_change("closed", "closed", None, 100.0) is None
