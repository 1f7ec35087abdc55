"""Simulated OpenAI-compatible LLM server whose timings follow a physical model of a GPU server with
continuous batching; used to test the collector end to end without a GPU."""

from collector.sim.engine import RequestTiming, simulate_closed_loop
from collector.sim.profiles import known_instance_types, known_models, resolve_hardware
from collector.sim.server import READY_LINE_PREFIX, create_app, run_server, serve
from collector.sim.settings import SimSettings

__all__ = [
    "READY_LINE_PREFIX",
    "RequestTiming",
    "SimSettings",
    "create_app",
    "known_instance_types",
    "known_models",
    "resolve_hardware",
    "run_server",
    "serve",
    "simulate_closed_loop",
]
