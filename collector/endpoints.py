"""Endpoints under test: start the simulator or an engine (`type: process` / `container`), wait until healthy."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from collector.config import (
    DEFAULT_HEALTH_PATHS,
    MANAGED_ENDPOINT_TYPES,
    Experiment,
    OpenAIEndpoint,
    SimulatedEndpoint,
)
from collector.errors import ConfigError, EndpointError
from collector.sim.settings import SimEndpointSettings, SimSettings, command_args
from collector.stacks.endpoint_config import ContainerEndpoint, ProcessEndpoint

READY_RE = re.compile(r"listening on (http://\S+)")
UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def simulator_log_path(log_dir: Path, experiment_name: str) -> Path:
    """The simulator's log file for an experiment, always directly inside `log_dir`.

    The config already restricts names; this holds even for a config object built without validation.
    """
    safe = re.sub(r"\.{2,}", "_", UNSAFE_FILE_CHARS.sub("_", experiment_name)).lstrip(".")[:100] or "experiment"
    path = log_dir / f"simulator-{safe}.log"
    if path.resolve().parent != log_dir.resolve():  # pragma: no cover - impossible with the characters kept
        raise ConfigError(f"experiment name {experiment_name!r} cannot name a log file in {log_dir}")
    return path


def api_headers(exp: Experiment, where: str) -> dict[str, str]:
    """Request headers; the API key is read from the environment variable the config names."""
    endpoint = exp.endpoint
    if isinstance(endpoint, OpenAIEndpoint) and endpoint.api_key_env:
        key = os.environ.get(endpoint.api_key_env)
        if not key:
            raise ConfigError(f"{where}.endpoint.api_key_env: environment variable {endpoint.api_key_env} is not set")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key) or key != key.strip():
            raise ConfigError(
                f"{where}.endpoint.api_key_env: {endpoint.api_key_env} holds whitespace or a control character "
                "(a trailing newline?); it cannot be sent in a header"
            )
        return {"Authorization": f"Bearer {key}"}
    return {}


def simulator_settings(exp: Experiment) -> SimSettings:
    """The settings of the simulator a `type: simulated` experiment starts: the endpoint's keys, the experiment's
    instance type, and its model id as the name clients send."""
    assert isinstance(exp.endpoint, SimulatedEndpoint)
    own = exp.endpoint.model_dump(include=set(SimEndpointSettings.model_fields))
    return SimSettings(instance_type=exp.instance_type or "", served_model_name=exp.model_id, **own)


class Simulator:
    """The built-in simulated server, run as a child process on a free loopback port."""

    def __init__(self, exp: Experiment, log_path: Path) -> None:
        assert isinstance(exp.endpoint, SimulatedEndpoint)
        self.exp = exp
        self.endpoint: SimulatedEndpoint = exp.endpoint
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""

    def command(self) -> list[str]:
        """The simulator's command line: `python -m collector sim` on a free loopback port, with the settings."""
        return [
            sys.executable, "-m", "collector", "sim", "--host", "127.0.0.1", "--port", "0",
            *command_args(simulator_settings(self.exp)), "--exit-on-stdin-close",
        ]  # fmt: skip

    async def start(self) -> str:
        ep = self.endpoint
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command(), stdout=asyncio.subprocess.PIPE, stderr=log, stdin=asyncio.subprocess.PIPE
            )  # our end of stdin closes when we exit, however we exit, and the simulator follows
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), ep.startup_timeout_s)
        except TimeoutError as exc:
            await self.stop()
            raise EndpointError(
                f"simulator did not start within {ep.startup_timeout_s} s (log: {self.log_path})"
            ) from exc
        match = READY_RE.search(line.decode(errors="replace"))
        if not match:
            await self.stop()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise EndpointError(f"simulator failed to start: {tail[0]} (log: {self.log_path})")
        self.base_url = match.group(1).rstrip("/") + "/v1"
        return self.base_url

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def health_url(exp: Experiment, base_url: str) -> str:
    if isinstance(exp.endpoint, OpenAIEndpoint):
        ep = exp.endpoint
        return base_url.rstrip("/") + (ep.health_path or DEFAULT_HEALTH_PATHS[ep.api_style])
    if isinstance(exp.endpoint, ContainerEndpoint | ProcessEndpoint):
        root = re.match(r"^https?://[^/]+", base_url)
        return (root.group(0) if root else base_url.rstrip("/")) + (exp.endpoint.health_path or "/health")
    return base_url.rstrip("/").removesuffix("/v1") + "/health"


async def wait_healthy(session: aiohttp.ClientSession, url: str, timeout_s: float, headers: dict[str, str]) -> None:
    """Poll `url` until it answers 2xx; raise EndpointError naming the URL and the last cause."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last = "no answer"
    while True:
        try:
            async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status < 300:
                    return
                last = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            last = _cause(exc)
        if loop.time() >= deadline:
            raise EndpointError(f"endpoint {url} not healthy within {timeout_s:g} s: {last}")
        await asyncio.sleep(min(0.25, max(0.0, deadline - loop.time())))


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc
    text = getattr(inner, "strerror", None) or str(inner) or type(inner).__name__
    return text.lower() if "refused" in text.lower() else text


def preflight(exp: Experiment, where: str) -> None:
    """Faults an engine endpoint would meet at start, found before the run folder exists (nothing started)."""
    import shutil

    ep = exp.endpoint
    if ep.type in MANAGED_ENDPOINT_TYPES:  # AWS credentials and region
        from collector.aws.lifecycle import preflight as aws_preflight

        aws_preflight(exp, where)
    if isinstance(ep, ContainerEndpoint) and shutil.which("docker") is None:
        raise EndpointError(f"{where}.endpoint: docker not found on PATH (type: container needs the docker CLI)")
    if isinstance(ep, ContainerEndpoint | ProcessEndpoint) and ep.hf_token_env and not os.environ.get(ep.hf_token_env):
        raise ConfigError(f"{where}.endpoint.hf_token_env: environment variable {ep.hf_token_env} is not set")


@contextlib.asynccontextmanager
async def endpoint_for(
    exp: Experiment,
    log_dir: Path,
    stop: asyncio.Event | None = None,
    on_death: Callable[[str], None] | None = None,
):
    """Yield the base URL of the experiment's endpoint, starting and stopping the simulator or engine if needed.

    `stop` (the run's stop event) ends the wait for a starting engine early; what was started is still torn down.
    `on_death` is told, in one line, if an engine tokenbench started ends while the sweep is using it.
    """
    if isinstance(exp.endpoint, ContainerEndpoint | ProcessEndpoint):
        from collector.engine_process import Engine

        engine = Engine(exp, log_dir, stop)
        engine.on_death = on_death
        try:
            yield await engine.start()
        finally:
            await asyncio.shield(engine.stop())  # a second Ctrl-C must not leave the engine behind
    elif isinstance(exp.endpoint, SimulatedEndpoint):
        sim = Simulator(exp, simulator_log_path(log_dir, exp.name))
        try:
            yield await sim.start()
        finally:
            await sim.stop()
    elif exp.endpoint.type in MANAGED_ENDPOINT_TYPES:  # Bedrock, SageMaker (deployed and deleted if asked)
        from collector.aws.lifecycle import managed_endpoint

        async with managed_endpoint(exp, f"experiment {exp.name}", stop) as url:
            yield url
    else:
        assert isinstance(exp.endpoint, OpenAIEndpoint)
        yield exp.endpoint.base_url
