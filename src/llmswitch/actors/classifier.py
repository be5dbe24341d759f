"""Classifier actor: how hard is this request, and what kind of task is it?

Always runs the in-process classifier first (well under a millisecond): the shipped learned
model, or the heuristic when the weights chose it or cannot be read (routing/
classify_learned.py). With ``routing.classifier = "model"`` it then asks a small model
(``routing.classifier_model``) for a better answer, within ``routing.classifier_timeout_s``,
and remembers answers in an LRU cache. Every way the model can fail (timeout, HTTP error,
transport error, an answer that is not the JSON asked for, too many calls at once, a model
that keeps failing) ends in the in-process answer, counted by reason.

Model calls run in tasks of their own, so one slow call never holds up the mailbox: the
actor takes the next request while earlier ones wait for the model. The router falls back
to the same in-process classifier inline when this actor is down, so a crash here never
fails a request.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import trio

from llmswitch.actors.pool import Clients
from llmswitch.actors.reconfigure import Reconfigure
from llmswitch.config import BackendConfig, Config
from llmswitch.providers.bounded import read_capped
from llmswitch.providers.common import UpstreamOverLimit
from llmswitch.providers.openai import CHAT_PATH
from llmswitch.routing.classify import Classification, TaskType
from llmswitch.routing.classify_learned import classify_request
from llmswitch.routing.classify_prompt import (
    Verdict,
    build_messages,
    cache_key,
    merge,
    parse_verdict,
    structural_task,
)
from llmswitch.routing.performance import ewma
from llmswitch.runtime.actor import Actor
from llmswitch.runtime.closing import aclose_shielded
from llmswitch.runtime.mailbox import Request

log = logging.getLogger(__name__)

#: Model calls in flight at once; a request beyond that gets the heuristic at once.
MAX_MODEL_CALLS: Final = 8
#: Consecutive model failures after which the model is left alone for PAUSE_S ...
FAILURES_TO_PAUSE: Final = 3
#: ... after which a single call tries it again (another failure pauses it again).
PAUSE_S: Final = 15.0
#: A classification answer is a few dozen tokens; a longer body is not one.
MAX_ANSWER_BYTES: Final = 64_000
MAX_TOKENS: Final = 100

# Fallback reasons that say the model is unwell (and count towards a pause).
_MODEL_FAULTS: Final = frozenset(
    {"timeout", "http_error", "transport_error", "bad_answer", "error"}
)


def classify_or_default(
    messages: Sequence[Mapping[str, Any]], *, has_tools: bool = False
) -> Classification:
    """The in-process classification, or "medium" when it fails on some odd input.

    A request must never crash the classifier: a prompt that did so every time could
    exhaust the supervisor's restart intensity and take the whole gateway down.
    """
    try:
        return classify_request(messages, has_tools=has_tools)
    except Exception as exc:
        log.exception("classifier failed; defaulting to medium")
        return Classification(
            "medium",
            0.0,
            "conversation",
            0,
            reason=f"classifier error: {type(exc).__name__}",
            needs_tools=has_tools,
        )


@dataclass(eq=False)
class Classify(Request[Classification]):
    messages: Sequence[Mapping[str, Any]]
    has_tools: bool = False


ClassifierMsg = Classify | Reconfigure


@dataclass(frozen=True)
class _Target:
    """The classifier model, resolved to where and under what name to ask it."""

    model: str
    upstream: str
    backend: BackendConfig
    client: httpx.AsyncClient


class _ModelFailure(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _resolve(config: Config | None, clients: Clients | None) -> tuple[_Target | None, str | None]:
    """The model to ask, or None and (when model mode was asked for) why not."""
    if config is None or config.routing.classifier != "model":
        return None, None
    name = config.routing.classifier_model
    if name is None:
        return None, "routing.classifier_model is not set"
    model = next((m for m in config.models if name == m.id or name in m.aliases), None)
    if model is None:
        return None, f"no model named {name!r}"
    client = clients.by_backend.get(model.backend) if clients is not None else None
    if client is None:
        return None, f"no HTTP client for backend {model.backend!r}"
    return _Target(model.id, model.upstream_name, config.backend(model.backend), client), None


async def _fetch(client: httpx.AsyncClient, body: dict[str, Any]) -> bytes:
    """POST ``body`` to the chat endpoint and read the answer, closing it even if cancelled."""
    request = client.build_request("POST", CHAT_PATH, json=body)
    response: httpx.Response | None = None
    try:
        response = await client.send(request, stream=True)
        if response.status_code >= 400:
            raise _ModelFailure("http_error", f"HTTP {response.status_code}")
        return await read_capped(response, MAX_ANSWER_BYTES)
    except UpstreamOverLimit:
        raise _ModelFailure("bad_answer", f"answer longer than {MAX_ANSWER_BYTES} bytes") from None
    except httpx.HTTPError as exc:
        raise _ModelFailure("transport_error", type(exc).__name__) from None
    finally:
        if response is not None:
            # A cancelled request must still give its connection back to the pool.
            await aclose_shielded(response)


def _answer_text(raw: bytes) -> str:
    """The assistant's text in an OpenAI chat completion body."""
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, LookupError, TypeError):
        raise _ModelFailure("bad_answer", "not a chat completion") from None
    if not isinstance(content, str):
        raise _ModelFailure("bad_answer", "no text in the answer")
    return content


class ClassifierActor(Actor[ClassifierMsg]):
    """``ClassifierActor()`` is heuristic only; give it config and clients for model mode."""

    name = "classifier"

    def __init__(
        self,
        config: Config | None = None,
        clients: Clients | None = None,
        *,
        max_model_calls: int = MAX_MODEL_CALLS,
    ) -> None:
        self._clients = clients
        self._target: _Target | None = None
        self._cache: OrderedDict[str, Verdict] = OrderedDict()
        self._reconfigure(config)
        self._max_calls = max_model_calls
        self._nursery: trio.Nursery | None = None
        self._in_flight = 0
        self._failures = 0  # consecutive model faults
        self._paused_until = -math.inf
        self._count: Counter[str] = Counter()
        self._sources: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()
        self._model_calls = 0
        self._cache_hits = 0
        self._latency_ms: float | None = None
        self._last_error: str | None = None

    def _reconfigure(self, config: Config | None) -> None:
        """The model to ask and its limits, from the config at start or a reload; a new
        target starts with an empty cache (the cache's answers were another model's)."""
        target, self._problem = _resolve(config, self._clients)
        if self._problem:
            log.warning("classifier model unavailable, using the heuristic: %s", self._problem)
        if target != self._target:
            self._cache = OrderedDict()
        self._target = target
        routing = config.routing if config is not None else None
        self._timeout_s = routing.classifier_timeout_s if routing else 1.5
        self._cache_size = routing.classifier_cache_size if routing else 0

    @property
    def mode(self) -> str:
        return "model" if self._target is not None else "heuristic"

    async def background(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    async def handle(self, msg: ClassifierMsg) -> None:
        if isinstance(msg, Reconfigure):
            self._reconfigure(msg.config)
            msg.reply.set(None)
            return
        heuristic = classify_or_default(msg.messages, has_tools=msg.has_tools)
        target, nursery = self._target, self._nursery
        if target is None or nursery is None:
            self._reply(msg, heuristic, "heuristic")
            return
        try:
            key = cache_key(msg.messages, msg.has_tools)
            forced = structural_task(msg.messages)
        except Exception as exc:  # odd input must not crash the actor
            log.exception("classifier could not read the request for the model")
            self._fallback(msg, heuristic, "error", type(exc).__name__)
            return
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self._cache_hits += 1
            self._reply(msg, merge(cached, heuristic, forced_task=forced), "cache")
            return
        skip = self._skip_reason(target, heuristic)
        if skip is not None:
            self._fallback(msg, heuristic, skip, "")
            return
        self._in_flight += 1
        nursery.start_soon(self._ask, target, msg, heuristic, key, forced)

    def _skip_reason(self, target: _Target, heuristic: Classification) -> str | None:
        if heuristic.sensitive and target.backend.locality == "cloud":
            return "sensitive"  # a sensitive prompt is not sent to a cloud model, not even this
        if self._failures >= FAILURES_TO_PAUSE and (
            trio.current_time() < self._paused_until or self._in_flight > 0
        ):
            return "paused"  # paused, or one call is already finding out whether it is back
        if self._in_flight >= self._max_calls:
            return "busy"
        return None

    async def _ask(
        self,
        target: _Target,
        msg: Classify,
        heuristic: Classification,
        key: str,
        forced: TaskType | None,
    ) -> None:
        result, source = heuristic, "heuristic"
        try:
            verdict = await self._call_model(target, msg)
        except _ModelFailure as failure:
            self._note_failure(failure.reason, failure.detail)
            source = "fallback"
        except Exception as exc:
            log.exception("classifier model call failed")
            self._note_failure("error", type(exc).__name__)
            source = "fallback"
        else:
            self._failures = 0
            self._remember(key, verdict)
            result, source = merge(verdict, heuristic, forced_task=forced), "model"
        finally:
            # Also on cancellation (the actor stopping): the caller gets the heuristic now.
            self._in_flight -= 1
            self._reply(msg, result, source)

    async def _call_model(self, target: _Target, msg: Classify) -> Verdict:
        body = {
            "model": target.upstream,
            "messages": build_messages(msg.messages, has_tools=msg.has_tools),
            "temperature": 0,
            "max_tokens": MAX_TOKENS,
            "stream": False,
        }
        self._model_calls += 1
        started = trio.current_time()
        with trio.move_on_after(self._timeout_s):
            raw = await _fetch(target.client, body)
            latency_ms = (trio.current_time() - started) * 1000
            self._latency_ms = ewma(self._latency_ms, latency_ms)
            verdict = parse_verdict(_answer_text(raw))
            if verdict is None:
                raise _ModelFailure("bad_answer", "no valid classification JSON")
            return verdict
        raise _ModelFailure("timeout", f"no answer within {self._timeout_s:g}s")

    def _remember(self, key: str, verdict: Verdict) -> None:
        if self._cache_size <= 0:
            return
        self._cache[key] = verdict
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _note_failure(self, reason: str, detail: str) -> None:
        self._fallbacks[reason] += 1
        self._last_error = f"{reason}: {detail}" if detail else reason
        if reason not in _MODEL_FAULTS:
            return
        self._failures += 1
        if self._failures >= FAILURES_TO_PAUSE:
            if trio.current_time() >= self._paused_until:
                log.warning(
                    "classifier model failed %d times in a row (%s); pausing it for %gs",
                    self._failures,
                    self._last_error,
                    PAUSE_S,
                )
            self._paused_until = trio.current_time() + PAUSE_S

    def _fallback(self, msg: Classify, heuristic: Classification, reason: str, detail: str) -> None:
        self._fallbacks[reason] += 1
        if detail:
            self._last_error = f"{reason}: {detail}"
        self._reply(msg, heuristic, "fallback")

    def _reply(self, msg: Classify, result: Classification, source: str) -> None:
        self._count[result.complexity] += 1
        self._sources[source] += 1
        msg.reply.set(result)

    def summary(self) -> Mapping[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "classified": dict(self._count)}
        if self._problem:
            out["model_problem"] = self._problem
        if self._target is None:
            return out
        now = trio.current_time()
        paused = self._failures >= FAILURES_TO_PAUSE and now < self._paused_until
        return out | {
            "model": self._target.model,
            "answered_by": dict(self._sources),
            "model_calls": self._model_calls,
            "in_flight": self._in_flight,
            "cache_hits": self._cache_hits,
            "cache_entries": len(self._cache),
            "cache_size": self._cache_size,
            "fallbacks": dict(self._fallbacks),
            "timeout_s": self._timeout_s,
            "model_latency_ms": None if self._latency_ms is None else round(self._latency_ms, 1),
            "paused_for_s": round(self._paused_until - now, 1) if paused else None,
            "last_error": self._last_error,
        }
