"""The relay's cost per streamed event, this tree against another checkout, in one run.

What every event of every stream goes through between the upstream and the client: the
StreamTap (split, read, count, keep or drop) and, where the checkout has one, the key
scrubber. One OpenAI chunk per network read, one configured key. Each round runs both
trees in turn, each in a fresh interpreter, and takes the best of 7 loops of CPU time
(process time: a shared box's waits are not counted); the ratio of the medians over the
rounds is the figure. Run:
.venv/bin/python ops/bench/relay.py --reference /work/wt/baseline/src [--rounds 6] [--no-record]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from common import REPO, fmt, git_state, machine_line, now_utc, record

LOOP = """
import sys, time
sys.path.insert(0, sys.argv[1])
from llmswitch.providers.openai import StreamTap
try:
    from llmswitch.providers.scrub import Scrubber
    scrub = Scrubber("sk-bench-0123456789abcdef").data
except ImportError:
    scrub = None
EVENT = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
         b'"model":"small","choices":[{"index":0,"delta":{"content":"tok "},'
         b'"finish_reason":null}]}\\n\\n')
N = 20000
best = float("inf")
for _ in range(7):
    tap = StreamTap(False)
    started = time.process_time()
    for _ in range(N):
        out = tap.feed(EVENT)
        if scrub is not None:
            out = scrub(out)
    best = min(best, (time.process_time() - started) / N)
print(best * 1e6)
"""


def per_event_us(src: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", LOOP, str(src)], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"relay loop failed for {src}:\n{done.stderr[-2000:]}")
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="another checkout's src/")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    git = git_state()
    here: list[float] = []
    there: list[float] = []
    for _ in range(args.rounds):
        there.append(per_event_us(args.reference))
        here.append(per_event_us(REPO / "src"))
    ratio = statistics.median(here) / statistics.median(there)
    rows = "".join(
        f"| {name} | {fmt(statistics.median(v))} | {fmt(min(v))} | {fmt(max(v))} |\n"
        for name, v in (("reference", there), ("this tree", here))
    )
    text = (
        f"## {now_utc()}: relay cost per streamed event (`ops/bench/relay.py`)\n\n"
        + machine_line(git).rstrip("\n")
        + f"\n- reference: {args.reference}; {args.rounds} rounds, the trees alternating\n\n"
        + "| tree | CPU µs per event, median of rounds | min | max |\n|---|---:|---:|---:|\n"
        + rows
        + f"\nthis tree / reference: {ratio:.3f}\n"
    )
    print(text)
    if not args.no_record:
        record(text)


if __name__ == "__main__":
    main()
