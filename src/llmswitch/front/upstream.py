"""One attempt at one upstream: open it, and fail cleanly before the client sees a byte.

An attempt either returns an :class:`Opened` answer (for a stream: the response is open
and its first whole event has arrived) or raises :class:`UpstreamFailure`, which says
whether the failure is the client's (relay it) or the upstream's (try the next model).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from llmswitch.config import BackendConfig
from llmswitch.providers.openai import CHAT_PATH, StreamTap, upstream_body

# Statuses that are the client's own fault: relayed as they are, never failed over.
CLIENT_FAULT = frozenset({400, 413, 422})


@dataclass
class UpstreamFailure(Exception):
    message: str
    status: int | None = None
    timeout: bool = False
    connect: bool = False
    retry_after: str | None = None
    body: bytes = b""

    @property
    def client_fault(self) -> bool:
        return self.status in CLIENT_FAULT

    def __str__(self) -> str:
        return self.message


@dataclass(eq=False)
class Opened:
    response: httpx.Response
    first: bytes
    ttfb_s: float
    tap: StreamTap | None = None
    chunks: AsyncIterator[bytes] | None = None

    async def close(self) -> None:
        """Close the upstream response even while being cancelled (frees its pool slot)."""
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self.response.aclose()


def _error_message(status: int, body: bytes) -> str:
    try:
        err = json.loads(body).get("error")
        detail = err.get("message") if isinstance(err, dict) else err
    except (ValueError, AttributeError):
        detail = None
    text = str(detail) if detail else body[:200].decode("utf-8", "replace").strip()
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


def _transport_failure(exc: httpx.HTTPError) -> UpstreamFailure:
    name = type(exc).__name__
    return UpstreamFailure(
        f"{name}: {exc}" if str(exc) else name,
        timeout=isinstance(exc, httpx.TimeoutException),
        connect=isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout),
    )


async def open_answer(
    client: httpx.AsyncClient,
    backend: BackendConfig,
    body: dict[str, Any],
    upstream_model: str,
    tap: StreamTap | None,
) -> Opened:
    """Send ``body`` upstream; for a stream (``tap`` given) wait for its first event."""
    started = trio.current_time()
    request = client.build_request("POST", CHAT_PATH, json=upstream_body(body, upstream_model))
    deadline = backend.first_byte_s if tap is not None else backend.total_s
    response: httpx.Response | None = None
    try:
        with trio.fail_after(deadline):
            response = await client.send(request, stream=True)
            if response.status_code >= 400:
                raw = await response.aread()
                raise UpstreamFailure(
                    _error_message(response.status_code, raw),
                    status=response.status_code,
                    retry_after=response.headers.get("retry-after"),
                    body=raw,
                )
            if tap is None:
                first = await response.aread()
                return Opened(response, first, trio.current_time() - started)
            chunks = response.aiter_raw()
            first = b""
            while not first:
                chunk = await _next_chunk(chunks)
                if chunk is None:
                    raise UpstreamFailure("upstream closed the stream before any event")
                first = tap.feed(chunk)
            return Opened(response, first, trio.current_time() - started, tap, chunks)
    except trio.TooSlowError:
        await _close(response)
        what = "first byte" if tap is not None else "answer"
        raise UpstreamFailure(f"no {what} within {deadline:g}s", timeout=True) from None
    except httpx.HTTPError as exc:
        await _close(response)
        raise _transport_failure(exc) from None
    except BaseException:
        await _close(response)
        raise


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return None


async def _close(response: httpx.Response | None) -> None:
    if response is not None:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await response.aclose()


async def relay_chunks(opened: Opened, idle_s: float) -> AsyncIterator[bytes]:
    """The rest of a stream as whole events; raises UpstreamFailure on a stall or a cut."""
    assert opened.chunks is not None and opened.tap is not None
    try:
        while True:
            with trio.fail_after(idle_s):
                raw = await _next_chunk(opened.chunks)
            if raw is None:
                break
            out = opened.tap.feed(raw)
            if out:
                yield out
    except trio.TooSlowError:
        raise UpstreamFailure(
            f"upstream stalled for {idle_s:g}s mid-stream", timeout=True
        ) from None
    except httpx.HTTPError as exc:
        raise _transport_failure(exc) from None
    if not opened.tap.done:
        raise UpstreamFailure("upstream ended the stream without [DONE]")
