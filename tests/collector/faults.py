"""Fault-injection stand-ins for tests: a loopback OpenAI server that counts what it served, a small real disk
(tmpfs) that can be filled, and a collector run in a subprocess whose stderr is read as it comes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import REPO, config_dict, write_config


class CountingServer:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 that streams three tokens and counts whole replies."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.served = 0
        self.base_url = ""

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        for i, text in enumerate((" one", " two", " three")):
            finish = "stop" if i == 2 else None
            event = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
            await resp.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        usage = {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
        await resp.write(b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")
        await resp.write_eof()
        self.served += 1
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})


@contextlib.contextmanager
def counting_server(delay_s: float = 0.0) -> Iterator[CountingServer]:
    server = CountingServer(delay_s)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server._chat)
    app.router.add_get("/v1/models", server._models)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    ready = threading.Event()

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        server.base_url = f"http://127.0.0.1:{port}/v1"
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def openai_config(path: Path, base_url: str, concurrency: int = 4, requests: int = 200, **overrides: object) -> Path:
    exp = {
        "name": "counted",
        "model_id": "m",
        "endpoint": {"type": "openai", "base_url": base_url, "served_model_name": "m", "startup_timeout_s": 5},
        "instance_type": "g5.4xlarge",
        "concurrency_levels": [concurrency],
        "requests_per_level": requests,
        "warmup_requests_per_level": 0,
        "payloads": ["short"],
        "request_timeout_s": 10,
    }
    exp.update(overrides)
    return write_config(path, config_dict([exp]))


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    """A small real filesystem that fills up (needs root, as on CI; skips elsewhere)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; delete it to give the space back."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler


class CollectorProcess:
    """`python -m collector ARGS` in a subprocess; stderr collected by a thread so the test can wait on it."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "collector", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.err: list[str] = []
        self.out: list[str] = []
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    def wait_for_stderr(self, needle: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(needle in line for line in self.err):
            assert self.proc.poll() is None or any(needle in line for line in self.err), "".join(self.err)[-2000:]
            assert time.monotonic() < deadline, f"{needle!r} not printed in time: {''.join(self.err)[-2000:]}"
            time.sleep(0.05)

    def wait(self, timeout_s: float = 120) -> int:
        try:
            code = self.proc.wait(timeout_s)
        finally:
            self.proc.kill()
        for t in self._threads:
            t.join(5)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.err)

    def error_lines(self) -> list[str]:
        return [line for line in self.err if line.startswith("error:")]


def landed_request_lines(run_dir: Path) -> int:
    """Whole request rows on disk in a run folder (JSONL lines ending in a newline that parse)."""
    path = run_dir / "requests.jsonl"
    if not path.exists():
        return 0
    count = 0
    for line in path.read_bytes().split(b"\n")[:-1]:
        json.loads(line)
        count += 1
    return count
