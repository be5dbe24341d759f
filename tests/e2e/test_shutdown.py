"""SIGTERM drains: streams in flight finish, the ledger holds their rows, exit code 0."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import trio

from llmswitch.sim.knobs import ModelKnobs
from llmswitch.store.db import open_db
from llmswitch.store.journal import read_segment
from llmswitch.store.request_log import count_rows
from tests.e2e.harness import closed_port, serving_process, start_sims, wait_until_serving

STREAMS = 20


def write_config(path: Path, sim_url: str, port: int, db: Path) -> None:
    path.write_text(
        f"""
[server]
port = {port}
grace_s = 20
[store]
path = "{db}"
[[backends]]
name = "local"
base_url = "{sim_url}"
[[models]]
id = "small"
backend = "local"
""",
        encoding="utf-8",
    )


def rows_journalled(directory: Path) -> int:
    return sum(len(read_segment(p)) for p in directory.glob("*.jsonl"))


async def test_sigterm_lets_streams_in_flight_finish(nursery: trio.Nursery, tmp_path: Path) -> None:
    # Each stream takes about 1.5 s, so all of them are mid-answer when SIGTERM lands.
    sims = await start_sims(nursery, ModelKnobs(tokens_per_s=20, reply="tok " * 30))
    port, db = closed_port(), tmp_path / "ledger.db"
    config = tmp_path / "llmswitch.toml"
    write_config(config, sims["local"].openai_base_url, port, db)
    url = f"http://127.0.0.1:{port}"
    async with serving_process(config) as proc:
        await wait_until_serving(url, proc)
        first_bytes = trio.Semaphore(0)
        finished: list[str] = []
        body = {"model": "small", "stream": True, "messages": [{"role": "user", "content": "go"}]}

        async with httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def stream_one() -> None:
                async with http.stream("POST", "/v1/chat/completions", json=body) as r:
                    data = b""
                    async for chunk in r.aiter_raw():
                        if not data:
                            first_bytes.release()
                        data += chunk
                events = [e for e in data.split(b"\n\n") if e.startswith(b"data: ")]
                assert events[-1] == b"data: [DONE]"
                json.loads(events[-2][6:])  # the last real event is whole
                finished.append("ok")

            with trio.fail_after(60):
                async with trio.open_nursery() as streams:
                    for _ in range(STREAMS):
                        streams.start_soon(stream_one)
                    for _ in range(STREAMS):
                        await first_bytes.acquire()
                    proc.send_signal(signal.SIGTERM)
        assert len(finished) == STREAMS
        with trio.fail_after(30):
            code = await proc.wait()
        assert code == 0
    # Rows left in the journal would be moved at the next start; on a drain they must not be.
    journalled = await trio.to_thread.run_sync(rows_journalled, Path(f"{db}.journal"))
    async with open_db(db) as conn:
        assert (await count_rows(conn), journalled) == (STREAMS, 0)
