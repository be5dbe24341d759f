"""Actors adopt a reloaded config and keep the state of what did not change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import trio

from llmswitch.actors.ledger import BudgetView, LedgerActor, LedgerMsg, OverBudget, Reserve, Settle
from llmswitch.actors.limits import Acquire, LimitsActor, LimitsView
from llmswitch.actors.pool import Lease, Outcome, PoolActor, PoolView
from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.config import Config, parse_config
from llmswitch.routing.budget import Budget
from llmswitch.runtime.clock import WallClock
from llmswitch.runtime.mailbox import Mailbox
from llmswitch.runtime.watch import Watch
from llmswitch.store.journal import Journal, journal_dir


def backend(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "base_url": f"http://127.0.0.1:9/{name}", **extra}


def config(*backends: dict[str, Any], **sections: Any) -> Config:
    models = [{"id": f"{b['name']}-m", "backend": b["name"]} for b in backends]
    breaker = {"consecutive_failures": 1, "cooldown_s": 60}
    return parse_config(
        {"backends": list(backends), "models": models, "breaker": breaker} | sections
    )


async def test_the_pool_keeps_unchanged_breakers_and_retires_a_removed_backend_after_its_leases(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    view: Watch[PoolView] = Watch(PoolView())
    box: Mailbox[Any] = Mailbox("pool")
    await nursery.start(
        PoolActor(config(backend("a"), backend("b"), backend("c")), view).run, box.inbox
    )
    assert await box.call(Lease("a"))
    await box.cast(Outcome("a", "a-m", ok=False))
    assert await box.call(Lease("b"))
    await box.cast(Outcome("b", "b-m", ok=False))
    held = await box.call(Lease("c", "c-m"))
    assert held is not None
    assert view.value.open_breakers == {"a", "b"}

    # a unchanged, b changed (a new URL), c removed with a lease out, d added.
    new = config(backend("a"), backend("b", base_url="http://127.0.0.1:9/b2"), backend("d"))
    await box.call(Reconfigure(new))
    assert view.value.open_breakers == {"a"}
    assert set(view.value.backends) == {"a", "b", "c", "d"}
    assert view.value.backends["c"].in_flight == 1
    assert not await box.call(Lease("c"))  # retiring: no new leases
    assert await box.call(Lease("d", "d-m"))
    await box.cast(Outcome("c", "c-m", ok=True, grant=held))
    await box.call(Lease("a"))  # a round trip: the outcome is handled
    assert set(view.value.backends) == {"a", "b", "d"}
    assert set(view.value.models) == {"a-m", "b-m", "d-m"}


async def test_limits_keep_the_buckets_of_unchanged_scopes_and_rebuild_changed_ones(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    box: Mailbox[Any] = Mailbox("limits")
    old = config(backend("a", rpm=1), backend("b", rpm=1), backend("c", rpm=1))
    await nursery.start(LimitsActor(old, Watch(LimitsView())).run, box.inbox)
    for name in "abc":
        assert await box.call(Acquire((name,))) == 0.0
        assert await box.call(Acquire((name,))) > 0  # one a minute: used up
    await box.call(Reconfigure(config(backend("a", rpm=1), backend("b", rpm=2), backend("c"))))
    assert await box.call(Acquire(("a",))) > 0  # unchanged: still used up
    assert await box.call(Acquire(("b",))) == 0.0  # a new limit, a new bucket
    assert await box.call(Acquire(("c",))) == 0.0  # no limit any more
    assert await box.call(Acquire(("c",))) == 0.0


async def test_the_ledger_keeps_spend_and_holds_and_checks_the_next_hold_on_new_budgets(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    store = {"path": str(tmp_path / "l.db"), "flush_interval_s": 3600}
    view: Watch[BudgetView] = Watch(BudgetView())
    box: Mailbox[LedgerMsg] = Mailbox("ledger")
    actor = LedgerActor(
        config(store=store, budget={"daily_usd": 10.0}),
        view,
        Journal(journal_dir(store["path"])),
        WallClock(),
    )
    await nursery.start(actor.run, box.inbox)
    day, key = Budget("all", "day", 10.0), Budget("key:ide", "day", 5.0)
    hold = await box.call(Reserve((day, key), 1.0), timeout=10)
    await box.cast(Settle(None, "r1", 2.0, time.time()))
    await box.call(Reconfigure(config(store=store, budget={"daily_usd": 3.5})), timeout=10)
    assert view.value.daily_usd == 3.5 and view.value.spent_day_usd == pytest.approx(2.0)
    assert view.value.used_ratio[("day", "key:ide")] == 0.0  # a runtime key's budget stays known
    # 2.0 spent + 1.0 held: half a dollar more passes the new 3.5, as the request path
    # asks with the new limit.
    with pytest.raises(OverBudget):
        await box.call(Reserve((Budget("all", "day", 3.5),), 0.6), timeout=10)
    await box.cast(Settle(hold, "r2", 0.0, time.time()))
    await box.call(Reserve((Budget("all", "day", 3.5),), 0.6), timeout=10)
