"""Router actor: turns a request into a ranked list of candidates with the reason.

Tier 1 (rules) → tier 2 (classification, then selection under the profile) → tier 3
(the fallback model). The decisions themselves are pure functions in
:mod:`llmswitch.routing`; this actor gathers their inputs (the classification, from the
classifier actor or inline while it is down; the health, pool, limits and budget views)
and owns the run-time routing settings: rules edited at run time, the active profile,
per-task overrides, and the config values that may be stored over the file's (allow and
block lists, global budgets: :mod:`llmswitch.routing.live`). Those persist in SQLite, so
they survive restarts, and are re-read when the offline CLI changes them. The settings
in force are published on a watch: the request path and the ledger read the budgets
there.

In a fleet, a settings change made here is told to the peers (``profile``,
``overrides``, ``rule:<name>``, a stored config value's key), and a peer's is written
into our own store as if made here (so it outlives a restart without Redis), once it
passes the same checks; a conversation's pin is told too, so its next turn keeps its
model on any instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from llmswitch.actors.classifier import ClassifierMsg, Classify, classify_or_default
from llmswitch.actors.health import HealthView
from llmswitch.actors.ledger import BudgetView
from llmswitch.actors.limits import LimitsView
from llmswitch.actors.pool import PoolView
from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.actors.stored import StoredActor
from llmswitch.cluster.news import Entry, Heard, Tell, changes, silent
from llmswitch.config import TASK_TYPES, RuleConfig
from llmswitch.routing.affinity import AffinityTable, affinity_key, keep
from llmswitch.routing.brain import (
    NeedsClassification,
    Rejected,
    RouteRequest,
    RoutingSettings,
    Signals,
    UnknownModel,
    finish,
    plan,
)
from llmswitch.routing.classify import Classification
from llmswitch.routing.live import LIVE_KEYS, InvalidSetting, checked, merged, unknown_key
from llmswitch.routing.patterns import MAX_RULES
from llmswitch.routing.profiles import UnknownProfile
from llmswitch.routing.rules import Features
from llmswitch.routing.select import Availability, Catalog, ClientKey, Decision, Refused
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Mailbox, Request
from llmswitch.runtime.watch import Watch
from llmswitch.store.engine import Connection
from llmswitch.store.settings import (
    delete_rule,
    delete_setting,
    load_rules,
    load_settings,
    save_rule,
    set_setting,
    settings_version,
)

log = logging.getLogger(__name__)

#: How long to wait for the heuristic classifier before classifying inline instead.
CLASSIFY_TIMEOUT_S = 0.25
#: Decisions waiting on a classification at once; beyond it, the mailbox backs up.
MAX_CLASSIFYING = 256


@dataclass(eq=False)
class Decide(Request[Decision]):
    model: str
    messages: Sequence[Mapping[str, Any]]
    features: Features
    has_tools: bool = False
    max_tokens: int = 0
    profile_header: str | None = None
    signals: Signals = field(default_factory=Signals)
    client: ClientKey | None = None


@dataclass(eq=False)
class GetSettings(Request[RoutingSettings]):
    pass


@dataclass(eq=False)
class SetProfile(Request[RoutingSettings]):
    profile: str


@dataclass(eq=False)
class SetOverride(Request[RoutingSettings]):
    """Route ``task_type`` to ``model`` first; ``model=None`` clears the override."""

    task_type: str
    model: str | None


@dataclass(eq=False)
class PutRule(Request[RoutingSettings]):
    rule: RuleConfig


@dataclass(eq=False)
class DeleteRule(Request[RoutingSettings]):
    name: str


@dataclass(eq=False)
class PutSetting(Request[RoutingSettings]):
    """Store ``value`` over the config file's under ``key`` (one of ``LIVE_KEYS``)."""

    key: str
    value: Any


@dataclass(eq=False)
class ClearSetting(Request[RoutingSettings]):
    """Drop the value stored under ``key``: the config file's is in force again."""

    key: str


@dataclass(frozen=True)
class Pin:
    """A conversation's turn was served by ``model``: its next turns keep to it.

    Sent by the request path once a candidate answers (before a byte reaches the
    client), so the next turn sees it; a failover re-pins to the model that served.
    """

    conversation: str
    model: str


RouterMsg = (
    Decide
    | GetSettings
    | SetProfile
    | SetOverride
    | PutRule
    | DeleteRule
    | PutSetting
    | ClearSetting
    | Reconfigure
    | Pin
    | Heard
)
SettingsChange = SetProfile | SetOverride | PutRule | DeleteRule | PutSetting | ClearSetting


def stored_settings(
    settings: Mapping[str, Any], rules: Sequence[RuleConfig]
) -> dict[str, dict[str, Any]]:
    """Our store's settings as the fleet is told them, each as ``{"value": ...}``:
    ``profile``, ``overrides`` (the whole table), the live config keys and
    ``rule:<name>``; unset ones absent (a stored null is ``{"value": None}``)."""
    out = {key: {"value": value} for key, value in settings.items()}
    return out | {f"rule:{r.name}": {"value": r.model_dump(mode="json")} for r in rules}


def setting_change(entry: Entry) -> SettingsChange | None:
    """A peer's setting entry as the change it stands for (None: not one we know).

    ``overrides`` replaces the whole table, so it comes back as the table itself."""
    key, value = entry.key, (entry.data or {}).get("value")
    if key == "profile" and isinstance(value, str):
        return SetProfile(value)
    if key.startswith("rule:") and entry.data is None:
        return DeleteRule(key.removeprefix("rule:"))
    if key.startswith("rule:") and isinstance(value, dict):
        return PutRule(RuleConfig.model_validate(value | {"name": key.removeprefix("rule:")}))
    if key in LIVE_KEYS:
        return ClearSetting(key) if entry.data is None else PutSetting(key, value)
    return None


@dataclass(frozen=True)
class Views:
    """The read-only views the router consults; published by the other actors."""

    health: Watch[HealthView]
    pool: Watch[PoolView]
    limits: Watch[LimitsView]
    budget: Watch[BudgetView]

    def availability(self) -> Availability:
        pool = self.pool.value
        return Availability(
            down=self.health.value.down,
            open_breakers=pool.open_breakers,
            open_models=pool.open_models,
            limited=self.limits.value.limited(trio.current_time()),
            budget_exceeded=self.budget.value.exceeded,
            ttfb_ms={m: s.ttfb_ms for m, s in pool.models.items() if s.ttfb_ms is not None},
            success={m: s.success for m, s in pool.models.items() if s.success is not None},
        )


def invalid_change(
    catalog: Catalog, msg: RouterMsg, stored_rules: tuple[str, ...] = ()
) -> str | None:
    """Why a settings change cannot be applied, or None.

    ``stored_rules`` names the rules already stored: a new one past MAX_RULES is refused.
    """
    names = catalog.by_name
    if isinstance(msg, SetProfile) and msg.profile not in catalog.config.all_profiles:
        return f"no profile named {msg.profile!r}"
    if isinstance(msg, SetOverride):
        if msg.task_type not in TASK_TYPES:
            return f"unknown task type {msg.task_type!r}; one of {', '.join(TASK_TYPES)}"
        if msg.model is not None and msg.model not in names:
            return f"no model named {msg.model!r}"
    if isinstance(msg, PutRule) and msg.rule.target is not None and msg.rule.target not in names:
        return f"rule {msg.rule.name}: no model named {msg.rule.target!r}"
    if (
        isinstance(msg, PutRule)
        and msg.rule.name not in stored_rules
        and len(stored_rules) >= MAX_RULES
    ):
        return f"{MAX_RULES} rules are stored already; delete one first"
    if isinstance(msg, ClearSetting):
        return unknown_key(msg.key)
    if isinstance(msg, PutSetting):
        try:
            checked(msg.key, msg.value, catalog)
        except InvalidSetting as exc:
            return str(exc)
    return None


class RouterActor(StoredActor[RouterMsg]):
    name = "router"

    def __init__(
        self,
        catalog: Catalog,
        views: Views,
        classifier: Mailbox[ClassifierMsg],
        classifier_up: Callable[[], bool],
        tell: Tell = silent,
        published: Watch[RoutingSettings] | None = None,
    ) -> None:
        self._views = views
        self._tell = tell
        self._published = published
        self._classifier = classifier
        self._classifier_up = classifier_up
        super().__init__(catalog.config.store)
        routing = catalog.config.routing
        self._affinity = AffinityTable(routing.affinity_ttl_s, routing.affinity_max)
        self._by_affinity: dict[str, int] = {}
        self._adopt(catalog)
        self._settings = merged(self._config)
        self._decisions = 0
        self._nursery: trio.Nursery | None = None
        self._classifying = trio.Semaphore(MAX_CLASSIFYING)
        self._by_tier: dict[str, int] = {}
        self._fallback_classifications = 0
        #: Our store's settings as last read, to tell the fleet what changed.
        self._stored_settings: dict[str, dict[str, Any]] = {}
        self._loaded = False
        self._quiet = False

    def _adopt(self, catalog: Catalog) -> None:
        """Route over ``catalog`` from the next decision on (at start and on a reload);
        stored settings are read again over it by :meth:`load`."""
        self._catalog = catalog
        self._config = catalog.config
        routing = self._config.routing
        # A model-based classifier gets its own timeout (it falls back by itself), plus slack.
        self._classify_timeout = (
            routing.classifier_timeout_s + CLASSIFY_TIMEOUT_S
            if routing.classifier == "model"
            else CLASSIFY_TIMEOUT_S
        )
        self._affinity.resize(routing.affinity_ttl_s, routing.affinity_max)

    async def background(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        await super().background(nursery)

    async def handle(self, msg: RouterMsg) -> None:
        if isinstance(msg, Decide):
            await self._decide(msg)
            return
        if isinstance(msg, Reconfigure):
            self._adopt(Catalog.build(msg.config))
            await self.load(self.db)
            msg.reply.set(None)
            return
        if isinstance(msg, Pin):
            self._affinity.pin(msg.conversation, msg.model, trio.current_time())
            self._tell("affinity", msg.conversation, {"model": msg.model})
            return
        if isinstance(msg, Heard):
            await self._heard(msg.entry)
            return
        if isinstance(msg, GetSettings):
            msg.reply.set(self._settings)
            return
        problem = invalid_change(self._catalog, msg, self._settings.stored_rules)
        if problem is not None:
            msg.reply.fail(ValueError(problem))
            return
        await self._apply(msg)  # its reload tells the fleet
        msg.reply.set(self._settings)

    async def _apply(self, msg: SettingsChange) -> None:
        """Store a valid change and reload."""
        overrides = dict(self._settings.overrides)
        if isinstance(msg, SetProfile):
            await self._write(lambda db: set_setting(db, "profile", msg.profile))
        elif isinstance(msg, SetOverride):
            if msg.model is None:
                overrides.pop(msg.task_type, None)
            else:
                overrides[msg.task_type] = self._catalog.by_name[msg.model].id
            await self._write(lambda db: set_setting(db, "overrides", overrides))
        elif isinstance(msg, PutRule):
            await self._write(lambda db: save_rule(db, msg.rule))
        elif isinstance(msg, PutSetting):
            value = checked(msg.key, msg.value, self._catalog)
            await self._write(lambda db: set_setting(db, msg.key, value))
        elif isinstance(msg, ClearSetting):
            await self._write(lambda db: delete_setting(db, msg.key))
        else:
            await self._write(lambda db: delete_rule(db, msg.name))

    async def _heard(self, entry: Entry) -> None:
        """A peer's pin, or a peer's settings change, taken as if made here (and, being
        the peer's, not told again)."""
        if entry.topic == "affinity":
            model = (entry.data or {}).get("model")
            if isinstance(model, str):
                self._affinity.pin(entry.key, model, trio.current_time())
            return
        self._quiet = True
        try:
            await self._heard_setting(entry)
        finally:
            self._quiet = False

    async def _heard_setting(self, entry: Entry) -> None:
        key = entry.key
        if key in ("profile", "overrides") and entry.data is None:
            await self._write(lambda db: delete_setting(db, key))
            return
        if key == "overrides":
            table = (entry.data or {}).get("value")
            if isinstance(table, dict):
                names = self._catalog.by_name
                kept = {t: m for t, m in table.items() if t in TASK_TYPES and m in names}
                await self._write(lambda db: set_setting(db, "overrides", kept))
            return
        try:
            change = setting_change(entry)
        except ValueError as exc:  # pydantic's ValidationError too
            log.warning("fleet: ignoring setting %r: %s", key, exc)
            return
        problem = change and invalid_change(self._catalog, change, self._settings.stored_rules)
        if change is None or problem:
            log.warning("fleet: ignoring setting %r: %s", key, problem or "unknown")
            return
        await self._apply(change)

    async def _write(self, change: Callable[[Connection], Any]) -> None:
        await change(self.db)
        await self.reload()

    async def version(self, db: Connection) -> Hashable:
        return await settings_version(db)

    async def load(self, db: Connection) -> None:
        """The settings as stored (by this actor or the offline CLI), over the config's.

        Once running, what changed in the store since the last read is told to the fleet,
        unless it is a peer's change being taken (``_quiet``)."""
        settings, rules = await load_settings(db), await load_rules(db)
        before = self._stored_settings
        self._stored_settings = stored_settings(settings, rules)
        if self._loaded and not self._quiet:
            for key, data in changes(before, self._stored_settings):
                self._tell("setting", key, data)
        self._loaded = True
        self._settings = merged(self._config, settings, rules)
        if self._published is not None and self._published.value != self._settings:
            self._published.publish(self._settings)

    async def _decide(self, msg: Decide) -> None:
        self._decisions += 1
        req = RouteRequest(
            msg.model, msg.features, msg.max_tokens, msg.profile_header, msg.signals, msg.client
        )
        avail = self._views.availability()
        try:
            step = plan(self._catalog, self._settings, req, avail)
        except (UnknownModel, UnknownProfile, Rejected, Refused) as refusal:
            msg.reply.fail(refusal)
            return
        if isinstance(step, Decision):
            self._answer(msg, step)
            return
        # Classification may wait on a model: do it beside the mailbox loop, so one slow
        # classification never holds up the decisions queued behind it.
        await self._classifying.acquire()
        assert self._nursery is not None
        self._nursery.start_soon(self._finish, msg, req, step, avail)

    async def _finish(
        self, msg: Decide, req: RouteRequest, step: NeedsClassification, avail: Availability
    ) -> None:
        try:
            cls = await self._classify(msg)
            decision = finish(self._catalog, self._settings, req, step, cls, avail)
            self._answer(msg, self._keep(decision))
        except Refused as refusal:
            msg.reply.fail(refusal)
        except Exception as exc:
            msg.reply.fail(ActorCrashed(f"router crashed: {exc!r}"))
            raise
        finally:
            self._classifying.release()

    def _keep(self, decision: Decision) -> Decision:
        """An ``auto`` decision ordered for its conversation's pinned model."""
        key = affinity_key(decision)
        if decision.tier != "classifier" or key is None or not self._affinity.max_entries:
            return decision
        pinned = self._affinity.get(key, trio.current_time())
        decision = keep(decision, self._catalog.by_name.get(pinned) if pinned else None)
        outcome = str(decision.affinity)
        self._by_affinity[outcome] = self._by_affinity.get(outcome, 0) + 1
        return decision

    def _answer(self, msg: Decide, decision: Decision) -> None:
        self._by_tier[decision.tier] = self._by_tier.get(decision.tier, 0) + 1
        msg.reply.set(decision)

    async def _classify(self, msg: Decide) -> Classification:
        """Ask the classifier actor; while it is down or slow, classify inline instead."""
        cls: Classification | None = None
        if self._classifier_up():
            try:
                cls = await self._classifier.call(
                    Classify(msg.messages, msg.has_tools), timeout=self._classify_timeout
                )
            except (CallTimeout, ActorCrashed):
                cls = None
        if cls is None:
            self._fallback_classifications += 1
            cls = classify_or_default(msg.messages, has_tools=msg.has_tools)
        return cls

    def summary(self) -> Mapping[str, Any]:
        return {
            "decisions": self._decisions,
            "by_tier": dict(self._by_tier),
            "inline_classifications": self._fallback_classifications,
            "profile": self._settings.profile,
            "overrides": dict(self._settings.overrides),
            "rules": [r.name for r in self._settings.rules if r.enabled],
            "allow": list(self._settings.allow),
            "block": list(self._settings.block),
            "models": len(self._config.models),
            "affinity": {
                "conversations": len(self._affinity),
                "max": self._affinity.max_entries,
                "ttl_s": self._affinity.ttl_s,
                "decisions": dict(self._by_affinity),
                "evicted": self._affinity.evicted,
                "expired": self._affinity.expired,
            },
        }
