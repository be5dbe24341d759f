"""Simulated LLM backends speaking real wire formats over real sockets, with fault knobs.

Used by the tests, the benchmarks and `llmswitch demo`:

    sim = SimBackend(["qwen-small"], name="local")
    running = await nursery.start(serve_sim, sim)      # ephemeral loopback port
    client = openai.AsyncOpenAI(base_url=running.openai_base_url, api_key="x")
    sim.set_knobs("qwen-small", error_status=503)      # break it ...
    sim.reset_knobs()                                  # ... and heal it
"""

from .backend import SimBackend, UnknownModelError
from .knobs import KNOB_NAMES, KnobError, ModelKnobs
from .openai_app import OpenAISimApp
from .server import RunningSim, SimSpec, demo_specs, make_config, run_sims, serve_sim
from .stats import RecordedRequest, SimStats

__all__ = [
    "KNOB_NAMES",
    "KnobError",
    "ModelKnobs",
    "OpenAISimApp",
    "RecordedRequest",
    "RunningSim",
    "SimBackend",
    "SimSpec",
    "SimStats",
    "UnknownModelError",
    "demo_specs",
    "make_config",
    "run_sims",
    "serve_sim",
]
