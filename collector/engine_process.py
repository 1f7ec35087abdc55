"""Lifecycle of an engine the collector starts itself (`type: process` or `type: container`).

Start it through collector.engine_guard, wait until it is healthy and one real inference returns 200 (showing
progress and its last log line), hand out its base URL, and stop exactly what was started: the process group,
or the container by the id docker returned. Every failure is one EndpointError naming the cause and what was
cleaned up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from collector.errors import EndpointError
from collector.stacks.catalog import OPENAI_STYLES, Launch, docker_run_argv, process_launch, stacks
from collector.stacks.endpoint_config import ContainerEndpoint, ProcessEndpoint

UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
PROGRESS_EVERY_S = 10.0
STOP_TIMEOUT_S = 60.0
PROBE_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/chat/completions", {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 1}),
    "completions": ("/completions", {"prompt": "Hello", "max_tokens": 1}),
    "tgi": ("/generate", {"inputs": "Hello", "parameters": {"max_new_tokens": 1}}),
    "djl": ("/invocations", {"inputs": "Hello", "parameters": {"max_new_tokens": 1}}),
    "triton": ("/v2/models/ensemble/generate", {"text_input": "Hello", "max_tokens": 1}),
}


def safe_name(name: str) -> str:
    return re.sub(r"\.{2,}", "_", UNSAFE.sub("_", name)).lstrip(".")[:100] or "experiment"


def port_free(port: int) -> bool:
    for host in ("127.0.0.1", "0.0.0.0"):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 3) -> list[str]:
    """The last non-empty lines of a log file (read from its end, so a huge log costs little)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [ln.strip()[:300] for ln in text.splitlines() if ln.strip()][-lines:]


def launch_records(log_dir: Path) -> list[dict[str, Any]]:
    """Launch records of the engines a run started (image digest, redacted command, engine version...)."""
    out = []
    for file in sorted(Path(log_dir).glob("launch-*.json")):
        with contextlib.suppress(OSError, ValueError):
            out.append(json.loads(file.read_text()))
    return out


class Engine:
    """One engine started for one experiment."""

    def __init__(self, exp: Any, log_dir: Path, stop: asyncio.Event | None = None) -> None:
        self.exp = exp
        self.stop_requested = stop  # the run's stop event: Ctrl-C ends the wait (the caller then tears down)
        self.ep: ContainerEndpoint | ProcessEndpoint = exp.endpoint
        self.kind = "container" if isinstance(self.ep, ContainerEndpoint) else "process"
        self.stack = stacks()[self.ep.stack] if self.ep.stack else None
        self.log_dir = Path(log_dir)
        self.log_path = self.log_dir / f"engine-{safe_name(exp.name)}.log"
        self.guard: asyncio.subprocess.Process | None = None
        self.events: asyncio.Queue[str] = asyncio.Queue()
        self.started_id: str | None = None
        self.ended: str | None = None  # the guard's `failed`/`exited` line
        self.port = 0
        self.launch: Launch | None = None
        self.secret_values: list[str] = []
        self.serving = False  # ready and not yet being stopped: an end now is the engine dying mid-sweep
        self.on_death: Callable[[str], None] | None = None

    # -- start ------------------------------------------------------------------------------

    def _what(self) -> str:
        return f"{self.stack.name if self.stack else 'engine'} {self.kind}"

    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self) -> str:
        if self.stack is not None:
            return self.root_url() + self.stack.api_base_path
        return self.root_url() + ("/v1" if (self.ep.api_style or "chat") in OPENAI_STYLES else "")

    def _build(self) -> tuple[list[str], dict[str, str]]:
        ep, exp = self.ep, self.exp
        if ep.port is not None:
            if not port_free(ep.port):
                raise EndpointError(f"{exp.name}: port {ep.port} on this host is already in use; nothing was started")
            self.port = ep.port
        else:
            self.port = free_port()
        env = dict(os.environ)
        if ep.hf_token_env:
            token = os.environ.get(ep.hf_token_env)
            if not token:
                raise EndpointError(
                    f"{exp.name}: endpoint.hf_token_env: environment variable {ep.hf_token_env} is not set; "
                    "nothing was started"
                )
            self.secret_values.append(token)
        if isinstance(ep, ContainerEndpoint):
            assert self.stack is not None
            docker = shutil.which("docker")
            if docker is None:
                raise EndpointError(
                    f"{exp.name}: docker not found on PATH (type: container needs the docker CLI and a daemon); "
                    "nothing was started"
                )
            self.launch = docker_run_argv(self.stack, ep, exp.model_id, self.port)
            self.launch.argv[0] = docker
            mode = "container"
        elif self.stack is not None:
            self.launch = process_launch(self.stack, ep, exp.model_id, self.port)
            mode = "process"
        else:
            assert ep.command is not None
            values = {"port": self.port, "host": "127.0.0.1", "model": ep.model or exp.model_id,
                      "served_model_name": exp.model_id}  # fmt: skip
            argv = [_fill(a, values) for a in ep.command] + list(ep.extra_args)
            self.launch = Launch(argv, {}, {"HF_TOKEN": ep.hf_token_env} if ep.hf_token_env else {})
            mode = "process"
        env.update(self.launch.env)
        for inner, outer in self.launch.secret_env.items():
            env[inner] = os.environ[outer]
        guard = [sys.executable, "-m", "collector.engine_guard", mode, "--log", str(self.log_path), "--"]
        return guard + self.launch.argv, env

    async def start(self) -> str:
        cmd, env = self._build()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.guard = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log, env=env,
                start_new_session=True,  # Ctrl-C is ours to handle; the guard stops the engine when we close stdin
            )  # fmt: skip
        asyncio.get_running_loop().create_task(self._read_guard())
        try:
            if not await self._wait_ready():
                return self.base_url()  # stopped while waiting: the caller sees its stop event and leaves
        except BaseException as exc:
            cleaned = await self.stop()
            if isinstance(exc, EndpointError):
                raise EndpointError(f"{exc}; {cleaned}") from None
            raise
        await self._record()
        self.serving = True
        return self.base_url()

    async def _read_guard(self) -> None:
        assert self.guard is not None and self.guard.stdout is not None
        while line := await self.guard.stdout.readline():
            text = line.decode(errors="replace").strip()
            if text.startswith("started "):
                self.started_id = text.split(" ", 1)[1]
            elif text.startswith(("failed ", "exited ")) and self.ended is None:
                self.ended = text
                if self.serving:
                    code = text.removeprefix("exited ").removeprefix("failed ").split(" ", 1)[0]
                    self._died(f"exited (code {code})")
            await self.events.put(text)
        if self.serving and self.ended is None:
            await self.guard.wait()
            self._died(f"lost its guard process (exit {self.guard.returncode}; stopping it by its id)")

    def _died(self, how: str) -> None:
        """The engine ended while the sweep was using it: say so once, with its last log lines."""
        self.serving = False
        if self.on_death is not None:
            lines = " | ".join(tail(self.log_path)) or "no log output"
            self.on_death(
                f"{self.exp.name}: {self._what()} {how} during the sweep; last log lines: {lines} "
                f"(log: {self.log_path})"
            )

    async def _wait_ready(self) -> bool:
        ep, loop = self.ep, asyncio.get_running_loop()
        start = loop.time()
        deadline = start + ep.startup_timeout_s
        last_progress = start
        last = "no answer yet"
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if self.stop_requested is not None and self.stop_requested.is_set():
                    return False
                self._check_alive()
                if self.started_id is not None:
                    ok, last = await self._probe(session)
                    if ok:
                        self._progress(f"ready after {loop.time() - start:.0f} s")
                        return True
                    self._check_alive()
                now = loop.time()
                if now >= deadline:
                    lines = " | ".join(tail(self.log_path)) or "no log output"
                    raise EndpointError(
                        f"{self.exp.name}: {self._what()} not ready within {ep.startup_timeout_s:g} s ({last}); "
                        f"last log lines: {lines} (log: {self.log_path})"
                    )
                if now - last_progress >= PROGRESS_EVERY_S:
                    last_progress = now
                    state = "loading" if self.started_id else "starting (pulling the image?)"
                    line = (tail(self.log_path, 1) or ["no log output yet"])[0]
                    self._progress(f"{state}, {now - start:.0f}/{ep.startup_timeout_s:g} s: {line}")
                await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))

    def _check_alive(self) -> None:
        assert self.guard is not None
        if self.ended is None and self.guard.returncode is None:
            return
        lines = " | ".join(tail(self.log_path)) or "no log output"
        ended = self.ended or f"guard exited {self.guard.returncode}"
        if ended.startswith("failed "):
            code, _, msg = ended.removeprefix("failed ").partition(" ")
            what = "docker run" if self.kind == "container" else "the engine command"
            raise EndpointError(f"{self.exp.name}: {what} failed (exit {code}): {msg}")
        code = ended.removeprefix("exited ")
        raise EndpointError(
            f"{self.exp.name}: {self._what()} exited (code {code}) while loading; last log lines: {lines} "
            f"(log: {self.log_path})"
        )

    async def _probe(self, session: aiohttp.ClientSession) -> tuple[bool, str]:
        """Healthy and one real inference answered 200: (True, ''), else (False, the last cause)."""
        health = self.ep.health_path or "/health"
        style = self.ep.api_style or "chat"
        path, body = PROBE_BODIES[style]
        prefix = self.base_url() if style in OPENAI_STYLES else self.root_url()
        if style in OPENAI_STYLES:
            body = {"model": self.exp.model_id, **body}
        try:
            async with session.get(self.root_url() + health) as resp:
                if resp.status >= 300:
                    return False, f"health {health}: HTTP {resp.status}"
            async with session.post(prefix + path, json=body) as resp:
                await resp.read()
                if resp.status != 200:
                    return False, f"inference {path}: HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return False, f"no answer ({type(exc).__name__})"
        return True, ""

    def _progress(self, text: str) -> None:
        print(f"{self.exp.name}: {self._what()}: {text}", file=sys.stderr, flush=True)

    # -- records ----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        for secret in self.secret_values:
            text = text.replace(secret, "***")
        return text

    async def _record(self) -> None:
        assert self.launch is not None
        record: dict[str, Any] = {
            "experiment_name": self.exp.name,
            "endpoint_type": self.kind,
            "stack": self.stack.name if self.stack else None,
            "stack_source": self.stack.source if self.stack else None,
            "launch_command": [self.redact(a) for a in self.launch.argv],
            "secret_env_names": sorted(self.launch.secret_env),
            "container_id": self.started_id if self.kind == "container" else None,
            "pid": int(self.started_id) if self.kind == "process" and self.started_id else None,
            "base_url": self.base_url(),
            "image": None,
            "image_digest": None,
            "engine_version": None,
            "log_file": str(self.log_path),
            "ready_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if isinstance(self.ep, ContainerEndpoint):
            record["image"] = self.ep.image or (self.stack.image if self.stack else None)
            record["image_digest"] = await self._image_digest(record["image"])
        record["engine_version"] = await self._engine_version()
        path = self.log_dir / f"launch-{safe_name(self.exp.name)}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")

    async def _image_digest(self, image: str | None) -> str | None:
        assert self.launch is not None
        if not image:
            return None
        with contextlib.suppress(OSError, TimeoutError, ValueError):
            proc = await asyncio.create_subprocess_exec(
                self.launch.argv[0], "image", "inspect", "--format", "{{json .RepoDigests}}", image,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            digests = json.loads(out.decode() or "null")
            if isinstance(digests, list) and digests:
                return str(digests[0])
        return None

    async def _engine_version(self) -> str | None:
        path = self.stack.version_path if self.stack else None
        if not path:
            return None
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError, ValueError):
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(self.root_url() + path) as resp,
            ):
                data = await resp.json(content_type=None)
                if isinstance(data, dict):
                    version = data.get("version") or data.get("build_info")
                    return str(version)[:200] if version is not None else None
        return None

    # -- stop -------------------------------------------------------------------------------

    async def stop(self) -> str:
        """Stop exactly what was started; a sentence saying what was cleaned up."""
        self.serving = False  # what ends from here on is our doing
        guard = self.guard
        if guard is None:
            return "nothing was started"
        what = self.started_id
        # A guard that ended before we asked (killed) may have left the engine running: remove it ourselves.
        guard_gone_first = guard.returncode is not None and self.ended is None
        if guard.returncode is None and guard.stdin is not None:
            guard.stdin.close()  # the guard stops the engine and exits
        try:
            await asyncio.wait_for(guard.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            guard.kill()
            await guard.wait()
            self._force_cleanup()
        else:
            if guard_gone_first:
                self._force_cleanup()
        if what is None:
            return "nothing was left running"
        if self.kind == "container":
            return f"container {what[:12]} stopped and removed"
        return f"engine process group {what} stopped"

    def _force_cleanup(self) -> None:
        """The guard did not finish in time: remove what it started ourselves (by id, never by name)."""
        import signal
        import subprocess

        if self.started_id is None or self.launch is None:
            return
        if self.kind == "container":
            subprocess.run([self.launch.argv[0], "rm", "-f", self.started_id], capture_output=True, timeout=60)
        else:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.killpg(int(self.started_id), signal.SIGKILL)


def _fill(template: str, values: dict[str, Any]) -> str:
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template
