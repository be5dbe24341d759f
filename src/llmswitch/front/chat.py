"""POST /v1/chat/completions: decide, try candidates in order, relay the answer.

A candidate that fails before the client has seen a byte is replaced by the next one.
Once bytes have gone out, a failure ends the stream with an SSE error event: two
models' output is never spliced into one answer. Every request leaves one ledger row.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from llmswitch.actors.health import ProbeNow
from llmswitch.actors.ledger import OverBudget, Reserve, Settle
from llmswitch.actors.limits import (
    Acquire,
    Report,
    parse_retry_after,
    ratelimit_headers,
)
from llmswitch.actors.pool import Grant, Lease, Outcome
from llmswitch.actors.router import Decide, Pin
from llmswitch.front.errors import GatewayError, unknown_model
from llmswitch.front.listen import set_send_timeout
from llmswitch.front.retry import retry_same_in
from llmswitch.front.upstream import Opened, UpstreamFailure, open_answer, relay_chunks
from llmswitch.gateway import Gateway
from llmswitch.providers.openai import (
    StreamTap,
    Usage,
    client_wants_usage,
    content_chars,
    estimate_tokens,
    prompt_chars,
    sse_error,
    usage_of,
)
from llmswitch.providers.registry import wire_for
from llmswitch.providers.thinking import thinking_for
from llmswitch.routing.affinity import affinity_key
from llmswitch.routing.brain import Rejected, Signals, UnknownModel
from llmswitch.routing.budget import budgets_for, output_bound, scopes_of, worst_case_usd
from llmswitch.routing.envelope import read_envelope
from llmswitch.routing.live import budget_in_force
from llmswitch.routing.profiles import UnknownProfile
from llmswitch.routing.rules import features_of
from llmswitch.routing.select import (
    Candidate,
    ClientKey,
    Decision,
    Refused,
    client_scope,
    model_scope,
    output_cap,
)
from llmswitch.runtime.mailbox import ActorCrashed, CallTimeout, Overloaded
from llmswitch.store.request_log import RequestRow

DECIDE_TIMEOUT_S = 2.0
REJECTED_BY_RULE = "rejected_by_rule"
LEASE_TIMEOUT_S = 1.0
#: How long a request waits on an actor that is working through a queue (the timeouts
#: above are for one that takes nothing): a starved machine slows every actor down, and a
#: late answer beats a refusal. Past it, the request is shed as overloaded.
PATIENCE_S = 10.0
QUEUE_POLL_S = 0.25
#: Longest text a client controls (the model it asked for) kept in the ledger or echoed.
CLIENT_TEXT_CHARS = 256
#: Longest error kept in the ledger: errors quote upstreams and clients.
ERROR_TEXT_CHARS = 1024


def clip(text: str | None, limit: int = CLIENT_TEXT_CHARS) -> str | None:
    """``text`` bounded to ``limit`` characters and storable as UTF-8 (a lone surrogate from
    a JSON escape becomes ``?``): any client could otherwise write megabytes per request
    into the ledger, or a row SQLite refuses."""
    if text is None:
        return None
    if len(text) > limit:
        text = text[:limit] + "..."
    return text.encode("utf-8", "replace").decode("utf-8")


@dataclass
class Exchange:
    """What one client request has become so far; turns into its ledger row."""

    request_id: str
    client: str
    body: dict[str, Any] = field(default_factory=dict)
    #: The body as the client sent it, in its door's dialect (``body`` is the pipeline's).
    client_body: dict[str, Any] = field(default_factory=dict)
    wall_start: float = field(default_factory=time.time)
    started: float = field(default_factory=trio.current_time)
    requested_model: str | None = None
    decision: Decision | None = None
    served_by: Candidate | None = None
    status: int = 200
    ttfb_s: float | None = None
    usage: Usage | None = None
    error: str | None = None
    recorded: bool = False
    #: The client key the request carried, if any.
    client_name: str | None = None
    key: ClientKey | None = None
    ratelimit: dict[str, str] = field(default_factory=dict)
    #: The ``reject`` rule that refused the request, if one did.
    rejected_by: str | None = None
    #: The breaker permits of the attempt in progress.
    grant: Grant = field(default_factory=Grant)
    #: The ledger's budget hold for the attempt in progress (a metered call), if any.
    hold: int | None = None
    #: The ``max_tokens`` the serving model got, when it could give less than was asked.
    output_cap: int | None = None
    #: Whether the request counts in ``Gateway.in_flight`` (its body was in).
    counted: bool = False

    @property
    def task_type(self) -> str | None:
        cls = self.decision.classification if self.decision is not None else None
        return cls.task_type if cls is not None else None

    @property
    def cost_usd(self) -> float:
        """What the answer cost at the serving model's prices (0 before it is served)."""
        if self.served_by is None or self.usage is None:
            return 0.0
        return self.served_by.model.cost_usd(self.usage.prompt_tokens, self.usage.completion_tokens)

    def row(self, instance: str | None) -> RequestRow:
        cand, cls, usage = self.served_by, None, self.usage or Usage(0, 0, True)
        if self.decision is not None and self.decision.classification is not None:
            cls = self.decision.classification.complexity
        return RequestRow(
            ts=self.wall_start,
            request_id=self.request_id,
            client=clip(self.client),
            requested_model=clip(self.requested_model),
            chosen_model=cand.model.id if cand else None,
            backend=cand.backend.name if cand else None,
            tier=self.decision.tier if self.decision else ("rules" if self.rejected_by else None),
            classification=cls,
            reason=self.decision.reason if self.decision else None,
            status=self.status,
            stream=bool(self.body.get("stream")),
            latency_ms=(trio.current_time() - self.started) * 1000,
            ttfb_ms=None if self.ttfb_s is None else self.ttfb_s * 1000,
            tokens_in=usage.prompt_tokens,
            tokens_out=usage.completion_tokens,
            usage_estimated=usage.estimated,
            cost_usd=self.cost_usd,
            error=clip(self.error, ERROR_TEXT_CHARS),
            rule=self.decision.rule if self.decision else self.rejected_by,
            profile=self.decision.profile if self.decision else None,
            harness=self.decision.harness if self.decision else None,
            conversation=self.decision.conversation if self.decision else None,
            output_cap=self.output_cap,
            task=self.task_type,
            affinity=self.decision.affinity if self.decision else None,
            instance=instance,
        )

    def router_headers(self) -> dict[str, str]:
        headers = {"X-Request-Id": self.request_id}
        if self.decision is not None:
            headers["X-Router-Tier"] = self.decision.tier
            if self.decision.classification is not None:
                headers["X-Router-Classification"] = self.decision.classification.complexity
            if self.decision.profile is not None:
                headers["X-Router-Profile"] = self.decision.profile
            if self.decision.rule is not None:
                headers["X-Router-Rule"] = self.decision.rule
            if self.decision.affinity is not None:
                headers["X-Router-Affinity"] = self.decision.affinity
        if self.served_by is not None:
            headers["X-Router-Model"] = self.served_by.model.id
            headers["X-Router-Backend"] = self.served_by.backend.name
            headers["X-Router-Upstream-Model"] = self.served_by.model.upstream_name
            if self.usage is not None:  # known before the answer only when it is not streamed
                headers["X-Router-Cost-USD"] = f"{self.cost_usd:.8f}"
        return headers


async def record(gw: Gateway, ex: Exchange) -> None:
    """End the exchange: its one ledger row, and its spend settled against the budgets."""
    ex.recorded = True
    row = ex.row(gw.instance)
    await gw.record(row, in_flight=ex.counted)
    if ex.hold is not None or row.cost_usd:
        await _settle_hold(gw, ex, row.cost_usd)


async def _settle_hold(gw: Gateway, ex: Exchange, usd: float) -> None:
    """Release the hold (if any) and count ``usd``; not lost to a cancellation."""
    settle = Settle(ex.hold, ex.request_id, usd, ex.wall_start, scopes_of(ex.key, ex.task_type))
    ex.hold = None
    with trio.CancelScope(shield=True):
        await gw.ledger.cast(settle)


#: How the end of a client's connection reaches a request: its task cancelled, its stream
#: closed, or the write that found the socket gone or stalled past server.send_timeout_s.
_DEPARTURES = (trio.Cancelled, GeneratorExit, trio.BrokenResourceError, trio.ClosedResourceError)


def client_left(exc: BaseException) -> bool:
    """Whether ``exc`` only says the client went away (or the drain cut it), however the
    framework grouped it: that is a departure, never a gateway failure."""
    if isinstance(exc, BaseExceptionGroup):
        return all(client_left(e) for e in exc.exceptions)
    return isinstance(exc, _DEPARTURES)


def departed(gw: Gateway, ex: Exchange) -> None:
    """Mark an exchange cut short by a cancellation: the client left (499, as nginx
    records it), or the drain deadline passed (503 ``shutdown``). Never a 500: alerts page
    on 5xx, and any client can hang up."""
    if gw.grace_expired:
        ex.status, ex.error = 503, "shutdown: the drain deadline passed"
    else:
        ex.status, ex.error = 499, "client disconnected"


async def route(
    gw: Gateway,
    body: dict[str, Any],
    headers: Mapping[str, str],
    signals: Signals | None = None,
    client: ClientKey | None = None,
) -> Decision:
    """Ask the router for a decision; GatewayError for every way it can refuse."""
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    tokens = estimate_tokens(prompt_chars(body))
    envelope = read_envelope(body, headers)
    msg = Decide(
        model=str(body["model"]),
        messages=envelope.body["messages"],
        features=features_of(body, headers, tokens, envelope),
        has_tools=bool(body.get("tools")),
        max_tokens=int(max_tokens),
        profile_header=headers.get("x-router-profile"),
        signals=signals or Signals(),
        client=client,
    )
    try:
        return await gw.router.call(msg, timeout=DECIDE_TIMEOUT_S, patience=PATIENCE_S)
    except Refused as refused:
        raise GatewayError(
            403,
            f"{refused.model} is refused: {refused.refusal.why}",
            "permission_error",
            param="model",
            code=refused.refusal.code,
        ) from None
    except UnknownModel:
        raise unknown_model(clip(str(body["model"])) or "") from None
    except UnknownProfile as exc:
        raise GatewayError(
            404 if str(body["model"]).startswith("auto:") else 400,
            f"no routing profile named {clip(str(exc.args[0]))!r}",
            param="model",
            code="profile_not_found",
        ) from None
    except Rejected as rej:
        raise GatewayError(
            rej.status, rej.message, code=REJECTED_BY_RULE, details={"rule": rej.rule}
        ) from None
    except Overloaded as exc:
        raise GatewayError(
            503,
            f"the gateway is overloaded ({exc}); retry shortly",
            "service_unavailable",
            code="overloaded",
            headers={"Retry-After": "1"},
        ) from None
    except (CallTimeout, ActorCrashed) as exc:
        raise GatewayError(
            503,
            f"the router is unavailable ({exc}); retry shortly",
            "service_unavailable",
            code="router_unavailable",
            headers={"Retry-After": "1"},
        ) from None


def exhausted(
    gw: Gateway,
    what: str,
    code: str,
    lists: dict[str, list[dict[str, str]]],
    hint: str | None = None,
) -> GatewayError:
    """The one answer for "nothing could serve this": ``routing.exhaustion_status`` with
    ``Retry-After``, the message naming every model and why (SDKs show only the message),
    the same lists structured beside it (``attempts``, ``excluded``)."""
    routing = gw.config.routing
    why = [w for items in lists.values() for w in items]
    named = "; ".join(f"{w['model']}: {w['why']}" for w in why) or "no model configured"
    return GatewayError(
        routing.exhaustion_status,
        f"{what}: {named}" + (f"; {hint}" if hint else ""),
        "service_unavailable",
        code=code,
        headers={"Retry-After": str(routing.exhaustion_retry_after_s)},
        details=dict(lists),
    )


def _excluded(decision: Decision) -> list[dict[str, str]]:
    return [{"model": e.model, "why": e.why} for e in decision.excluded]


#: What to change when ``auto`` found no model good enough (the exhaustion message ends so).
AUTO_FIX_HINT = (
    "to serve it anyway: ask for auto:eco (a lower quality floor), set"
    ' routing.fallback_model = "best-local" (the default) with a local model up,'
    " or raise a model's quality"
)


def exhausted_error(gw: Gateway, decision: Decision) -> GatewayError:
    what = f"no model can serve this request now ({decision.reason})"
    hint = AUTO_FIX_HINT if decision.tier == "classifier" else None
    return exhausted(gw, what, "no_candidates", {"excluded": _excluded(decision)}, hint)


async def decide(gw: Gateway, ex: Exchange, headers: Mapping[str, str]) -> Decision:
    """Route the request; under a ``queue`` rule, wait for a candidate to free up."""
    try:
        decision = await route(gw, ex.body, headers, client=ex.key)
    except GatewayError as err:
        if err.code == REJECTED_BY_RULE:
            ex.rejected_by = str(err.details["rule"])
        raise
    if not decision.candidates and decision.queue_s > 0:
        with trio.move_on_after(decision.queue_s):
            while not decision.candidates:
                await trio.sleep(QUEUE_POLL_S)
                decision = await route(gw, ex.body, headers, client=ex.key)
    ex.decision = decision
    if not decision.candidates:
        raise exhausted_error(gw, decision)
    cap = decision.max_tokens_cap
    if cap is not None:
        for key in ("max_tokens", "max_completion_tokens"):
            if key in ex.body:
                ex.body[key] = min(int(ex.body[key]), cap)
        if "max_completion_tokens" not in ex.body:
            ex.body["max_tokens"] = min(int(ex.body.get("max_tokens") or cap), cap)
    return decision


async def open_first(gw: Gateway, ex: Exchange, decision: Decision) -> Opened:
    """Try the candidates in order until one answers; the winner's lease stays held.

    A transient failure is retried once on the same backend (see :mod:`front.retry`);
    every attempt, retries included, ends by the request's ``routing.deadline_s``.
    """
    routing = gw.config.routing
    attempts: list[dict[str, str]] = []
    deadline = ex.started + routing.deadline_s
    for cand in decision.candidates[: routing.max_attempts]:
        tries = 0
        while True:
            budget = deadline - trio.current_time()
            if budget <= 0:
                attempts.append({"model": cand.model.id, "why": "request deadline passed"})
                raise _exhausted(gw, decision, attempts, deadline=True)
            tries += 1
            try:
                opened = await _attempt(gw, ex, cand, budget)
            except _Skipped as skip:
                if isinstance(skip, _OverBudget) and _named_first(gw, ex, decision, cand):
                    raise GatewayError(
                        403,
                        f"{cand.model.id} is refused: {skip}",
                        "permission_error",
                        param="model",
                        code="budget_exceeded",
                    ) from None
                attempts.append({"model": cand.model.id, "why": str(skip)})
                break
            except UpstreamFailure as failure:
                attempts.append({"model": cand.model.id, "why": failure.message})
                wait = retry_same_in(failure, tries, gw.backoff, routing.retry_after_cap_s)
                if wait is None or trio.current_time() + wait >= deadline:
                    break
                await trio.sleep(wait)
                continue
            ex.served_by, ex.ttfb_s = cand, opened.ttfb_s
            key = affinity_key(decision)
            if decision.affinity is not None and key is not None:
                # Before any byte goes out, so the conversation's next turn sees it.
                gw.router.try_cast(Pin(key, cand.model.id))
            ex.ratelimit = ratelimit_headers(opened.response.headers)
            return opened
    raise _exhausted(gw, decision, attempts, deadline=trio.current_time() >= deadline)


class _Skipped(Exception):
    """The candidate was not tried: breaker open, rate-limited or over a budget."""


class _OverBudget(_Skipped):
    """The candidate's worst-case cost does not fit in a budget."""


def _named_first(gw: Gateway, ex: Exchange, decision: Decision, cand: Candidate) -> bool:
    """``cand`` is the model the client named itself: a refusal is a 403, not a swap."""
    named = gw.catalog.by_name.get(str(ex.requested_model))
    return decision.tier == "explicit" and named is not None and named.id == cand.model.id


async def _attempt(gw: Gateway, ex: Exchange, cand: Candidate, budget_s: float) -> Opened:
    """One try on one candidate; the lease (and budget hold) is kept on success, given
    back on failure."""
    why = await _reserve(gw, cand, ex)
    if why is not None:
        raise _Skipped(why)
    backend = cand.backend
    limits = gw.config.upstream_limits
    stream = bool(ex.body.get("stream"))
    tap = StreamTap(client_wants_usage(ex.body), limits.event_bytes, cand.model) if stream else None
    client = gw.clients.get(backend.name)
    body, ex.output_cap = _capped(ex.body, cand)
    body = thinking_for(body, backend.kind, cand.model.reasoning)
    try:
        body, ex.hold = await _hold_budget(gw, ex, cand, body)
    except _Skipped:
        await _outcome(gw, ex, cand, None)
        raise
    try:
        return await open_answer(
            client,
            backend,
            wire_for(backend.kind),
            body,
            cand.model.upstream_name,
            tap,
            budget_s,
            limits,
        )
    except UpstreamFailure as failure:
        await _release_hold(gw, ex)
        await _after_failure(gw, ex, cand, failure)
        if failure.client_fault:
            raise GatewayError(
                failure.status or 400, failure.message, code="upstream_rejected"
            ) from None
        raise
    except BaseException:
        await _release_hold(gw, ex)
        await _outcome(gw, ex, cand, None)
        raise


async def _hold_budget(
    gw: Gateway, ex: Exchange, cand: Candidate, body: dict[str, Any]
) -> tuple[dict[str, Any], int | None]:
    """A metered call under any budget holds its worst case first (all budgets in one
    ledger step); its body then asks for no more output than was held for."""
    config = budget_in_force(gw.config.budget, gw.settings.value)
    budgets = budgets_for(config, ex.key, ex.task_type) if cand.metered else ()
    if not budgets:
        return body, None
    asked = max((int(body[k]) for k in _LIMIT_KEYS if body.get(k)), default=0)
    output = output_bound(cand.model, asked, config)
    if not asked:
        body = {**body, "max_tokens": output}
    usd = worst_case_usd(cand.model, body, output)
    try:
        hold = await gw.ledger.call(
            Reserve(budgets, usd), timeout=LEASE_TIMEOUT_S, patience=PATIENCE_S
        )
    except OverBudget as exc:
        raise _OverBudget(f"budget exceeded: {exc}") from None
    except (CallTimeout, ActorCrashed) as exc:
        # Money is at stake: without the ledger's word, a metered call does not go out.
        raise _Skipped(f"budget ledger unavailable ({exc})") from None
    return body, hold


async def _release_hold(gw: Gateway, ex: Exchange) -> None:
    if ex.hold is not None:
        await _settle_hold(gw, ex, 0.0)


_LIMIT_KEYS = ("max_tokens", "max_completion_tokens")


def _capped(body: dict[str, Any], cand: Candidate) -> tuple[dict[str, Any], int | None]:
    """The body for this candidate, its output limit cut to the room its context leaves."""
    asked = max((int(body[k]) for k in _LIMIT_KEYS if body.get(k)), default=0)
    cap = output_cap(cand.model, estimate_tokens(prompt_chars(body)), asked)
    if cap is None:
        return body, None
    return {**body, **{k: cap for k in _LIMIT_KEYS if body.get(k)}}, cap


async def _reserve(gw: Gateway, cand: Candidate, ex: Exchange) -> str | None:
    """Take a breaker permit and rate-limit tokens; the reason if this candidate is out."""
    backend = cand.backend
    try:
        lease = Lease(backend.name, cand.model.id)
        grant = await gw.pool.call(lease, timeout=LEASE_TIMEOUT_S, patience=PATIENCE_S)
    except (CallTimeout, ActorCrashed) as exc:
        return f"backend pool unavailable ({exc})"
    if grant is None:
        return f"circuit breaker open for {backend.name} or {cand.model.id}"
    ex.grant = grant
    model = cand.model
    if backend.rpm or backend.tpm or model.rpm or model.tpm:
        tokens = estimate_tokens(prompt_chars(ex.body))
        scopes = (backend.name, model_scope(model.id))
        try:
            acquire = Acquire(scopes, tokens)
            wait = await gw.limits.call(acquire, timeout=LEASE_TIMEOUT_S, patience=PATIENCE_S)
        except (CallTimeout, ActorCrashed):
            wait = 0.0
        except BaseException:
            await _outcome(gw, ex, cand, None)  # the lease is ours now: give it back
            raise
        if wait > 0:
            await _outcome(gw, ex, cand, None)
            return f"rate-limited on {backend.name}/{model.id} for {wait:.1f}s"
    return None


def _scopes(ex: Exchange, cand: Candidate) -> tuple[str, ...]:
    """Where usage counts: the backend (first: quotas are per account), model, client."""
    scopes = (cand.backend.name, model_scope(cand.model.id))
    return scopes + ((client_scope(ex.client_name),) if ex.client_name else ())


async def _outcome(
    gw: Gateway,
    ex: Exchange,
    cand: Candidate,
    ok: bool | None,
    latency_s: float = 0.0,
    ttfb_s: float | None = None,
    model_only: bool = False,
) -> None:
    out = Outcome(
        cand.backend.name,
        cand.model.id,
        ok,
        latency_s * 1000,
        None if ttfb_s is None else ttfb_s * 1000,
        model_only,
        ex.grant,
    )
    with trio.CancelScope(shield=True):
        await gw.pool.cast(out)


async def _after_failure(
    gw: Gateway, ex: Exchange, cand: Candidate, failure: UpstreamFailure
) -> None:
    # A request the client got wrong says nothing about the backend's health; a model
    # the backend does not serve (404) says something about that model only.
    await _outcome(
        gw, ex, cand, None if failure.client_fault else False, model_only=failure.status == 404
    )
    if failure.status is not None:
        retry = parse_retry_after(failure.retry_after)
        scopes = (cand.backend.name, model_scope(cand.model.id))
        gw.limits.try_cast(Report(scopes, failure.status, retry, headers=failure.headers))
    if failure.connect:
        gw.health.try_cast(ProbeNow(cand.backend.name))


def _exhausted(
    gw: Gateway, decision: Decision, attempts: list[dict[str, str]], deadline: bool
) -> GatewayError:
    if deadline:
        what, code = "the request deadline passed before any model answered", "deadline_exceeded"
    else:
        what, code = "every candidate failed upstream", "upstream_failed"
    return exhausted(gw, what, code, {"attempts": attempts, "excluded": _excluded(decision)})


async def finish_once(gw: Gateway, ex: Exchange, opened: Opened) -> bytes:
    """A non-streamed answer: already read whole; note usage and give the lease back."""
    assert ex.served_by is not None
    await opened.close()
    try:
        payload = json.loads(opened.first)
    except ValueError:
        payload = None
    usage = usage_of(payload) if isinstance(payload, dict) else None
    if usage is None:
        answered = content_chars(payload) if isinstance(payload, dict) else len(opened.first)
        usage = Usage(estimate_tokens(prompt_chars(ex.body)), estimate_tokens(answered), True)
    ex.usage = usage
    await _settle(gw, ex, True)
    if isinstance(payload, dict) and isinstance(payload.get("usage"), dict):
        payload["usage"]["cost"] = round(ex.cost_usd, 8)
        return json.dumps(payload).encode()
    return opened.first


async def _settle(gw: Gateway, ex: Exchange, verdict: bool | None) -> None:
    assert ex.served_by is not None
    cand = ex.served_by
    await _outcome(gw, ex, cand, verdict, trio.current_time() - ex.started, ex.ttfb_s)
    total = ex.usage.prompt_tokens + ex.usage.completion_tokens if ex.usage else 0
    gw.limits.try_cast(Report(_scopes(ex, cand), 200, tokens=total, headers=ex.ratelimit))


async def stream_answer(gw: Gateway, ex: Exchange, opened: Opened) -> AsyncIterator[bytes]:
    """Relay a stream; on a failure after the first byte, end it with an error event.

    The stream is also cut, with an error event, when it has lasted
    ``routing.max_stream_s`` or when the drain's grace period is over; and without one
    (the connection closes) when the client takes nothing for the backend's ``idle_s``.
    """
    assert opened.tap is not None and ex.served_by is not None
    # A client that stops reading for the backend's idle_s is cut as a silent backend is.
    set_send_timeout(ex.served_by.backend.idle_s)
    verdict: bool | None = None  # None: the client left, which says nothing of the upstream
    told_draining = False
    chunks = relay_chunks(opened, ex.served_by.backend.idle_s)
    deadline = ex.started + gw.config.routing.max_stream_s
    try:
        yield opened.first
        while True:
            with gw.relay_scope(deadline) as scope:
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    verdict = True
                    break
            if scope.cancelled_caught:
                yield _cut(gw, ex)
                break
            yield chunk
            if gw.draining and not told_draining:
                told_draining = True
                yield b": llmswitch is draining; this stream will finish\n\n"
    except UpstreamFailure as failure:
        verdict = False
        ex.status = 504 if failure.timeout else 502
        ex.error = f"after first byte: {failure.message}"
        if not failure.announced:
            yield sse_error(
                f"the upstream failed mid-stream: {failure.message}", code="upstream_cut"
            )
    except BaseException as exc:
        if client_left(exc):
            departed(gw, ex)
        else:
            ex.status, ex.error = 500, f"gateway error: {type(exc).__name__}"
        raise
    finally:
        await opened.close()
        ex.usage = opened.tap.final_usage(prompt_chars(ex.body))
        await _settle(gw, ex, verdict)
        await record(gw, ex)


def _cut(gw: Gateway, ex: Exchange) -> bytes:
    """The error event ending a stream the gateway cut; the exchange notes why."""
    if gw.grace_expired:
        departed(gw, ex)
        return sse_error(
            "the gateway is shutting down; this stream was cut", "server_error", code="shutdown"
        )
    limit = gw.config.routing.max_stream_s
    ex.status, ex.error = 504, f"stream cut at routing.max_stream_s ({limit:g}s)"
    return sse_error(
        f"the stream reached the gateway's limit of {limit:g}s", "server_error", "stream_too_long"
    )


async def record_refusal(gw: Gateway, client: str, err: GatewayError) -> None:
    """The ledger row of a request refused before it was read (no key, foreign Host...)."""
    ex = Exchange(gw.new_request_id(), client, status=err.status, error=err.message)
    await record(gw, ex)


async def admit_client(gw: Gateway, ex: Exchange, client: ClientKey | None) -> None:
    """Apply the client key's rate limits (429 when over)."""
    if client is None:
        return
    ex.client_name = ex.client = client.name
    ex.key = client
    policy = client.policy
    if not (policy.rpm or policy.tpm):
        return
    tokens = estimate_tokens(prompt_chars(ex.body))
    scope = client_scope(client.name)
    acquire = Acquire((scope,), tokens, limits={scope: (policy.rpm, policy.tpm)})
    try:
        wait = await gw.limits.call(acquire, timeout=LEASE_TIMEOUT_S, patience=PATIENCE_S)
    except (CallTimeout, ActorCrashed):
        return
    if wait > 0:
        raise GatewayError(
            429,
            f"client {client.name} is over its rate limit; retry in {wait:.1f}s",
            "rate_limit_error",
            code="client_rate_limited",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
