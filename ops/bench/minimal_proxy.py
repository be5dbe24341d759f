"""The floor for llmswitch's overhead: a bare pass-through proxy on the same stack.

quart-trio on hypercorn's trio worker, one shared httpx.AsyncClient, bytes relayed as
they arrive. Whatever llmswitch adds beyond this is routing, bookkeeping and parsing,
not the stack itself. Run: python ops/bench/minimal_proxy.py --port P --upstream URL
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio


def create_app(
    upstream: str, max_connections: int = 100, max_keepalive: int | None = None
) -> QuartTrio:
    """The proxy app; the client opens and closes with the server, like llmswitch's."""
    app = QuartTrio("minimal_proxy")
    app.config["RESPONSE_TIMEOUT"] = None
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections if max_keepalive is None else max_keepalive,
    )
    timeout = httpx.Timeout(connect=2.0, read=None, write=30.0, pool=30.0)
    client = httpx.AsyncClient(base_url=upstream.rstrip("/"), limits=limits, timeout=timeout)

    @app.after_serving
    async def close_client() -> None:
        await client.aclose()

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.post("/v1/chat/completions")
    async def chat() -> Response:
        body = await request.get_data(cache=False)
        outgoing = client.build_request(
            "POST", "/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        upstream_response = await client.send(outgoing, stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream_response.aiter_raw():
                    yield chunk
            finally:
                # A client that leaves cancels us; the pool slot must still come back.
                with trio.CancelScope(shield=True):
                    await upstream_response.aclose()

        content_type = upstream_response.headers.get("content-type", "application/json")
        response = Response(relay(), upstream_response.status_code, content_type=content_type)
        response.timeout = None
        return response

    return app


async def run(app: QuartTrio, port: int) -> None:
    """Serve until SIGTERM/SIGINT; hypercorn's trio serve() installs no handler itself."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 75
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:

        async def shutdown_trigger() -> None:
            async for _ in signals:
                return

        app_any: Any = app
        await serve(app_any, config, shutdown_trigger=shutdown_trigger)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="OpenAI base URL, e.g. .../v1")
    parser.add_argument("--max-connections", type=int, default=100, help="upstream pool size")
    parser.add_argument(
        "--max-keepalive", type=int, default=None, help="idle upstream connections kept"
    )
    args = parser.parse_args(argv)
    app = create_app(args.upstream, args.max_connections, args.max_keepalive)
    trio.run(run, app, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
