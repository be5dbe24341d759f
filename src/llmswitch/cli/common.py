"""What every command shares: the exit codes, loading the config, and the offline wrapper.

Exit codes (documented in the README): 0 done, 1 refused or failed, 2 a bad config or
bad arguments, 3 the environment is unusable (port in use, store unusable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeAlias

from llmswitch.config import Config, ConfigError, load_config
from llmswitch.store.errors import StoreError

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_ENVIRONMENT = 3

Command = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def fail(message: str, code: int = EXIT_FAILED) -> int:
    """One line on stderr, prefixed like every other CLI message; returns ``code``."""
    print(f"llmswitch: {message}", file=sys.stderr)
    return code


def offline(
    command: Callable[[Config, argparse.Namespace], int], *, need_models: bool = True
) -> Command:
    """A command on the config (exit 2 if it is bad) and its store (exit 3 if that is
    unusable: not a database, corrupt, locked for too long), in one line."""

    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(args.config, need_models=need_models)
        except ConfigError as exc:
            return fail(str(exc), EXIT_CONFIG)
        try:
            return command(config, args)
        except StoreError as exc:
            return fail(f"store: {exc}", EXIT_ENVIRONMENT)

    return run


def config_command(sub: SubParsers, name: str, about: str) -> argparse.ArgumentParser:
    """A subcommand that reads ``--config`` and can answer in JSON."""
    p = sub.add_parser(name, help=about, description=about)
    p.add_argument("--config", default="llmswitch.toml")
    p.add_argument("--json", action="store_true", help="JSON for scripts instead of tables")
    return p
