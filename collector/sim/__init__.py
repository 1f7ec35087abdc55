"""Simulated OpenAI-compatible LLM server whose timings follow a physical model of a GPU server with
continuous batching; used to test the collector end to end without a GPU.

The package re-exports nothing: the config and the CLI import `collector.sim.settings` alone, without
loading the server (aiohttp.web) and the engine."""
