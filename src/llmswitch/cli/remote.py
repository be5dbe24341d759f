"""Talking to a running gateway from the CLI, as its operator (the admin token).

The address comes from the config's ``[server]`` (a wildcard bind is reached on
loopback) unless ``--url`` says otherwise; the token from ``server.admin_token_env``.
Failures are one line each, with what to do: nothing listening, a refused token.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx

from llmswitch.config import Config

#: Answers of the admin API are small; a larger one is not from llmswitch.
MAX_ANSWER_BYTES = 8 * 1024 * 1024
TIMEOUT_S = 10.0
#: A wildcard bind is reached through loopback.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class RemoteError(Exception):
    """The gateway could not be asked; the message is the one line to print."""


def gateway_url(host: str, port: int) -> str:
    """The base URL of a gateway bound to ``host``:``port``, as seen from this machine."""
    host = WILDCARDS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def add_remote_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help="the gateway's address (default: from the config's [server])")


class Remote:
    def __init__(self, config: Config, url: str | None = None) -> None:
        self.url = (url or gateway_url(config.server.host, config.server.port)).rstrip("/")
        self._token_env = config.server.admin_token_env
        token = config.server.admin_token()
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The JSON a GET answers; RemoteError when it cannot be had. ``/health`` answers
        503 with its body when the gateway is not ready: that is an answer too."""
        try:
            with (
                httpx.Client(timeout=TIMEOUT_S) as client,
                client.stream("GET", self.url + path, params=params, headers=self._headers) as resp,
            ):
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise RemoteError(f"{self.url}{path}: answer over {MAX_ANSWER_BYTES} bytes")
                status = resp.status_code
        except httpx.ConnectError:
            raise RemoteError(
                f"no gateway answers at {self.url}: is `llmswitch serve` running? (--url)"
            ) from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from None
        try:
            payload = json.loads(body)
        except ValueError:
            raise RemoteError(f"{self.url}{path}: HTTP {status}, not JSON") from None
        if status in (401, 403):
            how = (
                f"is {self._token_env} set to the gateway's admin token?"
                if self._token_env
                else "without server.admin_token_env the admin API answers loopback only"
            )
            raise RemoteError(f"{self.url}{path}: HTTP {status}, admin access refused: {how}")
        if status >= 400 and not (status == 503 and path.startswith("/health")):
            message = payload.get("error", {}).get("message") if isinstance(payload, dict) else None
            raise RemoteError(f"{self.url}{path}: HTTP {status}: {message or 'error'}")
        return payload
