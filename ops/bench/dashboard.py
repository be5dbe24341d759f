"""What an open dashboard costs the request path, and how fast its first view is drawn.

One simulator and one llmswitch process on loopback. Requests (c=1) run in blocks that
alternate between no dashboard and the most live-update subscribers the gateway allows
(16 SSE streams open, each pushed a snapshot a second), so drift hits both alike; the
verdict is the ratio of median latencies (goal: at most 1.05). Then Debian's Chromium
loads /ui in fresh pages and times navigation start to the first live state drawn
(goal: under 1 s), and the assets' bytes are counted (goal: under 300 KB).

    .venv/bin/python ops/bench/dashboard.py [--quick] [--no-record]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import trio
from common import (
    MODEL,
    PROMPT,
    StartFailed,
    fmt,
    free_port,
    git_state,
    llmswitch_config,
    machine_line,
    now_utc,
    percentile,
    record,
    spawn_llmswitch,
    spawn_sim,
    timed_request,
    wait_ready,
)

CHROMIUM = "/usr/bin/chromium"
SUBSCRIBERS = 16
BODY = b'{"model": "%s", "messages": [{"role": "user", "content": "%s"}]}' % (
    MODEL.encode(),
    PROMPT.encode(),
)


async def block(client: httpx.AsyncClient, url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        seconds, _, error = await timed_request(client, url, BODY, stream=False)
        if error:
            raise RuntimeError(error)
        out.append(seconds * 1000)
    return out


async def latency(base: str, blocks: int, per_block: int) -> tuple[list[float], list[float]]:
    """(ms without a dashboard, ms with SUBSCRIBERS live streams open), interleaved."""
    url = base + "/v1/chat/completions"
    bare: list[float] = []
    watched: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client, httpx.AsyncClient(timeout=None) as sse:
        await block(client, url, 20)
        for _ in range(blocks):
            bare += await block(client, url, per_block)
            async with AsyncExitStack() as streams, trio.open_nursery() as nursery:
                for _ in range(SUBSCRIBERS):
                    response = await streams.enter_async_context(
                        sse.stream("GET", base + "/admin/events")
                    )
                    assert response.status_code == 200, response.status_code
                    nursery.start_soon(drain, response)
                watched += await block(client, url, per_block)
                nursery.cancel_scope.cancel()
    return bare, watched


async def drain(response: httpx.Response) -> None:
    async for _ in response.aiter_raw():
        pass


def first_views(base: str, loads: int) -> list[float]:
    """Milliseconds from navigation start to the first live state drawn, per fresh page."""
    from playwright.sync_api import expect, sync_playwright

    out = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for _ in range(loads):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            started = time.perf_counter()
            page.goto(base + "/ui")
            expect(page.locator("#live")).to_have_text("live", timeout=30_000)
            out.append((time.perf_counter() - started) * 1000)
            page.close()
        browser.close()
    return out


async def main(quick: bool, keep: bool) -> int:
    blocks, per_block, loads = (3, 40, 5) if quick else (6, 100, 15)
    git = git_state()
    workdir = Path(tempfile.mkdtemp(prefix="llmswitch-bench-ui-"))
    sim_port, port = free_port(), free_port()
    sim = spawn_sim("sim", sim_port, workdir, [MODEL])
    gw = spawn_llmswitch(port, llmswitch_config(port, sim_port, workdir), workdir)
    try:
        async with httpx.AsyncClient() as probe:
            await wait_ready(probe, sim, "/v1/models")
            await wait_ready(probe, gw, "/health/live")
        bare, watched = await latency(gw.base, blocks, per_block)
        views = await trio.to_thread.run_sync(first_views, gw.base, loads)
        async with httpx.AsyncClient(base_url=gw.base) as http:
            page = await http.get("/ui")
            assets = [await http.get(f"/ui/static/{n}") for n in ("app.js", "app.css")]
    except StartFailed as exc:
        print(exc, file=sys.stderr)
        return 2
    finally:
        gw.stop()
        sim.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    size_kb = (len(page.content) + sum(len(a.content) for a in assets)) / 1000
    p50_bare, p50_watched = statistics.median(bare), statistics.median(watched)
    ratio = p50_watched / p50_bare
    view_p50 = statistics.median(views)
    text = (
        f"## {now_utc()} — dashboard{' (quick run)' if quick else ''}\n\n"
        f"{machine_line(git)}\n"
        f"- workload: non-stream c=1 requests for '{MODEL}' on llmswitch.sim, {blocks} blocks "
        f"of {per_block} without and {blocks} with {SUBSCRIBERS} /admin/events streams open, "
        f"interleaved; then {loads} fresh Chromium pages load /ui\n\n"
        "| measure | value | goal |\n|---|---:|---|\n"
        f"| latency p50 without a dashboard (ms) | {fmt(p50_bare)} | |\n"
        f"| latency p50 with {SUBSCRIBERS} subscribers (ms) | {fmt(p50_watched)} | |\n"
        f"| latency p99 without / with (ms) | {fmt(percentile(bare, 99))} / "
        f"{fmt(percentile(watched, 99))} | |\n"
        f"| with / without, p50 | {fmt(ratio)} | ≤ 1.05 {'ok' if ratio <= 1.05 else 'MISS'} |\n"
        f"| first view drawn, p50 / max (ms) | {fmt(view_p50, 0)} / {fmt(max(views), 0)} | "
        f"< 1000 {'ok' if max(views) < 1000 else 'MISS'} |\n"
        f"| page + assets (KB) | {fmt(size_kb, 1)} | < 300 {'ok' if size_kb < 300 else 'MISS'} |\n"
    )
    print(text)
    if keep:
        record(text)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sys.exit(trio.run(main, args.quick, not args.no_record))
