"""Conversation affinity: pure reordering of a decision and the bounded pin table."""

from __future__ import annotations

from dataclasses import replace

from llmswitch.config import ProfileConfig
from llmswitch.routing.affinity import AffinityTable, affinity_key, keep
from llmswitch.routing.select import Availability, Catalog, Decision, Policy, decide_auto
from tests.unit.test_select import config, with_complexity

CATALOG = Catalog.build(config())
OPEN = Policy(profile=ProfileConfig(quality_tolerance=0), metered_cloud=("*",))


def auto(complexity: str, avail: Availability | None = None, sensitive: bool = False) -> Decision:
    cls = with_complexity(complexity, sensitive=sensitive)
    return decide_auto(CATALOG, cls, avail or Availability(), policy=OPEN)


def order(d: Decision) -> list[str]:
    return [c.model.id for c in d.candidates]


def test_no_pin_leaves_the_selection_alone() -> None:
    d = auto("simple")
    kept = keep(d, None)
    assert kept.affinity == "new"
    assert order(kept) == order(d)
    assert kept.reason == d.reason


def test_a_simpler_turn_keeps_the_stronger_pinned_model() -> None:
    d = auto("simple")
    assert order(d)[0] == "tiny"
    kept = keep(d, CATALOG.by_name["big-lan"])
    assert kept.affinity == "kept"
    # A failover within the turn tries the models at least as good first.
    assert order(kept) == ["big-lan", "cheap-cloud", "dear-cloud", "mid", "tiny"]
    assert "affinity kept: big-lan → big-lan" in kept.reason


def test_a_harder_turn_escalates_past_the_pinned_model() -> None:
    d = keep(auto("complex"), CATALOG.by_name["mid"])
    assert d.affinity == "escalated"
    assert order(d)[0] == "big-lan"
    assert CATALOG.by_name[order(d)[0]].quality > CATALOG.by_name["mid"].quality


def test_a_pinned_model_that_fails_moves_to_one_at_least_as_good() -> None:
    down = Availability(down=frozenset({"box"}))
    d = keep(auto("simple", down), CATALOG.by_name["big-lan"])
    assert d.affinity == "moved"
    # tiny and mid are cheaper, but weaker than the conversation's model: not a downgrade.
    assert order(d) == ["cheap-cloud", "dear-cloud", "mid", "tiny"]


def test_with_nothing_as_good_left_a_pinned_model_moves_down_as_little_as_it_can() -> None:
    only_local = Availability(down=frozenset({"box", "cloud"}))
    d = keep(auto("simple", only_local), CATALOG.by_name["dear-cloud"])
    assert d.affinity == "moved"
    assert order(d) == ["mid", "tiny"]


def test_a_guard_outranks_the_pin() -> None:
    d = keep(auto("simple", sensitive=True), CATALOG.by_name["cheap-cloud"])
    assert d.affinity == "moved"
    assert all(c.backend.locality != "cloud" for c in d.candidates)


def test_no_candidate_stays_no_candidate() -> None:
    none = Availability(down=frozenset({"laptop", "box", "cloud"}))
    assert keep(auto("simple", none), CATALOG.by_name["mid"]).candidates == ()


def test_a_pin_lives_its_ttl_from_its_last_served_turn() -> None:
    table = AffinityTable(ttl_s=60, max_entries=10)
    table.pin("c", "mid", now=0)
    assert table.get("c", now=59.9) == "mid"
    table.pin("c", "mid", now=50)
    assert table.get("c", now=109) == "mid"
    assert table.get("c", now=110) is None
    assert (len(table), table.expired) == (0, 1)


def test_the_least_recently_served_goes_first_at_the_cap() -> None:
    table = AffinityTable(ttl_s=600, max_entries=3)
    for i, key in enumerate("abc"):
        table.pin(key, "mid", now=i)
    table.pin("a", "big-lan", now=3)
    table.pin("d", "tiny", now=4)
    assert len(table) == 3
    assert table.evicted == 1
    assert table.get("b", now=5) is None
    assert [table.get(k, now=5) for k in "acd"] == ["big-lan", "mid", "tiny"]


def test_expired_pins_go_before_live_ones_are_evicted() -> None:
    table = AffinityTable(ttl_s=10, max_entries=2)
    table.pin("a", "mid", now=0)
    table.pin("b", "mid", now=5)
    table.pin("c", "mid", now=12)
    assert (table.expired, table.evicted) == (1, 0)
    assert table.get("b", now=12) == "mid"


def test_a_zero_cap_remembers_nothing() -> None:
    table = AffinityTable(ttl_s=10, max_entries=0)
    table.pin("a", "mid", now=0)
    assert table.get("a", now=0) is None


def test_a_lower_cap_on_reload_forgets_the_least_recently_served() -> None:
    table = AffinityTable(ttl_s=600, max_entries=3)
    for i, key in enumerate("abc"):
        table.pin(key, "mid", now=i)
    table.resize(ttl_s=60, max_entries=1)
    assert [table.get(k, now=3) for k in "abc"] == [None, None, "mid"]
    table.pin("d", "mid", now=4)
    assert table.get("d", now=63) == "mid" and table.get("d", now=64) is None


def test_a_pin_holds_within_a_profile() -> None:
    d = replace(auto("simple"), conversation="plain:c", profile="balanced")
    assert affinity_key(d) != affinity_key(replace(d, profile="eco"))
    assert affinity_key(replace(d, conversation=None)) is None
