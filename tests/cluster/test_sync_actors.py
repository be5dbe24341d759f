"""What the actors tell the fleet and how they take a peer's entry (MockClock, no Redis)."""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.testing

from llmswitch.actors.health import (
    BackendHealth,
    HealthActor,
    HealthView,
    after_peer,
    after_probe,
)
from llmswitch.actors.keys import key_data, merge_keys, stored_data
from llmswitch.actors.pool import Grant, Lease, Outcome, PoolActor, PoolView
from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.actors.router import (
    ClearSetting,
    PutRule,
    PutSetting,
    SetProfile,
    setting_change,
    stored_settings,
)
from llmswitch.cluster.news import Entry, Heard, Topic, changes
from llmswitch.config import KeyPolicy, RuleConfig
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.watch import Watch
from llmswitch.store.keys import StoredKey
from tests.actors.test_pool_limits_health import config, start


def entry(topic: Topic, key: str, data: Any, stamp: float = 10.0) -> Entry:
    return Entry(topic=topic, key=key, stamp=stamp, origin="peer", data=data)


async def test_our_breaker_opening_and_closing_is_told_and_a_peers_is_taken(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    told: list[tuple[str, str, Any]] = []
    view: Watch[PoolView] = Watch(PoolView())
    box: Mailbox[Any] = Mailbox("pool")
    await start(nursery, PoolActor(config(), view, lambda *t: told.append(t)), box)
    for _ in range(2):
        assert await box.call(Lease("b"))
        await box.cast(Outcome("b", "m", ok=False))
    await box.call(Lease("b"))
    assert [(k, d["open"]) for _, k, d in told] == [("model:m", True), ("backend:b", True)]
    assert told[1][2]["until"] > time.time() + 5  # the 10 s cooldown, in wall time

    # A peer's probe got through: ours turns half-open, and our own probe closes it.
    await box.cast(Heard(entry("breaker", "backend:b", {"open": False})))
    probe = await box.call(Lease("b"))
    assert probe == Grant(backend_probe=True)
    await box.cast(Outcome("b", "m", ok=True, grant=probe))
    await box.call(Lease("b"))
    assert told[-1] == ("breaker", "backend:b", {"open": False})

    # A peer's junk is logged and dropped; the pool carries on.
    await box.cast(Heard(entry("breaker", "backend:b", {"open": True, "until": "soon"})))
    assert await box.call(Lease("b"))
    await box.cast(Outcome("b", "m", ok=None))

    # A peer's model breaker opened for 30 s: ours is open that long, and says nothing.
    before = len(told)
    until = time.time() + 30
    await box.cast(Heard(entry("breaker", "model:m", {"open": True, "until": until})))
    assert not await box.call(Lease("b", "m"))
    assert view.value.open_models == {"m"}
    await trio.sleep(31)
    assert await box.call(Lease("b", "m"))
    assert len(told) == before


def test_a_peers_health_verdict_counts_as_our_own_probe() -> None:
    down = after_peer(BackendHealth(), up=False, error="HTTP 500", failures_to_down=3)
    assert (down.up, down.consecutive_failures, down.by_peer) == (False, 3, True)
    up = after_peer(down, up=True, error=None, failures_to_down=3)
    assert (up.up, up.consecutive_failures, up.checked, up.by_peer) == (True, 0, True, False)


def test_a_peers_up_does_not_lift_a_down_of_our_own_probes() -> None:
    ours = BackendHealth()
    for _ in range(3):
        ours = after_probe(ours, "ConnectError", 1.0, failures_to_down=3)
    assert not ours.up and not ours.by_peer
    assert after_peer(ours, up=True, error=None, failures_to_down=3) == ours
    assert after_probe(ours, None, 1.0, failures_to_down=3).up


def key(name: str, created: float) -> StoredKey:
    return StoredKey(name, b"\x01" * 32, KeyPolicy(), created)


def key_entry(name: str, stamp: float, live: bool = True) -> Entry:
    data = {"sha256": "02" * 32, "policy": {}, "created_at": stamp} if live else None
    return entry("key", name, data, stamp)


def test_keys_in_force_are_the_newest_per_name_of_the_store_and_the_fleet() -> None:
    local = [key("mine", 5.0), key("revoked", 5.0), key("recreated", 20.0)]
    fleet = {
        "peer": key_entry("peer", 6.0),
        "revoked": key_entry("revoked", 7.0, live=False),
        "recreated": key_entry("recreated", 7.0, live=False),
        "junk": entry("key", "junk", {"sha256": "zz"}, 8.0),
    }
    merged = {k.name: k for k in merge_keys(local, fleet)}
    assert sorted(merged) == ["mine", "peer", "recreated"]
    assert merged["peer"].digest == b"\x02" * 32
    assert merged["recreated"].digest == b"\x01" * 32  # made here after the revocation


def test_a_stored_setting_goes_out_and_comes_back_as_the_change_that_stores_it() -> None:
    rule = RuleConfig(name="r", pattern="x", action="route", target="m")
    stored = {"profile": "eco", "routing.block": ["m"], "budget.daily_usd": None}
    told = changes({}, stored_settings(stored, [rule]))
    back = {k: setting_change(entry("setting", k, d)) for k, d in told}
    expected = {
        "profile": SetProfile("eco"),
        "routing.block": PutSetting("routing.block", ["m"]),
        "budget.daily_usd": PutSetting("budget.daily_usd", None),  # no limit, not cleared
        "rule:r": PutRule(rule),
    }
    assert back.keys() == expected.keys()
    for k, change in expected.items():
        assert type(back[k]) is type(change)
        assert vars(back[k]) | {"reply": None} == vars(change) | {"reply": None}
    cleared = changes(stored_settings({"budget.daily_usd": 5.0}, []), {})
    assert setting_change(entry("setting", *cleared[0])).__class__ is ClearSetting
    assert setting_change(entry("setting", "weather", {"value": 1})) is None


async def test_a_backend_our_probe_finds_down_is_told_and_stays_down_on_a_peers_up(
    nursery: trio.Nursery,
) -> None:
    told: list[tuple[str, str, Any]] = []
    cfg = config()
    health = {"failures_to_down": 1, "interval_s": 3600}  # one probe, at start
    cfg = cfg.model_copy(update={"health": cfg.health.model_copy(update=health)})
    view: Watch[HealthView] = Watch(HealthView())
    box: Mailbox[Any] = Mailbox("health")
    await start(nursery, HealthActor(cfg, view, lambda *t: told.append(t)), box)
    with trio.fail_after(10):
        while not told:  # noqa: ASYNC110 (the first probe, to a closed port, is under way)
            await trio.sleep(0.01)
    assert told[0][:2] == ("health", "b") and told[0][2]["up"] is False
    await box.cast(Heard(entry("health", "b", {"up": True, "error": None})))
    await box.call(Reconfigure(cfg), timeout=10)  # the Heard before it has been handled
    assert view.value.down == {"b"}  # our own probe's word stands until our next probe
    assert len(told) == 1


def test_what_our_store_gains_or_loses_is_told_and_nothing_else() -> None:
    kept, made = key("kept", 1.0), key("made", 2.0)
    told = changes(stored_data([kept, key("gone", 1.0)]), stored_data([kept, made]))
    assert told == [("made", key_data(made)), ("gone", None)]
    assert "sha256" in key_data(made) and "key" not in key_data(made)
