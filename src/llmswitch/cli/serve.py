"""``serve``, ``init`` and ``demo``: run a gateway, or write the config to run one."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import trio

from llmswitch.cli.common import EXIT_CONFIG, EXIT_ENVIRONMENT, SubParsers, fail
from llmswitch.cli.starter import STARTER
from llmswitch.config import ConfigError, ServerConfig, StoreConfig, load_config


def port_number(text: str) -> int:
    """``--port``: a TCP port, refused by argparse (exit 2) otherwise."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def run_or_explain(
    start: Callable[[], Awaitable[int]], server: ServerConfig, store: StoreConfig
) -> int:
    """Run a gateway; a start-up failure a person can fix is one line and exit 2 or 3."""
    from llmswitch.cli.startup import explain

    try:
        return trio.run(start)
    except BaseException as exc:  # unwrapped below; anything unexplained is re-raised
        failure = explain(exc, server, store)
        if failure is None:
            raise
        return fail(failure.message, failure.code)


def cmd_serve(args: argparse.Namespace) -> int:
    from llmswitch.main import run_gateway  # the offline commands skip these imports
    from llmswitch.workers import as_worker, run_fleet

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return fail(str(exc), EXIT_CONFIG)
    if args.port is not None:
        server = config.server.model_copy(update={"port": args.port})
        config = config.model_copy(update={"server": server})
    start: Callable[[], Awaitable[int]]
    if args.worker is not None:
        start = as_worker(config, args.config, args.worker)
    elif config.server.workers > 1:
        start = partial(run_fleet, config, args.config)
    else:
        start = partial(run_gateway, config, config_path=args.config)
    return run_or_explain(start, config.server, config.store)


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.exists() and not args.force:
        return fail(f"{path} exists; use --force to overwrite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(STARTER, encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot write {path}: {exc.strerror or exc}", EXIT_ENVIRONMENT)
    print(f"wrote {path}; start with: llmswitch serve --config {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from llmswitch.cli.demo import run_demo

    server = ServerConfig(port=args.port)
    return run_or_explain(
        partial(run_demo, args.port, args.store), server, StoreConfig(path=args.store)
    )


def register(sub: SubParsers) -> None:
    serve = sub.add_parser("serve", help="serve the gateway from a config file")
    serve.add_argument("--config", default="llmswitch.toml")
    serve.add_argument("--port", type=port_number, help="instead of [server] port")
    # Worker N of server.workers, started by the parent (workers.py); not for people.
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    init = sub.add_parser("init", help="write a commented starter config (Ollama on localhost)")
    init.add_argument("path", nargs="?", default="llmswitch.toml")
    init.add_argument("--force", action="store_true")
    init.set_defaults(func=cmd_init)

    demo = sub.add_parser("demo", help="the gateway with three simulated backends")
    demo.add_argument("--port", type=port_number, default=8080)
    demo.add_argument("--store", default="llmswitch-demo.db")
    demo.set_defaults(func=cmd_demo)
