"""The ``llmswitch`` command: serve, init, demo."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from llmswitch.config import ConfigError, load_config
from llmswitch.main import run_gateway
from llmswitch.starter_config import STARTER


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
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"llmswitch: {exc}", file=sys.stderr)
        return 2
    return trio.run(run_gateway, config)


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
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
