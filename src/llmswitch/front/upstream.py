"""One attempt at one upstream: open it, and fail cleanly before the client sees a byte.

An attempt either returns an :class:`Opened` answer (for a stream: the response is open
and its first whole event has arrived) or raises :class:`UpstreamFailure`, which says
whether the failure is the client's (relay it) or the upstream's (try the next model).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from llmswitch.actors.limits import ratelimit_headers
from llmswitch.config import DEFAULT_UPSTREAM_LIMITS, BackendConfig, UpstreamLimits
from llmswitch.providers.bounded import read_capped
from llmswitch.providers.common import UpstreamFormatError, UpstreamOverLimit
from llmswitch.providers.openai import StreamTap
from llmswitch.providers.scrub import Scrubber
from llmswitch.providers.wire import Translator, Wire
from llmswitch.runtime.closing import aclose_shielded


@dataclass
class UpstreamFailure(Exception):
    message: str
    status: int | None = None
    timeout: bool = False
    connect: bool = False
    retry_after: str | None = None
    #: The connection broke before any response byte (a stale pooled connection, a reset).
    reset: bool = False
    body: bytes = b""
    #: The request itself is at fault (the provider said so): relay, do not fail over.
    client_fault: bool = False
    #: The provider's x-ratelimit-* headers, for the limits tracker.
    headers: dict[str, str] = field(default_factory=dict)
    #: The client was already sent this failure, as the provider's own error event.
    announced: bool = False

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False)
class Opened:
    response: httpx.Response
    first: bytes
    ttfb_s: float
    #: Masks the backend's key in everything made from this answer.
    scrub: Scrubber
    tap: StreamTap | None = None
    chunks: AsyncIterator[bytes] | None = None
    translator: Translator | None = None

    async def close(self) -> None:
        """Close the upstream response even while being cancelled (frees its pool slot)."""
        await aclose_shielded(self.response)


def _transport_failure(exc: httpx.HTTPError, scrub: Scrubber) -> UpstreamFailure:
    name = type(exc).__name__
    return UpstreamFailure(
        scrub.text(f"{name}: {exc}") if str(exc) else name,
        timeout=isinstance(exc, httpx.TimeoutException),
        connect=isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout),
        reset=isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError),
    )


async def open_answer(
    client: httpx.AsyncClient,
    backend: BackendConfig,
    wire: Wire,
    body: dict[str, Any],
    upstream_model: str,
    tap: StreamTap | None,
    budget_s: float = float("inf"),
    limits: UpstreamLimits = DEFAULT_UPSTREAM_LIMITS,
) -> Opened:
    """Send ``body`` upstream; for a stream (``tap`` given) wait for its first event.

    Whatever the provider's format, what comes back is OpenAI: JSON for a whole answer,
    SSE (through ``wire``'s translator, then ``tap``) for a stream. A redirect, an answer
    that is not the wire's format and anything over ``limits`` are upstream failures.
    """
    started = trio.current_time()
    scrub = Scrubber(backend.api_key())
    try:
        call = wire.call(body, upstream_model)
    except ValueError as exc:
        # This wire cannot carry something in the request (audio to Anthropic, say):
        # another candidate may.
        raise UpstreamFailure(f"{backend.kind} backend cannot take this request: {exc}") from None
    request = client.build_request(
        "POST", call.path, json=call.body, headers=call.headers, params=call.params or None
    )
    deadline = min(backend.first_token_s if tap is not None else backend.total_s, budget_s)
    response: httpx.Response | None = None
    try:
        with trio.fail_after(deadline):
            response = await client.send(request, stream=True)
            if response.status_code >= 300:
                raise await _refusal(response, wire, scrub, limits.error_bytes)
            if tap is None:
                raw = await read_capped(response, limits.answer_bytes)
                answer = scrub.data(wire.answer(raw, upstream_model))
                return Opened(response, answer, trio.current_time() - started, scrub)
            chunks = response.aiter_raw()
            translator = wire.translator(upstream_model, limits.event_bytes)
            first = b""
            while not first:
                chunk = await _next_chunk(chunks)
                if chunk is None:
                    first = tap.feed(translator.close())
                    if not first:
                        raise UpstreamFailure("upstream closed the stream before any event")
                    break
                first = tap.feed(translator.feed(chunk))
            if translator.error is not None:
                # The provider failed before any of its answer went out: another may not.
                raise UpstreamFailure(f"upstream error event: {scrub.text(translator.error)}")
            elapsed = trio.current_time() - started
            return Opened(response, scrub.data(first), elapsed, scrub, tap, chunks, translator)
    except trio.TooSlowError:
        await _close(response)
        what = "first byte" if tap is not None else "answer"
        raise UpstreamFailure(f"no {what} within {deadline:g}s", timeout=True) from None
    except httpx.HTTPError as exc:
        await _close(response)
        raise _transport_failure(exc, scrub) from None
    except UpstreamFormatError as exc:
        await _close(response)
        raise UpstreamFailure(f"unreadable answer from upstream: {exc}") from None
    except BaseException:
        await _close(response)
        raise


async def _refusal(
    response: httpx.Response, wire: Wire, scrub: Scrubber, limit: int
) -> UpstreamFailure:
    """The failure a redirect or an error answer stands for, its message scrubbed."""
    status = response.status_code
    if status < 400:
        # Redirects are not followed: the upstream's base URL is the operator's to fix.
        return UpstreamFailure(f"HTTP {status}: the upstream redirected", status=status)
    try:
        raw = await read_capped(response, limit)
    except UpstreamOverLimit as exc:
        return UpstreamFailure(f"HTTP {status}: {exc}", status=status)
    return UpstreamFailure(
        scrub.text(wire.error_message(status, raw)),
        status=status,
        retry_after=response.headers.get("retry-after") or wire.retry_after(raw),
        body=raw,
        client_fault=not wire.retryable(status, raw),
        headers=ratelimit_headers(response.headers),
    )


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


async def _close(response: httpx.Response | None) -> None:
    if response is not None:
        await aclose_shielded(response)


async def relay_chunks(opened: Opened, idle_s: float) -> AsyncIterator[bytes]:
    """The rest of a stream as whole events; raises UpstreamFailure on a stall or a cut."""
    assert opened.chunks is not None and opened.tap is not None
    assert opened.translator is not None
    scrub = opened.scrub
    try:
        while True:
            with trio.fail_after(idle_s):
                raw = await _next_chunk(opened.chunks)
            out = opened.tap.feed(
                opened.translator.close() if raw is None else opened.translator.feed(raw)
            )
            if out:
                yield scrub.data(out)
            if opened.translator.error is not None:
                raise UpstreamFailure(
                    f"upstream error event: {scrub.text(opened.translator.error)}",
                    announced=True,
                )
            if raw is None:
                break
    except trio.TooSlowError:
        raise UpstreamFailure(
            f"upstream stalled for {idle_s:g}s mid-stream", timeout=True
        ) from None
    except httpx.HTTPError as exc:
        raise _transport_failure(exc, scrub) from None
    except UpstreamFormatError as exc:
        raise UpstreamFailure(f"unreadable stream from upstream: {exc}") from None
    if not opened.tap.done:
        raise UpstreamFailure("upstream ended the stream without [DONE]")
