"""The simulator's AWS routes served on 127.0.0.1 from a background thread, with the faults a test sets, and the
fake credentials every AWS test runs with (no test reaches AWS)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from collector.sim.aws import AWS_KEY, AwsLoopback
from collector.sim.server import create_app
from collector.sim.settings import SimSettings

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIDLOOPBACKTEST0000",
    "AWS_SECRET_ACCESS_KEY": "loopback-secret-not-a-real-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def serve_aws(state: AwsLoopback, speedup: float = 50, mean_output_tokens: float = 20) -> Iterator[str]:
    """Serve until the block ends; yields the base URL (the `endpoint_url` boto3 is given)."""
    settings = SimSettings(speedup=speedup, mean_output_tokens=mean_output_tokens, served_model_name="sim-model")
    app = create_app(settings)
    app[AWS_KEY] = state
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def main() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())  # type: ignore[attr-defined]
        loop.close()

    thread = threading.Thread(target=main, name="aws-loopback", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{holder['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
