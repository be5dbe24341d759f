"""``serve``, ``init`` and ``demo``: run a gateway, or write the config to run one."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import trio

from llmswitch.cli.common import EXIT_CONFIG, SubParsers, fail
from llmswitch.cli.starter import STARTER
from llmswitch.config import ConfigError, load_config


def cmd_serve(args: argparse.Namespace) -> int:
    from llmswitch.main import StartRefused, run_gateway  # the offline commands skip these

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return fail(str(exc), EXIT_CONFIG)
    try:
        return trio.run(partial(run_gateway, config, config_path=args.config))
    except StartRefused as exc:
        return fail(str(exc), EXIT_CONFIG)


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        return fail(f"{path} exists; use --force to overwrite")
    path.write_text(STARTER, encoding="utf-8")
    print(f"wrote {path}; start with: llmswitch serve --config {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from llmswitch.cli.demo import run_demo

    code: int = trio.run(run_demo, args.port, args.store)
    return code


def register(sub: SubParsers) -> None:
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
