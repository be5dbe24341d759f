"""The offline routing commands: ``route``, ``profile``, ``override`` and ``setting``.

They need no running gateway: they read the config file and the SQLite store the gateway
uses (``store.path``). ``profile set``, ``override`` and ``setting`` write the same
settings rows the router actor reads, so a change survives restarts, and a running
gateway picks it up on its next poll. ``route`` runs the same brain as ``/v1/route``
with the heuristic classifier, but knows nothing of backend health, breakers, rate
limits or spend.

Each command returns the process exit code: 0, or 1 when a request or a change is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

import trio

from llmswitch.actors.classifier import classify_or_default
from llmswitch.cli.common import SubParsers, config_command, offline
from llmswitch.cli.table import fields, table
from llmswitch.config import TASK_TYPES, Config, RuleConfig, task_type_problem
from llmswitch.providers.openai import estimate_tokens, prompt_chars
from llmswitch.routing.brain import (
    Rejected,
    RouteRequest,
    RoutingSettings,
    UnknownModel,
    describe_decision,
    finish,
    plan,
)
from llmswitch.routing.live import (
    LIVE_KEYS,
    MODEL_LISTS,
    TASK_BUDGETS,
    InvalidSetting,
    checked,
    live_values,
    merged,
    sources,
    unknown_key,
)
from llmswitch.routing.profiles import UnknownProfile
from llmswitch.routing.rules import features_of
from llmswitch.routing.select import Availability, Catalog, Decision
from llmswitch.store.connect import open_existing_store, open_store
from llmswitch.store.settings import (
    delete_setting,
    get_setting,
    load_rules,
    load_settings,
    set_setting,
)

OFFLINE_NOTE = (
    "offline: backend health, circuit breakers, rate limits and budget are unknown here;\n"
    "every enabled model counts as available, so a running gateway may choose differently."
)
PICKED_UP = "a running gateway picks it up within a few seconds"


def print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def refuse(message: str, as_json: bool, code: str, **details: Any) -> int:
    if as_json:
        print_json({"error": {"message": message, "code": code, **details}})
    else:
        print(f"llmswitch: {message}", file=sys.stderr)
    return 1


# --- the stored settings -------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """The settings rows as stored, and the settings in force (merged with the config)."""

    profile: str | None
    overrides: dict[str, str]
    settings: RoutingSettings


async def read_stored(config: Config) -> Stored:
    """The stored settings, and the settings in force, merged as the router actor does.

    Reading never creates the database: with none yet, nothing is stored.
    """
    rules: list[RuleConfig] = []
    rows: dict[str, Any] = {}
    async with open_existing_store(config.store) as db:
        if db is not None:
            rules = await load_rules(db)
            rows = await load_settings(db)
    profile, raw = rows.get("profile"), rows.get("overrides")
    stored_profile = profile if isinstance(profile, str) else None
    overrides = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    return Stored(stored_profile, overrides, merged(config, rows, rules))


async def _write(config: Config, key: str, value: Any) -> None:
    async with open_store(config.store) as db:
        await set_setting(db, key, value)


async def _forget(config: Config, key: str) -> bool:
    """Drop a stored setting; False if none was stored (no database is created for it)."""
    async with open_existing_store(config.store) as db:
        return db is not None and await delete_setting(db, key)


async def _update_override(config: Config, task: str, model: str | None) -> bool:
    """Store (or, with None, drop) the override of one task; False if there was none to drop."""
    async with open_store(config.store) as db:
        raw = await get_setting(db, "overrides")
        overrides = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        if model is None and task not in overrides:
            return False
        if model is None:
            del overrides[task]
        else:
            overrides[task] = model
        await set_setting(db, "overrides", overrides)
    return True


def _task_order(task: str) -> tuple[int, str]:
    return (TASK_TYPES.index(task) if task in TASK_TYPES else len(TASK_TYPES), task)


# --- route -----------------------------------------------------------------------------------


def chat_body(prompt: str, model: str = "auto", system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return {"model": model, "messages": messages}


def route_request(
    body: dict[str, Any],
    source: str | None = None,
    channel: str | None = None,
    profile: str | None = None,
) -> RouteRequest:
    """The request the router actor would build for this body and these headers."""
    headers = {k: v for k, v in (("x-source", source), ("x-channel", channel)) if v}
    features = features_of(body, headers, estimate_tokens(prompt_chars(body)))
    return RouteRequest(str(body["model"]), features, profile_header=profile)


def decide(
    catalog: Catalog, settings: RoutingSettings, body: dict[str, Any], req: RouteRequest
) -> Decision:
    """Tier 1, then the heuristic classifier and tiers 2-3 if the rules left it open."""
    avail = Availability()
    step = plan(catalog, settings, req, avail)
    if isinstance(step, Decision):
        return step
    cls = classify_or_default(body["messages"], has_tools=bool(body.get("tools")))
    return finish(catalog, settings, req, step, cls, avail)


def _classification_text(decision: Decision) -> str:
    cls = decision.classification
    if cls is None:
        return "- (not classified: " + (f"rule {decision.rule})" if decision.rule else "explicit)")
    sensitive = f"yes ({', '.join(cls.sensitive_kinds)})" if cls.sensitive_kinds else "yes"
    return (
        f"{cls.complexity} {cls.task_type}, confidence {cls.confidence:.2f},"
        f" ~{cls.token_estimate} tokens, sensitive: {sensitive if cls.sensitive else 'no'}"
    )


def render_decision(decision: Decision) -> str:
    first = decision.candidates[0] if decision.candidates else None
    head = fields(
        [
            ("model", first.model.id if first else "none: no model can serve this request"),
            ("backend", first.backend.name if first else None),
            ("locality", first.backend.locality if first else None),
            ("tier", decision.tier),
            ("rule", decision.rule),
            ("profile", decision.profile),
            ("classification", _classification_text(decision)),
            ("reason", decision.reason),
        ]
    )
    candidates = table(
        ["#", "MODEL", "BACKEND", "LOCALITY", "QUALITY", "$IN/MTOK", "$OUT/MTOK"],
        [
            (
                i,
                c.model.id,
                c.backend.name,
                c.backend.locality,
                c.model.quality,
                c.model.cost_input_per_mtok,
                c.model.cost_output_per_mtok,
            )
            for i, c in enumerate(decision.candidates, 1)
        ],
    )
    excluded = table(["MODEL", "WHY"], [(e.model, e.why) for e in decision.excluded])
    return f"{head}\n\ncandidates\n{candidates}\n\nexcluded\n{excluded}\n\n{OFFLINE_NOTE}"


def route(
    config: Config,
    prompt: str,
    *,
    model: str = "auto",
    profile: str | None = None,
    source: str | None = None,
    channel: str | None = None,
    system: str | None = None,
    as_json: bool = False,
) -> int:
    """Which model would serve this prompt, and why; exit 1 if refused or nothing can."""
    stored = trio.run(read_stored, config)
    body = chat_body(prompt, model, system)
    req = route_request(body, source, channel, profile)
    try:
        decision = decide(Catalog.build(config), stored.settings, body, req)
    except UnknownModel:
        return refuse(
            f"no model named {model!r} (`llmswitch models` lists them)", as_json, "model_not_found"
        )
    except UnknownProfile as exc:
        names = ", ".join(config.all_profiles)
        return refuse(
            f"no routing profile named {exc.args[0]!r}; one of {names}",
            as_json,
            "profile_not_found",
        )
    except Rejected as rej:
        return refuse(
            f"rejected by rule {rej.rule}: {rej.message}",
            as_json,
            "rejected_by_rule",
            rule=rej.rule,
        )
    if as_json:
        print_json(describe_decision(decision))
    else:
        print(render_decision(decision))
    return 0 if decision.candidates else 1


# --- profile -----------------------------------------------------------------------------------


def show_profiles(config: Config, as_json: bool = False) -> int:
    stored = trio.run(read_stored, config)
    active = stored.settings.profile
    profiles = config.all_profiles
    if as_json:
        print_json(
            {
                "active": active,
                "from": "stored" if stored.profile == active else "config",
                "profiles": {name: p.model_dump() for name, p in profiles.items()},
            }
        )
        return 0
    print(f"active profile: {active} ({profile_origin(config, stored)})")
    if stored.profile is not None and stored.profile != active:
        print(f"note: the stored profile {stored.profile!r} no longer exists; ignored")
    rows = [
        (
            "*" if name == active else "",
            name,
            p.quality_tolerance,
            p.floor_shift,
            p.ordering,
            p.max_cost_per_request,
            p.max_tokens,
            "config" if name in config.profiles else "shipped",
        )
        for name, p in profiles.items()
    ]
    headers = ["", "PROFILE", "TOLERANCE", "FLOOR SHIFT", "ORDERING", "MAX COST $"]
    print(table([*headers, "MAX TOKENS", "DEFINED IN"], rows))
    return 0


def profile_origin(config: Config, stored: Stored) -> str:
    """Where the active profile comes from, and how to go back to the config's."""
    if stored.profile != stored.settings.profile:
        return "routing.profile in the config file"
    return (
        f"stored in {config.store.where}, over routing.profile = {config.routing.profile!r}"
        " in the config; `llmswitch profile --clear` goes back to it"
    )


def clear_profile(config: Config, as_json: bool = False) -> int:
    """Drop the stored profile: the config's ``routing.profile`` is in force again."""
    cleared = trio.run(_forget, config, "profile")
    if as_json:
        print_json({"active": config.routing.profile, "from": "config", "cleared": cleared})
    elif cleared:
        print(f"active profile: {config.routing.profile} (routing.profile; {PICKED_UP})")
    else:
        print(f"no stored profile; active profile: {config.routing.profile} (routing.profile)")
    return 0


def set_profile(config: Config, name: str, as_json: bool = False) -> int:
    if name not in config.all_profiles:
        names = ", ".join(config.all_profiles)
        return refuse(f"no profile named {name!r}; one of {names}", as_json, "profile_not_found")
    trio.run(_write, config, "profile", name)
    if as_json:
        print_json({"active": name, "from": "stored"})
    else:
        print(f"active profile: {name} (stored in {config.store.where}; {PICKED_UP})")
    return 0


# --- override ------------------------------------------------------------------------------


def show_overrides(config: Config, as_json: bool = False) -> int:
    stored = trio.run(read_stored, config)
    merged = stored.settings.overrides
    if as_json:
        print_json(
            {"overrides": merged, "stored": stored.overrides, "configured": dict(config.overrides)}
        )
        return 0
    rows = [
        (task, merged[task], "stored" if task in stored.overrides else "config")
        for task in sorted(merged, key=_task_order)
    ]
    print(table(["TASK", "MODEL FIRST", "FROM"], rows, empty="no overrides"))
    return 0


def change_override(config: Config, task: str, model: str | None, as_json: bool = False) -> int:
    """Store ``task → model`` (an id or alias, stored as the id); None clears the stored one."""
    problem = task_type_problem(task)
    if problem is not None:
        return refuse(problem, as_json, "bad_task")
    target = None if model is None else Catalog.build(config).by_name.get(model)
    if model is not None and target is None:
        return refuse(
            f"no model named {model!r} (`llmswitch models` lists them)", as_json, "model_not_found"
        )
    changed = trio.run(_update_override, config, task, None if target is None else target.id)
    if as_json:
        return show_overrides(config, as_json=True)
    if target is not None:
        print(f"override: {task} → {target.id} (stored; {PICKED_UP})")
    elif changed:
        print(f"override for {task} cleared ({PICKED_UP})")
    else:
        print(f"no stored override for {task}")
    if target is None and task in config.overrides:
        print(f"note: the config file still routes {task} to {config.overrides[task]} first")
    return 0


def clear_overrides(config: Config, as_json: bool = False) -> int:
    """Drop every stored override: only the config's ``[overrides]`` stay in force."""
    cleared = trio.run(_forget, config, "overrides")
    if as_json:
        return show_overrides(config, as_json=True)
    print(("stored overrides cleared" if cleared else "no stored overrides") + f"; {PICKED_UP}")
    if config.overrides:
        print(f"note: the config file's [overrides] stay: {', '.join(config.overrides)}")
    return 0


# --- setting: allow/block and budgets ---------------------------------------------------------


def setting_value(key: str, words: list[str], none: bool) -> Any:
    """What the words on the command line stand for under ``key`` (before it is checked):
    model names, one USD amount, or TASK=USD pairs; ``none`` is the empty list, the empty
    table or no limit."""
    if key in MODEL_LISTS:
        return [] if none else words
    if key == TASK_BUDGETS:
        if none:
            return {}
        pairs = [w.partition("=") for w in words]
        if not pairs or any(not sep for _, sep, _ in pairs):
            raise InvalidSetting(f"{key}: expected TASK=USD pairs, e.g. code=2.5")
        return {task: _number(f"{key}.{task}", usd) for task, _, usd in pairs}
    if none:
        return None
    if len(words) != 1:
        raise InvalidSetting(f"{key}: expected one amount in USD (or --none for no limit)")
    return _number(key, words[0])


def _number(where: str, word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise InvalidSetting(f"{where}: {word!r} is not a number") from None


def _shown(value: Any) -> str:
    if value is None:
        return "no limit"
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:g}" for k, v in value.items()) or "(none)"
    return f"{value:g}"


def show_settings(config: Config, as_json: bool = False) -> int:
    stored = trio.run(read_stored, config)
    values, where = live_values(stored.settings), sources(stored.settings, LIVE_KEYS)
    if as_json:
        print_json({"settings": values, "sources": where})
        return 0
    rows = [(key, _shown(values[key]), where[key]) for key in LIVE_KEYS]
    print(table(["SETTING", "VALUE", "FROM"], rows))
    return 0


def change_setting(
    config: Config, key: str, words: list[str], *, none: bool = False, as_json: bool = False
) -> int:
    """Store a value over the file's (checked as the admin API checks it)."""
    try:
        value = checked(key, setting_value(key, words, none), Catalog.build(config))
    except InvalidSetting as exc:
        return refuse(str(exc), as_json, "invalid_setting")
    trio.run(_write, config, key, value)
    if as_json:
        return show_settings(config, as_json=True)
    print(f"{key}: {_shown(value)} (stored; {PICKED_UP})")
    return 0


def clear_setting(config: Config, key: str, as_json: bool = False) -> int:
    """Drop the stored value: the config file's is in force again."""
    cleared = trio.run(_forget, config, key)
    if as_json:
        return show_settings(config, as_json=True)
    file_value = live_values(merged(config))[key]
    done = f"cleared ({PICKED_UP})" if cleared else "nothing stored"
    print(f"{key}: {done}; the config file's: {_shown(file_value)}")
    return 0


# --- the commands --------------------------------------------------------------------------


@offline
def cmd_route(config: Config, args: argparse.Namespace) -> int:
    return route(
        config,
        args.prompt,
        model=args.model,
        profile=args.profile,
        source=args.source,
        channel=args.channel,
        system=args.system,
        as_json=args.json,
    )


@offline
def cmd_profile(config: Config, args: argparse.Namespace) -> int:
    if args.clear and args.action is None:
        return clear_profile(config, args.json)
    if args.action is None:
        return show_profiles(config, args.json)
    if args.action != "set" or args.name is None or args.clear:
        print("llmswitch: usage: llmswitch profile [set NAME | --clear]", file=sys.stderr)
        return 2
    return set_profile(config, args.name, args.json)


@offline
def cmd_override(config: Config, args: argparse.Namespace) -> int:
    usage = "llmswitch: usage: llmswitch override [TASK MODEL | TASK --clear | --clear-all]"
    if args.clear_all:
        if args.task is not None or args.clear:
            print(usage, file=sys.stderr)
            return 2
        return clear_overrides(config, args.json)
    if args.task is None and not args.clear:
        return show_overrides(config, args.json)
    if args.task is None or (args.model is None) != args.clear:
        print(usage, file=sys.stderr)
        return 2
    return change_override(config, args.task, args.model, args.json)


@offline
def cmd_setting(config: Config, args: argparse.Namespace) -> int:
    usage = "llmswitch: usage: llmswitch setting [KEY VALUE... | KEY --none | KEY --clear]"
    if args.key is None and not (args.clear or args.none):
        return show_settings(config, args.json)
    if args.key is None or (args.clear and (args.values or args.none)):
        print(usage, file=sys.stderr)
        return 2
    problem = unknown_key(args.key)
    if problem is not None:
        return refuse(problem, args.json, "invalid_setting")
    if args.clear:
        return clear_setting(config, args.key, args.json)
    if not args.values and not args.none:
        print(usage, file=sys.stderr)
        return 2
    return change_setting(config, args.key, args.values, none=args.none, as_json=args.json)


def register(sub: SubParsers) -> None:
    route_p = config_command(sub, "route", "which model would serve a prompt, and why (offline)")
    route_p.add_argument("prompt")
    route_p.add_argument("--model", default="auto", help="auto, auto:PROFILE, a model id or alias")
    route_p.add_argument("--profile", help="the profile for auto (as the X-Router-Profile header)")
    route_p.add_argument("--source", help="as the X-Source header (heartbeat, cron, ...)")
    route_p.add_argument("--channel", help="as the X-Channel header")
    route_p.add_argument("--system", help="a system message before the prompt")
    route_p.set_defaults(func=cmd_route)

    profile = config_command(sub, "profile", "show the routing profiles, or set the active one")
    profile.add_argument("action", nargs="?", choices=["set"])
    profile.add_argument("name", nargs="?")
    profile.add_argument(
        "--clear", action="store_true", help="drop the stored profile: routing.profile again"
    )
    profile.set_defaults(func=cmd_profile)

    override = config_command(
        sub, "override", "list, set or clear the model auto tries first per task"
    )
    override.add_argument("task", nargs="?", help="a task type: code, math, ...")
    override.add_argument("model", nargs="?", help="a model id or alias")
    override.add_argument("--clear", action="store_true", help="remove the stored override")
    override.add_argument("--clear-all", action="store_true", help="remove every stored override")
    override.set_defaults(func=cmd_override)

    setting = config_command(
        sub, "setting", "show, store or clear allow/block and budgets over the config file's"
    )
    setting.add_argument("key", nargs="?", help=", ".join(LIVE_KEYS))
    setting.add_argument(
        "values", nargs="*", help="model names; one USD amount; TASK=USD pairs for task budgets"
    )
    setting.add_argument(
        "--none", action="store_true", help="store an empty list, or no limit for a budget"
    )
    setting.add_argument(
        "--clear", action="store_true", help="drop the stored value: the file's again"
    )
    setting.set_defaults(func=cmd_setting)
