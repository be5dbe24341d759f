"""Pool, limits and health actors, driven by MockClock through their mailboxes."""

from __future__ import annotations

from typing import Any

import trio

from llmswitch.actors.health import BackendHealth, after_probe, probe_paths
from llmswitch.actors.limits import (
    Acquire,
    LimitsActor,
    LimitsView,
    Report,
    cooldown_from_headers,
    parse_reset,
    parse_retry_after,
)
from llmswitch.actors.pool import Grant, Lease, Outcome, PoolActor, PoolView
from llmswitch.config import Config, parse_config
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.watch import Watch


def config(**backend: Any) -> Config:
    return parse_config(
        {
            "backends": [{"name": "b", "base_url": "http://127.0.0.1:9/v1", **backend}],
            "models": [{"id": "m", "backend": "b"}, {"id": "gone", "backend": "b"}],
            "breaker": {"consecutive_failures": 2, "cooldown_s": 10},
        }
    )


async def start(nursery: trio.Nursery, actor: Actor[Any], mailbox: Mailbox[Any]) -> None:
    await nursery.start(actor.run, mailbox.inbox)


async def test_pool_opens_the_breaker_and_half_opens_after_cooldown(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[PoolView] = Watch(PoolView())
    mailbox: Mailbox[Any] = Mailbox("pool")
    await start(nursery, PoolActor(config(), view), mailbox)
    for _ in range(2):
        assert await mailbox.call(Lease("b"))
        await mailbox.cast(Outcome("b", "m", ok=False))
    assert not await mailbox.call(Lease("b"))
    assert view.value.open_breakers == {"b"}
    assert view.value.backends["b"].in_flight == 0
    await trio.sleep(10.01)  # the actor republishes when the cooldown ends, unprompted
    assert view.value.backends["b"].breaker == "half_open"
    probe = await mailbox.call(Lease("b"))
    assert probe == Grant(backend_probe=True)
    assert not await mailbox.call(Lease("b"))  # exactly one probe
    # A stale success (an attempt leased before the breaker opened) decides nothing.
    await mailbox.cast(Outcome("b", "m", ok=True, latency_ms=100, ttfb_ms=20))
    assert not await mailbox.call(Lease("b"))
    await mailbox.cast(Outcome("b", "m", ok=True, latency_ms=100, ttfb_ms=20, grant=probe))
    await mailbox.call(Lease("b"))
    assert view.value.backends["b"].breaker == "closed"
    stats = view.value.models["m"]
    assert (stats.latency_ms, stats.ttfb_ms) == (100, 20)


async def test_a_missing_model_opens_its_own_breaker_not_its_backends(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[PoolView] = Watch(PoolView())
    mailbox: Mailbox[Any] = Mailbox("pool")
    await start(nursery, PoolActor(config(), view), mailbox)
    for _ in range(2):
        assert await mailbox.call(Lease("b", "gone"))
        await mailbox.cast(Outcome("b", "gone", ok=False, model_only=True))
    assert not await mailbox.call(Lease("b", "gone"))
    assert await mailbox.call(Lease("b", "m"))  # the backend and its other models serve on
    assert view.value.open_models == {"gone"} and view.value.open_breakers == frozenset()
    assert view.value.models["gone"].success is not None
    assert view.value.models["gone"].success < 0.5


async def test_limits_learn_a_cooldown_from_retry_after(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[LimitsView] = Watch(LimitsView())
    mailbox: Mailbox[Any] = Mailbox("limits")
    await start(nursery, LimitsActor(config(), view), mailbox)
    await mailbox.cast(Report(("b",), 429, retry_after_s=30))
    await mailbox.call(Acquire(("b",)))
    assert view.value.limited(trio.current_time()) == {"b"}
    await trio.sleep(30)
    assert view.value.limited(trio.current_time()) == frozenset()


async def test_limits_rpm_bucket_throttles_and_refills(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[LimitsView] = Watch(LimitsView())
    mailbox: Mailbox[Any] = Mailbox("limits")
    await start(nursery, LimitsActor(config(rpm=2), view), mailbox)
    assert await mailbox.call(Acquire(("b",))) == 0.0
    assert await mailbox.call(Acquire(("b",))) == 0.0
    assert await mailbox.call(Acquire(("b",))) == 30.0
    await trio.sleep(30)
    assert await mailbox.call(Acquire(("b",))) == 0.0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("999999") == 300.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after(None) is None


def test_health_goes_down_after_n_failures_and_up_after_one_success() -> None:
    h = BackendHealth()
    for _ in range(2):
        h = after_probe(h, "refused", 1.0, failures_to_down=3)
        assert h.up
    h = after_probe(h, "refused", 1.0, failures_to_down=3)
    assert not h.up and h.consecutive_failures == 3 and h.last_error == "refused"
    h = after_probe(h, None, 5.0, failures_to_down=3)
    assert h.up and h.consecutive_failures == 0 and h.last_latency_ms == 5.0


def test_ollama_is_probed_on_models_and_tags() -> None:
    cfg = parse_config(
        {"backends": [{"name": "o", "kind": "ollama", "base_url": "http://127.0.0.1:11434/v1"}]}
    )
    assert probe_paths(cfg.backends[0]) == [
        "http://127.0.0.1:11434/v1/models",
        "http://127.0.0.1:11434/api/tags",
    ]


async def test_limits_take_from_every_scope_or_none(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = parse_config(
        {
            "backends": [{"name": "b", "base_url": "http://127.0.0.1:9/v1", "rpm": 10}],
            "models": [{"id": "m", "backend": "b", "tpm": 100}],
        }
    )
    view: Watch[LimitsView] = Watch(LimitsView())
    mailbox: Mailbox[Any] = Mailbox("limits")
    await start(nursery, LimitsActor(cfg, view), mailbox)
    assert await mailbox.call(Acquire(("b", "model:m"), tokens=80)) == 0.0
    # The model's token bucket refuses: the backend's request token must not be spent.
    assert await mailbox.call(Acquire(("b", "model:m"), tokens=80)) > 0
    for _ in range(9):
        assert await mailbox.call(Acquire(("b",))) == 0.0
    assert await mailbox.call(Acquire(("b",))) > 0


async def test_exhausted_ratelimit_headers_cool_the_backend_down(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[LimitsView] = Watch(LimitsView())
    mailbox: Mailbox[Any] = Mailbox("limits")
    await start(nursery, LimitsActor(config(), view), mailbox)
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "12s"}
    await mailbox.cast(Report(("b", "model:m"), 200, headers=headers))
    await mailbox.call(Acquire(("b",)))
    assert view.value.limited(trio.current_time()) == {"b"}
    await trio.sleep(12)
    assert view.value.limited(trio.current_time()) == frozenset()


def test_reset_durations() -> None:
    assert parse_reset("20") == 20.0
    assert parse_reset("1s") == 1.0
    assert parse_reset("4m0s") == 240.0
    assert parse_reset("6m0s") == 300.0  # capped
    assert parse_reset("2m59.5s") == 179.5
    assert parse_reset("250ms") == 0.25
    assert parse_reset("soon") is None
    assert cooldown_from_headers({"x-ratelimit-remaining-tokens": "5"}) is None
    assert (
        cooldown_from_headers(
            {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "3s"}
        )
        == 3.0
    )


async def test_a_half_open_probe_leased_to_a_caller_that_left_is_given_back(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[PoolView] = Watch(PoolView())
    mailbox: Mailbox[Any] = Mailbox("pool")
    pool = PoolActor(config(), view)
    for _ in range(2):  # open the breaker, then let the cooldown pass: half-open
        pool._record(Outcome("b", "m", ok=False))
    await trio.sleep(10.01)
    assert pool._breakers["b"].state == "half_open"
    # The caller is cancelled while its lease waits in the mailbox (the actor is busy).
    scope = trio.CancelScope()

    async def caller() -> None:
        with scope:
            await mailbox.call(Lease("b", "m"))

    async with trio.open_nursery() as callers:
        callers.start_soon(caller)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()
    assert mailbox.depth == 1
    # Now the actor runs and grants the probe permit to a caller that is gone.
    await start(nursery, pool, mailbox)
    await trio.testing.wait_all_tasks_blocked()
    assert view.value.backends["b"].in_flight == 0
    probe = await mailbox.call(Lease("b", "m"))
    assert probe == Grant(backend_probe=True, model_probe=True)  # both permits came back
    await mailbox.cast(Outcome("b", "m", ok=True, grant=probe))
    await mailbox.call(Lease("b", "m"))
    assert view.value.backends["b"].breaker == "closed"
