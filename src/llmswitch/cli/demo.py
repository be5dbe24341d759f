"""``llmswitch demo``: the gateway wired to three simulated backends (local, lan, cloud).

Works with no model installed, which is what ``make run`` needs.
"""

from __future__ import annotations

from typing import Any

import trio

from llmswitch.config import Config, parse_config
from llmswitch.gateway import Gateway
from llmswitch.main import run_gateway
from llmswitch.sim.server import RunningSim, demo_specs, run_sims

EXAMPLES = """\
llmswitch demo: gateway on {url} with simulated backends
  local  {local}   (qwen-small, llama-3b)
  lan    {lan}   (coder-14b)
  cloud  {cloud}   (gpt-4o-mini, gpt-4o)

Try:
  curl -N {url}/v1/chat/completions -d '{{"model":"auto","stream":true,"messages":[{{"role":"user","content":"hi"}}]}}'
  curl -s {url}/v1/chat/completions -d '{{"model":"auto","messages":[{{"role":"user","content":"Prove that the square root of 2 is irrational, step by step."}}]}}' -D - -o /dev/null | grep -i x-router
  curl -s {url}/v1/chat/completions -d '{{"model":"smart","messages":[{{"role":"user","content":"Design a rate limiter"}}]}}'
Look inside: {url}/debug  {url}/metrics  {url}/health    Stop: Ctrl+C
"""  # noqa: E501


def demo_config(sims: dict[str, RunningSim], port: int, store: str) -> Config:
    """A config for the demo's simulators; shaped exactly like a user's TOML."""

    def model(id_: str, backend: str, upstream: str, quality: int, **extra: Any) -> dict[str, Any]:
        return {
            "id": id_,
            "backend": backend,
            "upstream": upstream,
            "quality": quality,
            "context_window": 32768,
            **extra,
        }

    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port, "grace_s": 5},
        "store": {"path": store},
        "health": {"interval_s": 5},
        "budget": {"daily_usd": 1.0, "monthly_usd": 10.0},
        # The demo opts in to metered cloud for every task type; a fresh config does not.
        "routing": {"self_model": "qwen-small", "metered_cloud": ["*"]},
        "backends": [
            {
                "name": "local",
                "kind": "ollama",
                "base_url": sims["local"].openai_base_url,
                "locality": "local",
            },
            {
                "name": "lan",
                "kind": "openai",
                "base_url": sims["lan"].openai_base_url,
                "locality": "lan",
            },
            {
                "name": "cloud",
                "kind": "openai",
                "base_url": sims["cloud"].openai_base_url,
                "locality": "cloud",
                "rpm": 120,
            },
        ],
        "models": [
            model(
                "qwen-small", "local", "qwen2.5:0.5b", 20, aliases=["fast"], fallbacks=["llama-3b"]
            ),
            model("llama-3b", "local", "llama3.2:3b", 35),
            model("coder-14b", "lan", "qwen2.5-coder:14b", 60, fallbacks=["gpt-4o-mini"]),
            model(
                "gpt-4o-mini",
                "cloud",
                "gpt-4o-mini",
                70,
                cost_input_per_mtok=0.15,
                cost_output_per_mtok=0.60,
            ),
            model(
                "gpt-4o",
                "cloud",
                "gpt-4o",
                85,
                cost_input_per_mtok=2.5,
                cost_output_per_mtok=10.0,
                aliases=["smart"],
            ),
        ],
    }
    return parse_config(data, source="demo")


async def run_demo(port: int, store: str) -> int:
    """The simulators, then the gateway; the banner once the gateway is listening."""
    code = 0
    async with trio.open_nursery() as nursery:
        sims = await nursery.start(run_sims, demo_specs())
        config = demo_config(sims, port, store)

        async def gateway(task_status: trio.TaskStatus[tuple[Gateway, str]]) -> None:
            nonlocal code
            code = await run_gateway(config, task_status=task_status)
            nursery.cancel_scope.cancel()

        _, url = await nursery.start(gateway)
        print(EXAMPLES.format(url=url, **{n: s.base_url for n, s in sims.items()}), flush=True)
    return code
