"""The ``llmswitch`` command: serve, init, demo, and the offline route, profile, override
and models commands (no server needed: they read the config file and its SQLite store)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import trio

from llmswitch import cli_routing
from llmswitch.cli_discover import discover
from llmswitch.config import Config, ConfigError, load_config
from llmswitch.starter_config import STARTER
from llmswitch.store.errors import StoreError

#: The commands that run the gateway; the others are one-shot and log only warnings by default.
SERVERS = ("serve", "demo")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # One INFO line per upstream request is noise on the hot path; keep httpx's warnings.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))


def cmd_serve(args: argparse.Namespace) -> int:
    from llmswitch.main import run_gateway  # the server stack; the offline commands skip it

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"llmswitch: {exc}", file=sys.stderr)
        return 2
    return trio.run(run_gateway, config)


def _offline(
    command: Callable[[Config, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """A command on the config (exit 2 if it is bad) and its store (exit 1 if that fails)."""

    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"llmswitch: {exc}", file=sys.stderr)
            return 2
        try:
            return command(config, args)
        except StoreError as exc:
            print(f"llmswitch: store: {exc}", file=sys.stderr)
            return 1

    return run


@_offline
def cmd_route(config: Config, args: argparse.Namespace) -> int:
    return cli_routing.route(
        config,
        args.prompt,
        model=args.model,
        profile=args.profile,
        source=args.source,
        channel=args.channel,
        system=args.system,
        as_json=args.json,
    )


@_offline
def cmd_profile(config: Config, args: argparse.Namespace) -> int:
    if args.action is None:
        return cli_routing.show_profiles(config, args.json)
    if args.action != "set" or args.name is None:
        print("llmswitch: usage: llmswitch profile [set NAME]", file=sys.stderr)
        return 2
    return cli_routing.set_profile(config, args.name, args.json)


@_offline
def cmd_override(config: Config, args: argparse.Namespace) -> int:
    usage = "llmswitch: usage: llmswitch override [TASK MODEL | TASK --clear]"
    if args.task is None and not args.clear:
        return cli_routing.show_overrides(config, args.json)
    if args.task is None or (args.model is None) != args.clear:
        print(usage, file=sys.stderr)
        return 2
    return cli_routing.change_override(config, args.task, args.model, args.json)


@_offline
def cmd_models(config: Config, args: argparse.Namespace) -> int:
    if args.discover:
        return discover(config, Path(args.config), args.backend, args.write, args.json)
    return cli_routing.models(config, args.backend, args.json)


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        print(f"llmswitch: {path} exists; use --force to overwrite", file=sys.stderr)
        return 1
    path.write_text(STARTER, encoding="utf-8")
    print(f"wrote {path}; start with: llmswitch serve --config {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from llmswitch.demo import run_demo

    code: int = trio.run(run_demo, args.port, args.store)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmswitch", description=__doc__)
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning"],
        help="default: info for serve and demo, warning for the other commands",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the gateway from a config file")
    serve.add_argument("--config", default="llmswitch.toml")
    serve.set_defaults(func=cmd_serve)

    init = sub.add_parser("init", help="write a commented starter config (Ollama on localhost)")
    init.add_argument("path", nargs="?", default="llmswitch.toml")
    init.add_argument("--force", action="store_true")
    init.set_defaults(func=cmd_init)

    demo = sub.add_parser("demo", help="the gateway with three simulated backends")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--store", default="llmswitch-demo.db")
    demo.set_defaults(func=cmd_demo)

    _add_offline(sub)
    return parser


def _add_offline(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def command(name: str, about: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=about)
        p.add_argument("--config", default="llmswitch.toml")
        p.add_argument("--json", action="store_true", help="JSON for scripts instead of tables")
        return p

    route = command("route", "which model would serve a prompt, and why (offline)")
    route.add_argument("prompt")
    route.add_argument("--model", default="auto", help="auto, auto:PROFILE, a model id or alias")
    route.add_argument("--profile", help="the profile for auto (as the X-Router-Profile header)")
    route.add_argument("--source", help="as the X-Source header (heartbeat, cron, ...)")
    route.add_argument("--channel", help="as the X-Channel header")
    route.add_argument("--system", help="a system message before the prompt")
    route.set_defaults(func=cmd_route)

    profile = command("profile", "show the routing profiles, or set the active one")
    profile.add_argument("action", nargs="?", choices=["set"])
    profile.add_argument("name", nargs="?")
    profile.set_defaults(func=cmd_profile)

    override = command("override", "list, set or clear the model auto tries first per task")
    override.add_argument("task", nargs="?", help="a task type: code, math, ...")
    override.add_argument("model", nargs="?", help="a model id or alias")
    override.add_argument("--clear", action="store_true", help="remove the stored override")
    override.set_defaults(func=cmd_override)

    models = command("models", "the configured models")
    models.add_argument("--backend", help="only this backend's models")
    models.add_argument(
        "--discover", action="store_true", help="ask Ollama backends what they serve (network)"
    )
    models.add_argument(
        "--write", action="store_true", help="with --discover: add new models to the config"
    )
    models.set_defaults(func=cmd_models)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level or ("info" if args.command in SERVERS else "warning"))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
