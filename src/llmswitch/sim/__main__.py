"""`python -m llmswitch.sim`: one simulated backend from the command line.

For manual poking and for benchmarks that need the backend in its own process, so the
simulator's CPU does not compete with the gateway's.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from functools import partial

import trio

from .backend import SimBackend
from .knobs import KnobError, ModelKnobs
from .server import RunningSim, serve_sim


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmswitch.sim",
        description="Simulated OpenAI-compatible LLM backend with fault knobs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--name", default="sim", help="backend name (owned_by in /v1/models)")
    parser.add_argument(
        "--model", action="append", dest="models", metavar="ID", help="repeat for more models"
    )
    parser.add_argument("--ttft", type=float, default=0.0, help="seconds to first token")
    parser.add_argument("--tps", type=float, default=0.0, help="tokens per second, 0 = no pacing")
    parser.add_argument("--reply", default=None, help="canned reply (default: echo)")
    parser.add_argument("--error-status", type=int, default=None)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=None)
    parser.add_argument("--cut-after", type=int, default=None)
    parser.add_argument("--hang", action="store_true")
    parser.add_argument("--tool-call", action="store_true")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--seed", type=int, default=None, help="seed for error_rate draws")
    return parser


def backend_from_args(args: argparse.Namespace) -> SimBackend:
    knobs = ModelKnobs(
        ttft_s=args.ttft,
        tokens_per_s=args.tps,
        reply=args.reply,
        error_status=args.error_status,
        error_rate=args.error_rate,
        hang=args.hang,
        cut_after=args.cut_after,
        retry_after_s=args.retry_after,
        tool_call=args.tool_call,
    )
    return SimBackend(
        args.models or ["sim-model"],
        name=args.name,
        knobs=knobs,
        api_key=args.api_key,
        seed=args.seed,
    )


async def run(backend: SimBackend, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; a second signal is not needed (shutdown is quick)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def shutdown_trigger() -> None:
            async for _ in signals:
                return

        async with trio.open_nursery() as nursery:
            running: RunningSim = await nursery.start(
                partial(serve_sim, backend, host, port, shutdown_trigger=shutdown_trigger)
            )
            models = ", ".join(backend.models)
            print(
                f"sim {backend.name!r} on {running.openai_base_url} (models: {models})", flush=True
            )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        backend = backend_from_args(args)
    except KnobError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    trio.run(run, backend, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
