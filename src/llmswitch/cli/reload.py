"""``reload``: ask the running gateway to re-read its config file and swap it in.

It talks to the gateway over HTTP (``POST /admin/reload``), sending the admin token from
``server.admin_token_env`` when the config names one (without one the gateway answers
loopback peers only). The config file is read here only for the address and the token's
variable, leniently: checking it is the gateway's job, and a file it refuses is the
answer this command exists to show.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path
from typing import Any

import httpx

from llmswitch.cli.common import EXIT_CONFIG, EXIT_FAILED, SubParsers, fail
from llmswitch.cli.remote import gateway_url

TIMEOUT_S = 30.0


def _server_section(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    server = data.get("server")
    return server if isinstance(server, dict) else {}


def summary(answer: dict[str, Any]) -> str:
    """One line: what the reload applied, and what waits for a restart."""
    line = f"{answer.get('status')}: generation {answer.get('generation')}"
    applied = answer.get("applied") or []
    if applied:
        line += f" ({'; '.join(map(str, applied))})"
    restart = answer.get("needs_restart") or []
    if restart:
        line += f"; needs a restart: {'; '.join(map(str, restart))}"
    return line


def cmd_reload(args: argparse.Namespace) -> int:
    server = _server_section(args.config)
    port = server.get("port", 8080)
    default = gateway_url(
        str(server.get("host", "127.0.0.1")), port if isinstance(port, int) else 8080
    )
    url = (args.url or default).rstrip("/")
    token_env = server.get("admin_token_env")
    token = os.environ.get(token_env) if isinstance(token_env, str) else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(timeout=TIMEOUT_S) as client:
            resp = client.post(f"{url}/admin/reload", headers=headers)
    except httpx.HTTPError as exc:
        return fail(f"cannot reach the gateway at {url}: {exc}")
    try:
        answer = resp.json()
    except ValueError:
        return fail(f"{url}/admin/reload answered HTTP {resp.status_code}, not JSON")
    if not isinstance(answer, dict):
        return fail(f"{url}/admin/reload answered HTTP {resp.status_code}, not a JSON object")
    if resp.status_code == 200:
        print(summary(answer))
        return 0
    error = answer.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    text = str(message or f"HTTP {resp.status_code}")
    return fail(text, EXIT_CONFIG if code == "config_invalid" else EXIT_FAILED)


def register(sub: SubParsers) -> None:
    about = "make the running gateway re-read its config file (like SIGHUP)"
    p = sub.add_parser("reload", help=about, description=about)
    p.add_argument("--config", default="llmswitch.toml", help="for the address and admin token")
    p.add_argument("--url", help="the gateway's base URL (default: from the config)")
    p.set_defaults(func=cmd_reload)
