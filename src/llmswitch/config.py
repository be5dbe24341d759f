"""The configuration contract: TOML validated by pydantic.

Outside tooling writes these files, so keys are only ever added, never renamed. API keys
never live in the config: a backend names the environment variable that holds its key.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmswitch.providers.catalogue import Catalogue, builtin, fill_models
from llmswitch.providers.presets import apply_preset, auth_headers
from llmswitch.routing.patterns import (
    MAX_PATTERN_CHARS,
    MAX_RULES,
    check_token,
    compile_pattern,
    token_problem,
)
from llmswitch.store.catalogue import read_overlay
from llmswitch.urls import redact_url

Locality = Literal["local", "lan", "cloud"]
BackendKind = Literal["openai", "ollama", "anthropic", "gemini"]
AuthStyle = Literal["bearer", "x-api-key", "x-goog-api-key", "api-key", "none"]
RuleAction = Literal["route_self", "classify", "route", "reject", "queue"]
Ordering = Literal["cost", "quality"]
ClassifierMode = Literal["heuristic", "model"]
TASK_TYPES = ("code", "analysis", "creative", "math", "conversation", "vision", "tool-use")
#: A name or model id: no spaces or control characters, bounded (see routing.patterns).
Token = Annotated[str, AfterValidator(check_token)]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """ " did you mean 'x'?" for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def task_type_problem(task: str, *, star: bool = False) -> str | None:
    """Why ``task`` is not a task type (with the likely one and the valid ones), or None.

    ``star`` also accepts ``"*"`` (every task type), as ``metered_cloud`` does.
    """
    if task in TASK_TYPES or (star and task == "*"):
        return None
    valid = ", ".join((*TASK_TYPES, '"*"') if star else TASK_TYPES)
    return f"unknown task type {task!r}{did_you_mean(task, TASK_TYPES)} valid: {valid}"


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL with a host, or None; suggests the likely fix."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"{url!r} has no scheme; write 'http://{url}' (or https://)"
    if scheme not in ("http", "https"):
        return f"{url!r}: the scheme must be http:// or https://, not {scheme}://"
    if not rest or rest.startswith("/"):
        return f"{url!r} has no host"
    return None


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """ "no model named 'x'; did you mean 'y'? (models: ...)": what a reference misses."""
    names = sorted(known)
    listed = ", ".join(names) or "none"
    return f"no {kind} named {name!r}{did_you_mean(name, names)} ({kind}s: {listed})"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A connection with no request in progress, or one still sending its headers, is closed
#: after this long (hypercorn's keep-alive timer runs from the connection's start).
DEFAULT_KEEP_ALIVE_S = 5.0
#: A request body must be in within this long: a stalled upload holds a connection only so long.
DEFAULT_BODY_TIMEOUT_S = 30.0
#: A client must take each write within this long (streams: their backend's idle_s).
DEFAULT_SEND_TIMEOUT_S = 30.0
#: The longest a stream may last, first byte to last, before the gateway cuts it.
DEFAULT_MAX_STREAM_S = 3600.0


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    grace_s: float = Field(30.0, ge=0)
    max_body_bytes: int = Field(20_000_000, gt=0)
    #: Requests served at once (once their body is in); beyond it new ones get 503 with
    #: Retry-After at once.
    max_in_flight: int = Field(1000, gt=0)
    keep_alive_s: float = Field(DEFAULT_KEEP_ALIVE_S, gt=0, le=300)
    body_timeout_s: float = Field(DEFAULT_BODY_TIMEOUT_S, gt=0, le=3600)
    #: Client connections open at once; at the cap new ones wait in the kernel's backlog.
    #: Lowered at start if the open-file limit cannot serve this many (front/listen.py).
    max_connections: int = Field(4096, gt=0, le=1_000_000)
    #: Processes sharing the port (SO_REUSEPORT); more than one needs ``cluster.redis_url``.
    workers: int = Field(1, ge=1, le=64)
    #: A write to a client that has not gone out within this long closes the connection
    #: (a client that stopped reading); a stream uses its backend's ``idle_s`` instead.
    send_timeout_s: float = Field(DEFAULT_SEND_TIMEOUT_S, gt=0, le=3600)
    #: The environment variable holding the admin token for /admin, /debug and /metrics.
    #: Without one, those answer loopback peers (127.0.0.1, ::1) only.
    admin_token_env: str | None = None
    #: Bind a non-loopback address with neither an admin token nor client keys anyway.
    open_lan: bool = False
    #: Host header names served (DNS-rebinding guard); empty: localhost, the bind host and
    #: this machine's host names. IP literals are always served; "*" serves any name.
    allowed_hosts: tuple[str, ...] = ()
    #: Serve /metrics without the admin token (for a Prometheus scraper on the LAN).
    metrics_open: bool = False

    def admin_token(self) -> str | None:
        """The admin token from the environment; never stored on the config."""
        if self.admin_token_env is None:
            return None
        return os.environ.get(self.admin_token_env) or None


KIB = 1024
MIB = 1024 * KIB


class UpstreamLimits(_Section):
    """How much of what an upstream sends is read, at most (bytes).

    Upstreams are untrusted: past a limit the answer is an upstream failure (the next
    candidate is tried, or a stream ends with an error event), never a bigger buffer.
    A declared ``Content-Length`` over the limit fails before anything is read.
    """

    #: A whole (non-streamed) answer.
    answer_bytes: int = Field(16 * MIB, ge=KIB)
    #: The body of an error answer (4xx/5xx); only its message is used.
    error_bytes: int = Field(64 * KIB, ge=KIB)
    #: A health probe's answer; past it the probe stops reading (the status is enough).
    probe_bytes: int = Field(64 * KIB, ge=KIB)
    #: One server-sent event of a stream.
    event_bytes: int = Field(1 * MIB, ge=KIB)


DEFAULT_UPSTREAM_LIMITS = UpstreamLimits()


class StoreConfig(_Section):
    path: str = "llmswitch.db"
    #: ``postgresql://...``: the request log, rollups and stored settings go there (the
    #: fleet's one log); None keeps them in SQLite at ``path``. The journal stays local.
    url: str | None = None
    #: How long a write waits for a database another process has locked.
    busy_timeout_s: float = Field(5.0, gt=0)
    flush_interval_s: float = Field(0.25, gt=0)
    #: Raw request rows older than this are deleted; hourly rollups (what stats read) stay.
    retain_days: float = Field(90.0, gt=0)

    @property
    def where(self) -> str:
        """Where the store is, for people: the URL without its password, or the file."""
        return redact_url(self.url) if self.url is not None else self.path


class HealthConfig(_Section):
    interval_s: float = Field(10.0, gt=0)
    failures_to_down: int = Field(3, ge=1)
    timeout_s: float = Field(2.0, gt=0)


class BudgetConfig(_Section):
    daily_usd: float | None = Field(None, ge=0)
    weekly_usd: float | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)
    #: Daily USD per task type (``code = 2.0``): metered calls of that type stop there.
    task_daily_usd: dict[str, float] = Field(default_factory=dict)
    #: Output tokens a metered call is reserved for when neither the request's
    #: ``max_tokens`` nor the model's ``max_output_tokens`` says.
    default_output_tokens: int = Field(4096, gt=0)
    #: Fractions of a budget that log a warning, set the gauge and call the webhook once.
    alert_at: tuple[float, ...] = (0.5, 0.8, 1.0)
    #: Where budget alerts are POSTed as JSON (optional).
    webhook_url: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BudgetConfig:
        for task, usd in self.task_daily_usd.items():
            problem = task_type_problem(task)
            if problem is not None:
                raise ValueError(f"budget.task_daily_usd.{task}: {problem}")
            if usd < 0:
                raise ValueError(f"budget.task_daily_usd.{task}: must be >= 0")
        for ratio in self.alert_at:
            if not 0 < ratio <= 1:
                raise ValueError(f"budget.alert_at: {ratio} is not in (0, 1]")
        problem = None if self.webhook_url is None else url_problem(self.webhook_url)
        if problem is not None:
            raise ValueError(f"budget.webhook_url: {problem}")
        return self


#: ``routing.fallback_model`` values that name no model.
BEST_LOCAL = "best-local"
NO_FALLBACK = "none"
FALLBACK_KEYWORDS = (BEST_LOCAL, NO_FALLBACK)


class RoutingConfig(_Section):
    #: The answer when nothing can serve a request (no candidate, all failed, deadline).
    exhaustion_status: int = Field(503, ge=400, le=599)
    #: Its Retry-After: OpenClaw hands off at once on a 503 or 429 with 120.
    exhaustion_retry_after_s: int = Field(120, ge=0)
    #: Serve cloud models that have no price (metered at an unknown cost) anyway.
    allow_unpriced: bool = False
    max_attempts: int = Field(4, ge=1)
    #: All attempts of one request together (every candidate, every retry) end by then.
    deadline_s: float = Field(300.0, gt=0)
    max_stream_s: float = Field(DEFAULT_MAX_STREAM_S, gt=0)
    #: A Retry-After longer than this sends the request to the next candidate instead.
    retry_after_cap_s: float = Field(5.0, ge=0)
    #: The small local model that rules with ``action = "route_self"`` send requests to.
    self_model: Token | None = None
    #: Tier 3, tried when ``auto`` finds no model that meets the request's floor:
    #: ``"best-local"`` (the most capable available local model), a model id, or ``"none"``
    #: (answer ``exhaustion_status`` instead).
    fallback_model: Token = BEST_LOCAL
    #: Task types that may use metered (priced, cloud) models under ``auto``; "*" for all.
    #: Empty by default: a fresh install never spends money unless told to.
    metered_cloud: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    block: tuple[str, ...] = ()
    profile: str = "balanced"
    classifier: ClassifierMode = "heuristic"
    classifier_model: Token | None = None
    classifier_timeout_s: float = Field(1.5, gt=0)
    classifier_cache_size: int = Field(1024, ge=0)
    #: Conversation affinity: a conversation keeps its model this long after its last turn.
    affinity_ttl_s: float = Field(1800.0, gt=0, le=7 * 86400)
    #: Conversations remembered at once (the least recently used goes first); 0 turns
    #: affinity off.
    affinity_max: int = Field(10_000, ge=0, le=1_000_000)


class ProfileConfig(_Section):
    """How ``auto`` trades quality for cost; eco, balanced and premium ship as defaults."""

    quality_tolerance: int = Field(5, ge=0, le=100)
    floor_shift: int = Field(0, ge=-100, le=100)
    ordering: Ordering = "cost"
    max_cost_per_request: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, gt=0)


DEFAULT_PROFILES: dict[str, ProfileConfig] = {
    "eco": ProfileConfig(quality_tolerance=10, floor_shift=-10, max_cost_per_request=0.01),
    "balanced": ProfileConfig(),
    "premium": ProfileConfig(quality_tolerance=0, floor_shift=10, ordering="quality"),
}


class RuleConfig(_Section):
    """A tier-1 rule: every condition given must match; the first match by priority wins."""

    name: Token
    priority: int = 100
    enabled: bool = True
    source: str | None = None
    channel: str | None = None
    pattern: str | None = Field(None, max_length=MAX_PATTERN_CHARS)
    has_media: bool | None = None
    has_tools: bool | None = None
    token_min: int | None = Field(None, ge=0)
    token_max: int | None = Field(None, ge=0)
    model: Token | None = None
    action: RuleAction = "classify"
    target: Token | None = None
    message: str | None = None
    status: int = Field(400, ge=400, le=499)
    queue_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _check_action(self) -> RuleConfig:
        if self.action == "route" and not self.target:
            raise ValueError(f"rules.{self.name}: action 'route' needs a target model")
        if self.pattern is not None:
            try:
                compile_pattern(self.pattern)
            except ValueError as exc:
                raise ValueError(f"rules.{self.name}.pattern: {exc}") from None
        return self


class BreakerConfig(_Section):
    consecutive_failures: int = Field(5, ge=1)
    failure_ratio: float = Field(0.5, gt=0, le=1)
    window_s: float = Field(30.0, gt=0)
    min_volume: int = Field(10, ge=1)
    cooldown_s: float = Field(5.0, gt=0)
    cooldown_max_s: float = Field(120.0, gt=0)
    #: A half-open probe permit not reported back within this long is given to another.
    probe_timeout_s: float = Field(60.0, gt=0)


class BackendConfig(_Section):
    name: Token
    #: Fills kind, base_url, auth, api_key_env, locality (see providers/presets.py);
    #: any of them set here wins.
    preset: str | None = None
    kind: BackendKind = "openai"
    base_url: str
    api_key_env: str | None = None
    auth: AuthStyle = "bearer"
    #: Azure OpenAI's ``api-version`` query parameter, sent with every call.
    api_version: str | None = None
    locality: Locality = "local"
    rpm: int = Field(0, ge=0)
    tpm: int = Field(0, ge=0)
    connect_s: float = Field(2.0, gt=0)
    #: A stream that sends nothing for this long fails over before the client sees a byte.
    first_token_s: float = Field(60.0, gt=0)
    idle_s: float = Field(60.0, gt=0)
    total_s: float = Field(600.0, gt=0)
    max_connections: int = Field(100, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, dict) else data

    @field_validator("base_url")
    @classmethod
    def _url(cls, url: str) -> str:
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(problem)
        return url

    def api_key(self) -> str | None:
        """The key from the environment at call time; never stored on the config."""
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def auth_headers(self) -> dict[str, str]:
        return auth_headers(self.auth, self.api_key())


class ModelConfig(_Section):
    id: Token
    backend: Token
    upstream: Token | None = None
    quality: int = Field(50, ge=0, le=100)
    context_window: int = Field(8192, gt=0)
    cost_input_per_mtok: float = Field(0.0, ge=0)
    cost_output_per_mtok: float = Field(0.0, ge=0)
    fallbacks: tuple[Token, ...] = ()
    aliases: tuple[Token, ...] = ()
    enabled: bool = True
    rpm: int = Field(0, ge=0)
    tpm: int = Field(0, ge=0)
    #: Task types this model is fit for (see TASK_TYPES); empty means all of them.
    capabilities: tuple[str, ...] = ()
    #: The most tokens it answers with; a metered call's worst case when the request
    #: sets no ``max_tokens``.
    max_output_tokens: int | None = Field(None, gt=0)
    #: It takes ``reasoning_effort``: an OpenAI-wire model gets the Anthropic door's
    #: ``thinking`` translated (see providers/thinking.py); others get it dropped.
    reasoning: bool = False

    def can(self, task_type: str) -> bool:
        return not self.capabilities or task_type in self.capabilities

    @property
    def upstream_name(self) -> str:
        return self.upstream or self.id

    @property
    def priced(self) -> bool:
        return self.cost_input_per_mtok > 0 or self.cost_output_per_mtok > 0

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        return (
            tokens_in * self.cost_input_per_mtok + tokens_out * self.cost_output_per_mtok
        ) / 1_000_000


class KeyPolicy(_Section):
    """What one client key may do; shared by ``[[clients]]`` and runtime keys."""

    rpm: int = Field(0, ge=0)
    tpm: int = Field(0, ge=0)
    #: Model ids (globs: ``"gpt-*"``) this key may be served by; empty means all.
    models: tuple[str, ...] = ()
    #: Profiles this key may ask for; empty means all.
    profiles: tuple[str, ...] = ()
    #: The profile every ``auto`` request of this key uses, whatever it asks.
    force_profile: str | None = None
    daily_usd: float | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)
    #: Task types this key may send to metered cloud; None: ``routing.metered_cloud``.
    metered_cloud: tuple[str, ...] | None = None


class ClientConfig(KeyPolicy):
    """A client known by its API key, with its own limits and rights.

    The key is never in the file: ``key_env`` names the variable holding it, or
    ``key_sha256`` is its SHA-256 in hex (``llmswitch keys hash``).
    """

    name: Token
    key_env: str | None = None
    key_sha256: str | None = Field(None, pattern="^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _one_key(self) -> ClientConfig:
        if (self.key_env is None) == (self.key_sha256 is None):
            raise ValueError(f"clients.{self.name}: give exactly one of key_env or key_sha256")
        return self

    def key_digest(self) -> bytes | None:
        """SHA-256 of the key; None when its variable is unset."""
        if self.key_sha256 is not None:
            return bytes.fromhex(self.key_sha256)
        key = os.environ.get(self.key_env or "")
        return hashlib.sha256(key.encode()).digest() if key else None


class LogConfig(_Section):
    #: ``logfmt`` (key=value) or ``json`` (one object per line, every log record).
    format: Literal["logfmt", "json"] = "logfmt"
    #: One line per finished request (see front.access_log).
    requests: bool = True


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` is not a URL of one of ``schemes``; the URL itself is never quoted
    (it may carry a password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes or not rest:
        return f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
    return None


class ClusterConfig(_Section):
    """State shared by the instances of one fleet (workers of one host, or several hosts)."""

    #: Budgets, limits, breakers, keys, settings and affinity live here; None: in memory.
    redis_url: str | None = None
    #: Every Redis key starts with ``<prefix>:``, so one Redis serves several fleets.
    prefix: Token = "llmswitch"
    #: With Redis unreachable, the share of the remaining budget metered calls may spend.
    offline_budget_fraction: float = Field(0.0, ge=0, le=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: str | None) -> str | None:
        problem = url and _url_problem(url, ("redis", "rediss", "unix"))
        if problem:
            raise ValueError(problem)
        return url


class StatsConfig(_Section):
    #: What savings are measured against; default: the priciest configured model.
    baseline_model: str | None = None


class Config(_Section):
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    health: HealthConfig = HealthConfig()
    budget: BudgetConfig = BudgetConfig()
    routing: RoutingConfig = RoutingConfig()
    breaker: BreakerConfig = BreakerConfig()
    upstream_limits: UpstreamLimits = DEFAULT_UPSTREAM_LIMITS
    stats: StatsConfig = StatsConfig()
    log: LogConfig = LogConfig()
    cluster: ClusterConfig = ClusterConfig()
    backends: tuple[BackendConfig, ...] = ()
    models: tuple[ModelConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    profiles: dict[Token, ProfileConfig] = Field(default_factory=dict)
    rules: tuple[RuleConfig, ...] | None = Field(None, max_length=MAX_RULES)
    #: Per task type, the model ``auto`` tries first (e.g. ``code = "coder-14b"``).
    overrides: dict[str, str] = Field(default_factory=dict)

    def baseline_model(self) -> ModelConfig | None:
        """The model savings are measured against: configured, else the priciest."""
        if self.stats.baseline_model is not None:
            return next(m for m in self.models if m.id == self.stats.baseline_model)
        priced = [m for m in self.models if m.priced]
        return max(priced, key=lambda m: m.cost_usd(1, 1), default=None)

    @property
    def all_profiles(self) -> dict[str, ProfileConfig]:
        """The shipped profiles with the user's on top (same name replaces)."""
        return DEFAULT_PROFILES | self.profiles

    @model_validator(mode="before")
    @classmethod
    def _catalogued(cls, data: Any, info: ValidationInfo) -> Any:
        """Catalogued cloud models take what the config leaves out (providers/catalogue.py)."""
        catalogue = (info.context or {}).get("catalogue") or builtin()
        return fill_models(data, catalogue, TASK_TYPES)

    @model_validator(mode="after")
    def _check_references(self) -> Config:
        backends = {b.name for b in self.backends}
        if len(backends) != len(self.backends):
            raise ValueError("backends: names must be unique")
        names: set[str] = {"auto"}
        for m in self.models:
            if m.backend not in backends:
                missing = unknown_name("backend", m.backend, backends)
                raise ValueError(f"models.{m.id}.backend: {missing}")
            for name in (m.id, *m.aliases):
                if name in names:
                    raise ValueError(f"models.{m.id}: name {name!r} is used twice")
                names.add(name)
        ids = {m.id for m in self.models}
        if self.stats.baseline_model is not None and self.stats.baseline_model not in ids:
            raise ValueError(
                f"stats.baseline_model: no model named {self.stats.baseline_model!r}"
                f" (models: {', '.join(sorted(ids)) or 'none'})"
            )
        for m in self.models:
            for fb in m.fallbacks:
                if fb not in ids:
                    raise ValueError(f"models.{m.id}.fallbacks: {unknown_name('model', fb, ids)}")
        r = self.routing
        tasks = [
            (f"models.{m.id}.capabilities", c, False) for m in self.models for c in m.capabilities
        ]
        tasks += [("routing.metered_cloud", task, True) for task in r.metered_cloud]
        tasks += [(f"overrides.{task}", task, False) for task in self.overrides]
        for key, task, star in tasks:
            problem = task_type_problem(task, star=star)
            if problem is not None:
                raise ValueError(f"{key}: {problem}")
        named = [
            ("routing.self_model", r.self_model),
            ("routing.classifier_model", r.classifier_model),
        ]
        if r.fallback_model not in FALLBACK_KEYWORDS:
            named.append(("routing.fallback_model", r.fallback_model))
        named += [(f"overrides.{task}", model) for task, model in self.overrides.items()]
        named += [(f"rules.{rule.name}.target", rule.target) for rule in self.rules or ()]
        named += [("routing.allow", m) for m in r.allow] + [("routing.block", m) for m in r.block]
        for key, model in named:
            if model is not None and model not in names:
                raise ValueError(f"{key}: {unknown_name('model', model, names - {'auto'})}")
        if r.profile not in self.all_profiles:
            missing = unknown_name("profile", r.profile, self.all_profiles)
            raise ValueError(f"routing.profile: {missing}")
        for c in self.clients:
            problem = self.key_policy_problem(c)
            if problem is not None:
                raise ValueError(f"clients.{c.name}: {problem}")
        if len({c.name for c in self.clients}) != len(self.clients):
            raise ValueError("clients: names must be unique")
        if self.server.workers > 1 and self.cluster.redis_url is None:
            raise ValueError(
                f"server.workers = {self.server.workers} needs cluster.redis_url: workers share"
                " budgets, limits and keys through Redis (or set workers = 1)"
            )
        if self.store.url is not None:
            problem = _url_problem(self.store.url, ("postgresql", "postgres"))
            if problem:
                raise ValueError(f"store.url: {problem}")
        return self

    def key_policy_problem(self, policy: KeyPolicy) -> str | None:
        """Why a client key's rights name something this config lacks, or None."""
        for p in (*policy.profiles, *([policy.force_profile] if policy.force_profile else [])):
            if p not in self.all_profiles:
                return unknown_name("profile", p, self.all_profiles)
        for task in policy.metered_cloud or ():
            problem = task_type_problem(task, star=True)
            if problem is not None:
                return f"metered_cloud: {problem}"
        return None

    def backend(self, name: str) -> BackendConfig:
        return next(b for b in self.backends if b.name == name)


class ConfigError(Exception):
    """The config file is missing, not TOML, or not valid; the message names file and key."""


def load_config(path: str | Path, *, need_models: bool = True) -> Config:
    """Read, validate and anchor a config file: a relative ``store.path`` is relative to
    the file, not to the working directory; a file with no model is refused unless
    ``need_models`` is False (``models --discover`` fills one that names backends only)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (try `llmswitch init {path}`)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    config = parse_config(data, source=str(path))
    if need_models and not config.models:
        raise ConfigError(
            f"{path}: no [[models]]: a gateway needs at least one"
            " (`llmswitch init` writes an example; `llmswitch models --discover --write`"
            " adds what an Ollama backend serves)"
        )
    config = anchored(config, path.parent)
    overlay = read_overlay(config.store.path, config.store.url)
    if not overlay:
        return config
    filled = parse_config(data, source=str(path), catalogue=builtin().with_overlay(overlay))
    return anchored(filled, path.parent)


def anchored(config: Config, base: Path) -> Config:
    """The config with a relative ``store.path`` made relative to ``base``."""
    store = config.store.path
    if store == ":memory:" or Path(store).is_absolute():
        return config
    moved = config.store.model_copy(update={"path": str(base / store)})
    return config.model_copy(update={"store": moved})


def parse_config(
    data: dict[str, object], source: str = "<config>", catalogue: Catalogue | None = None
) -> Config:
    """The config in ``data``; ``catalogue`` (default: the built-in one) fills known models."""
    try:
        return Config.model_validate(data, context={"catalogue": catalogue})
    except ValidationError as exc:
        lines = describe_errors(exc.errors(), data)
        head = f"{source}: " if len(lines) == 1 else f"{source}: {len(lines)} errors\n  "
        raise ConfigError(head + "\n  ".join(lines)) from None


def describe_errors(errors: Sequence[Any], data: object) -> list[str]:
    """pydantic's errors as lines a person can act on, one per problem.

    A list item is named by its ``id`` or ``name`` (``models.qwen-small.quality``, not
    ``models.0.quality``); an unknown key gets the closest known one; a check's own
    message (it names its key already) is shown as written, without pydantic's prefix.
    """
    lines: list[str] = []
    for err in errors:
        loc = tuple(err["loc"])
        key = _key_path(loc, data)
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            msg = "unknown key" + (
                did_you_mean(str(loc[-1]), known) or f"; valid: {', '.join(known)}"
            )
        elif err["type"] == "missing":
            msg = "required but missing"
        line = msg if not key or msg.split(":", 1)[0].startswith(key) else f"{key}: {msg}"
        if line not in lines:
            lines.append(line)
    return lines


def _key_path(loc: tuple[Any, ...], data: object) -> str:
    """``("models", 0, "quality")`` → ``models.qwen-small.quality``, from the raw data
    (the index stays when the item has no valid id or name)."""
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
            label = node.get("id", node.get("name")) if isinstance(node, dict) else None
            named = isinstance(label, str) and token_problem(label) is None
            parts.append(str(label) if named else str(part))
        else:
            node = node.get(part) if isinstance(node, dict) else None
            parts.append(str(part))
    return ".".join(parts)


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the section at ``loc`` accepts (empty when it is not a section)."""
    model: type[BaseModel] | None = Config
    keyed = False  # the next part is a list index or a table's own key
    for part in loc:
        if model is None:
            return []
        if keyed:
            keyed = False
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model, keyed = _section_of(field.annotation)
    return sorted(model.model_fields) if model is not None else []


def _section_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The section type inside a field's type, and whether it sits in a list or table."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    for arg in get_args(annotation):
        model, keyed = _section_of(arg)
        if model is not None:
            return model, keyed or get_origin(annotation) in (tuple, list, dict)
    return None, False
