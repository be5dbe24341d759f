"""Who may ask what: one check every request passes before any handler runs.

Requests are sorted by route kind, not by door, so a door added later is covered the
day it is added:

- ``model`` (everything under ``/v1/``): a client key when any key exists (config or
  store), sent as ``Authorization: Bearer KEY`` (scheme in any case) or ``x-api-key``;
- ``admin`` (``/admin``, ``/debug``, ``/ui``, ``/metrics`` unless ``metrics_open``, and
  any path not known to be public): the admin token, or a loopback peer when no token
  is configured;
- ``public``: ``/health`` (and ``/metrics`` when ``metrics_open``), the dashboard's
  login and its two static assets (our own code, no data).

A browser cannot put the admin token in a header of a page load or an EventSource, so
``POST /ui/login`` trades the token for an HttpOnly, SameSite=Strict session cookie
(:data:`UI_COOKIE`) derived from the token's digest; the cookie opens admin routes like
the token, writes only from the same origin.

Before that, on every request: a Host header that names neither an IP address nor an
allowed host name is refused (a DNS-rebinding page reaches us under its own name), and
a write with an ``Origin`` header and a body that is not JSON is refused (a cross-site
form or ``text/plain`` fetch needs no CORS preflight; a JSON one does).

Keys and the admin token are compared as SHA-256 digests with ``hmac.compare_digest``;
neither ever appears in a log, an error or the database.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from llmswitch.config import ClientConfig, Config, ServerConfig
from llmswitch.front.errors import GatewayError
from llmswitch.routing.select import ClientKey

RouteKind = Literal["model", "admin", "public"]

#: Only these peers count as "the machine itself" for admin access without a token;
#: other 127/8 addresses are refused like a LAN peer (they are what tests stand in with).
LOOPBACK_PEERS = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
WWW_AUTHENTICATE = 'Bearer realm="llmswitch"'
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
UI_COOKIE = "llmswitch_ui"
PUBLIC_UI = frozenset({"/ui/login", "/ui/static/app.js", "/ui/static/app.css"})


@dataclass(frozen=True)
class KeyRing:
    """Every accepted client key, by the SHA-256 of the key."""

    keys: tuple[tuple[bytes, ClientKey], ...] = ()

    @classmethod
    def build(
        cls, clients: Iterable[ClientConfig], stored: Iterable[tuple[bytes, ClientKey]] = ()
    ) -> KeyRing:
        configured = [(d, ClientKey(c.name, c)) for c in clients if (d := c.key_digest())]
        return cls((*configured, *stored))

    @property
    def required(self) -> bool:
        """Any key exists, so every model request needs one."""
        return bool(self.keys)

    def find(self, presented: str) -> ClientKey | None:
        """The client whose key this is; every stored digest is compared, in constant time."""
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for stored, client in self.keys:
            if hmac.compare_digest(stored, digest):
                found = client
        return found


def route_kind(path: str, metrics_open: bool) -> RouteKind:
    if path.startswith("/v1/"):
        return "model"
    if path == "/health" or (path == "/metrics" and metrics_open) or path in PUBLIC_UI:
        return "public"
    return "admin"


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer …`` (scheme case-insensitive)."""
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def presented_key(headers: Mapping[str, str]) -> str | None:
    """A client key as OpenAI SDKs (bearer) or Anthropic SDKs (``x-api-key``) send it."""
    return headers.get("x-api-key", "").strip() or bearer(headers)


def presents_credential(headers: Mapping[str, str]) -> bool:
    """Whether the request carries something that would be checked (front.lockout)."""
    return presented_key(headers) is not None or cookie(headers, UI_COOKIE) is not None


def default_host_names(server: ServerConfig) -> frozenset[str]:
    hostname = socket.gethostname()
    names = {"localhost", server.host, hostname, hostname.split(".")[0], socket.getfqdn()}
    return frozenset(n.lower() for n in names if n)


@dataclass(frozen=True)
class HostPolicy:
    """Which Host header names are served; IP literals always are (no DNS, no rebinding)."""

    names: frozenset[str] = field(default_factory=frozenset)
    any_name: bool = False

    @classmethod
    def of(cls, server: ServerConfig) -> HostPolicy:
        if "*" in server.allowed_hosts:
            return cls(any_name=True)
        names = frozenset(h.lower() for h in server.allowed_hosts)
        return cls(names or default_host_names(server))

    def allows(self, host: str | None) -> bool:
        if not host or self.any_name:
            return True
        name = host.strip().lower()
        if name.startswith("["):  # [::1]:8080
            name = name[1 : name.find("]")] if "]" in name else name
        elif name.count(":") == 1:
            name = name.split(":")[0]
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return name.rstrip(".") in self.names
        return True


def ui_session(token_digest: bytes) -> str:
    """The dashboard cookie's value: derived from the token, so the cookie never holds it."""
    return hashlib.sha256(b"llmswitch-ui-session\0" + token_digest).hexdigest()


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    """One cookie's value from the ``Cookie`` header, or None."""
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def same_origin(headers: Mapping[str, str]) -> bool:
    """The ``Origin`` names the host the request was sent to (a page of ours sent it)."""
    origin = headers.get("origin", "")
    return bool(origin) and origin.partition("://")[2] == headers.get("host", "").strip()


def cross_site_write(method: str, headers: Mapping[str, str]) -> bool:
    """A browser write from another page: an Origin, and a body type no preflight guards."""
    if method in _SAFE_METHODS or "origin" not in headers:
        return False
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    return not (media == "application/json" or media.endswith("+json"))


def admin_refusal(
    token_digest: bytes | None, method: str, headers: Mapping[str, str], peer: str | None
) -> GatewayError | None:
    """Why this request may not steer the gateway, or None: the one admin check.

    With a token configured, only the token opens (from any peer), or the dashboard's
    cookie (a write only from our own origin); without one, only a loopback peer. Used by
    every operator surface (/admin, /debug, /metrics, /ui).
    """
    if token_digest is None:
        if peer in LOOPBACK_PEERS:
            return None
        return GatewayError(
            403,
            "admin endpoints answer loopback peers only; set server.admin_token_env to "
            "allow others",
            "permission_error",
            code="admin_loopback_only",
        )
    token = bearer(headers)
    digest = hashlib.sha256(token.encode()).digest() if token else b""
    if hmac.compare_digest(digest, token_digest):
        return None
    session = cookie(headers, UI_COOKIE)
    if (
        session is not None
        and hmac.compare_digest(session.encode(), ui_session(token_digest).encode())
        and (method in _SAFE_METHODS or same_origin(headers))
    ):
        return None
    return GatewayError(
        401,
        "a valid admin token is required (Authorization: Bearer TOKEN)",
        "authentication_error",
        code="invalid_admin_token",
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


def key_refusal(present: bool) -> GatewayError:
    what = "the API key is not valid" if present else "an API key is required"
    return GatewayError(
        401,
        f"{what} (Authorization: Bearer KEY or x-api-key)",
        "authentication_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": WWW_AUTHENTICATE},
    )


@dataclass(frozen=True)
class Access:
    """The access rules of one running gateway (host names, admin token digest)."""

    hosts: HostPolicy
    admin_digest: bytes | None
    metrics_open: bool

    @classmethod
    def of(cls, config: Config) -> Access:
        token = config.server.admin_token()
        digest = hashlib.sha256(token.encode()).digest() if token else None
        return cls(HostPolicy.of(config.server), digest, config.server.metrics_open)

    def check(
        self,
        keys: KeyRing,
        method: str,
        path: str,
        headers: Mapping[str, str],
        peer: str | None,
    ) -> ClientKey | None:
        """The client the request comes from (None: anonymous); GatewayError if refused."""
        if not self.hosts.allows(headers.get("host")):
            raise GatewayError(
                403,
                "this Host is not served here (server.allowed_hosts)",
                "permission_error",
                code="host_not_allowed",
            )
        if cross_site_write(method, headers):
            raise GatewayError(
                403,
                "a cross-origin request must send a JSON body (Content-Type: application/json)",
                "permission_error",
                code="cross_origin_refused",
            )
        kind = route_kind(path, self.metrics_open)
        if kind == "admin":
            refusal = admin_refusal(self.admin_digest, method, headers, peer)
            if refusal is not None:
                raise refusal
            return None
        if kind == "public" or not keys.required:
            return None
        presented = presented_key(headers)
        client = keys.find(presented) if presented else None
        if client is None:
            raise key_refusal(presented is not None)
        return client


def bind_refusal(config: Config, keys: KeyRing) -> str | None:
    """Why the gateway must not start on this address, or None (one line)."""
    server = config.server
    host = server.host.strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback or server.open_lan or server.admin_token() or keys.required:
        return None
    return (
        f"refusing to listen on {server.host}: anyone on the network could spend and steer; "
        "set server.admin_token_env or add [[clients]] keys, or server.open_lan = true"
    )
