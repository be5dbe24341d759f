"""The ``llmswitch`` command: one module per command group.

serve, init and demo run or set up a gateway (:mod:`.serve`); route, profile and
override ask and steer the router offline (:mod:`.routing`); models lists and discovers
models (:mod:`.models`); keys manages client keys (:mod:`.keys`); openclaw-config prints
OpenClaw's provider block (:mod:`.openclaw`). The offline commands need no server: they
read the config file and its SQLite store. status, stats and reload ask a running
gateway, as its operator (:mod:`.status`, :mod:`.reload`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import PackageNotFoundError, version

from llmswitch.cli import check, keys, models, openclaw, prices, reload, routing, serve, status

#: Each group adds its subcommands with ``register(sub)``; the order is the help's order.
GROUPS = (serve, routing, models, prices, keys, check, status, reload, openclaw)

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


#: Plain text: argparse prints it as is, so no markup.
DESCRIPTION = (
    "A self-hosted LLM routing gateway: one OpenAI- and Anthropic-compatible endpoint\n"
    "that sends each request to the cheapest model that can do the job."
)
EPILOG = """\
start here:
  llmswitch demo                 the gateway with simulated backends, no model needed
  llmswitch init                 write a starter config for Ollama on this machine
  llmswitch serve                serve it

exit codes: 0 done, 1 refused or failed, 2 bad config or arguments,
            3 unusable environment (port in use, store unusable)
"""


def _version() -> str:
    try:
        return version("llmswitch")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmswitch",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"llmswitch {_version()}")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning"],
        help="default: info for serve and demo, warning for the other commands",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `llmswitch`: say what it can do
        parser.print_help()
        return 0
    _setup_logging(args.log_level or ("info" if args.command in SERVERS else "warning"))
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
