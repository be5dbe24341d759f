"""When and in what pieces an answer goes out: ttft_s / tokens_per_s, cut_after, stall_after.

Shared by every wire format so the simulated timing and faults mean the same whatever
API a test speaks; the apps only encode the bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from .asgi import JSON_TYPE, Headers, dumps, end_stream, send_json, send_piece, start_stream
from .backend import SimBackend
from .exchange import Exchange
from .knobs import ModelKnobs
from .reply import ReplyPlan


async def send_complete(
    backend: SimBackend,
    exchange: Exchange,
    knobs: ModelKnobs,
    plan: ReplyPlan,
    body: Any,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    events: int | None = None,
) -> None:
    """A non-stream answer, sent when its last token would have been generated.

    With cut_after at or below its event count (default: the plan's pieces) the full
    length is announced, half the body sent, and the connection dropped.
    """
    delay = knobs.ttft_s
    if knobs.tokens_per_s > 0 and len(plan.pieces) > 1:
        delay += (len(plan.pieces) - 1) / knobs.tokens_per_s
    if delay > 0:
        await trio.sleep(delay)
    await backend.wait_while_held()
    total = len(plan.pieces) if events is None else events
    if knobs.cut_after is None or knobs.cut_after > total:
        await send_json(exchange.send, 200, body, headers)
        return
    data = dumps(body)
    backend.stats.faults["cut"] += 1
    length = (b"content-length", str(len(data)).encode())
    await start_stream(exchange.send, 200, JSON_TYPE, [length, *headers])
    await send_piece(exchange.send, data[: len(data) // 2])
    # Returning without more_body=False makes hypercorn close the socket mid-body.


@dataclass(frozen=True, slots=True)
class StreamCut:
    """How many events of a stream go out, and what happens after them."""

    count: int
    cut: bool  # drop the connection (no closing events)
    stall: bool  # keep the connection open, sending nothing more

    @property
    def finishes(self) -> bool:
        return not self.cut and not self.stall


def stream_cut(knobs: ModelKnobs, total: int) -> StreamCut:
    """Apply cut_after and stall_after to *total* events.

    An answer with fewer events than cut_after is not cut; a stall at or before the cut
    point wins.
    """
    cut_after = knobs.cut_after
    cut = cut_after is not None and cut_after <= total
    count = cut_after if cut_after is not None and cut else total
    stall_after = knobs.stall_after
    if stall_after is not None and stall_after <= count:
        return StreamCut(stall_after, cut=False, stall=True)
    return StreamCut(count, cut=cut, stall=False)


@dataclass(frozen=True, slots=True)
class EncodedStream:
    """A stream's bytes in one wire format, its events already cut to StreamCut.count."""

    content_type: bytes
    events: list[bytes]
    tail: bytes = b""  # closes a finished stream
    head: bytes = b""  # goes out with the first event (alone when there is none)
    headers: Headers = field(default_factory=list)
    tail_with_last: bool = False  # paced: the last event and the tail in one write


async def send_stream(
    backend: SimBackend,
    exchange: Exchange,
    knobs: ModelKnobs,
    shape: StreamCut,
    stream: EncodedStream,
) -> None:
    """Send *stream* paced by ttft_s / tokens_per_s, ending as *shape* says."""
    stats = backend.stats
    started = trio.current_time()
    await start_stream(
        exchange.send,
        200,
        stream.content_type,
        [(b"cache-control", b"no-cache"), *stream.headers],
    )
    stats.open_streams += 1
    stream_open = True
    backend.notify()
    try:
        events = stream.events
        first_at = started + knobs.ttft_s
        tps = knobs.tokens_per_s
        pending = b""
        if first_at > trio.current_time():
            await trio.sleep_until(first_at)
        if tps > 0:
            # Paced: one write per event, on an absolute schedule (no drift).
            last = len(events) - 1
            for index, event in enumerate(events):
                if index == 1:
                    first_at += await backend.wait_while_held()
                due = first_at + index / tps
                if due > trio.current_time():
                    await trio.sleep_until(due)
                data = stream.head + event if index == 0 else event
                if stream.tail_with_last and shape.finishes and index == last:
                    stream_open = False
                    stats.open_streams -= 1
                    await end_stream(exchange.send, data + stream.tail)
                    return
                await send_piece(exchange.send, data)
            if not events and not shape.cut:
                pending = stream.head
        elif events or not shape.cut:
            # Unpaced: everything in one write; per-event writes would make the
            # simulator's own cost dominate what benchmarks measure.
            pending = stream.head + b"".join(events)
        if shape.cut:
            stats.faults["cut"] += 1
            if pending:
                await send_piece(exchange.send, pending)
            return  # hypercorn closes the socket: no closing events
        if shape.stall:
            stats.faults["stall"] += 1
            if pending:
                await send_piece(exchange.send, pending)
            backend.notify()
            await trio.sleep_forever()  # until the client leaves (the watcher cancels)
        stream_open = False
        stats.open_streams -= 1
        await end_stream(exchange.send, pending + stream.tail)
    finally:
        if stream_open:
            stats.open_streams -= 1
        backend.notify()
