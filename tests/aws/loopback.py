"""The simulator's AWS routes served on 127.0.0.1 from a background thread, with the faults a test sets, and the
fake credentials every AWS test runs with (no test reaches AWS)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from aiohttp import web

from collector.sim.aws import AWS_KEY, AwsLoopback, Invocation
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


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (every service it mocks, CloudWatch and SageMaker's control plane among them) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def gpu_percent(invocation: Invocation) -> float:
    """The GPU utilisation published beside an invocation (a figure a test can average by hand)."""
    return float(round(invocation.model_latency_us) % 100)


def publish(cloudwatch_url: str, invocations: list[Invocation], variant: str = "AllTraffic") -> None:
    """Put the invocations to CloudWatch as SageMaker does, each at the time it was received: ModelLatency and
    OverheadLatency in microseconds and Invocations / InvocationsPerInstance 1 (namespace AWS/SageMaker), and the
    container's GPUUtilization and GPUMemoryUtilization (/aws/sagemaker/Endpoints, here gpu_percent and half of
    it), all with high-resolution timestamps so a test can use 1 s periods."""
    import boto3

    client = boto3.client(
        "cloudwatch",
        endpoint_url=cloudwatch_url,
        region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    # The instance metrics first: the collector stops waiting once the Invocations are all there.
    by_namespace: dict[str, list[dict[str, object]]] = {"/aws/sagemaker/Endpoints": [], "AWS/SageMaker": []}
    for inv in invocations:
        dims = [{"Name": "EndpointName", "Value": inv.endpoint_name}, {"Name": "VariantName", "Value": variant}]
        at = datetime.fromtimestamp(inv.received_at_s, UTC)

        def datum(name: str, value: float, unit: str, dims: object = dims, at: datetime = at) -> dict[str, object]:
            return {
                "MetricName": name,
                "Dimensions": dims,
                "Timestamp": at,
                "Value": value,
                "Unit": unit,
                "StorageResolution": 1,
            }

        by_namespace["AWS/SageMaker"] += [
            datum("ModelLatency", inv.model_latency_us, "Microseconds"),
            datum("OverheadLatency", inv.overhead_latency_us, "Microseconds"),
            datum("Invocations", 1, "None"),
            datum("InvocationsPerInstance", 1, "None"),
        ]
        by_namespace["/aws/sagemaker/Endpoints"] += [
            datum("GPUUtilization", gpu_percent(inv), "Percent"),
            datum("GPUMemoryUtilization", gpu_percent(inv) / 2, "Percent"),
        ]
    for namespace, data in by_namespace.items():
        for i in range(0, len(data), 500):
            client.put_metric_data(Namespace=namespace, MetricData=data[i : i + 500])  # type: ignore[arg-type]


@contextmanager
def publishing_after(
    state: AwsLoopback,
    cloudwatch_url: str,
    invocations: int,
    delay_s: float = 0.5,
    timeout_s: float = 120,
    once: threading.Event | None = None,
) -> Iterator[threading.Thread]:
    """Publish the loopback's invocations to CloudWatch `delay_s` after the `invocations`-th one (CloudWatch's
    delay, which the collector must wait out), and after `once` is set when given, from a thread, while the block
    runs."""

    def main() -> None:
        deadline = time.monotonic() + timeout_s
        while len(state.invocations) < invocations and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay_s)
        if once is not None:
            once.wait(max(0.0, deadline - time.monotonic()))
        publish(cloudwatch_url, list(state.invocations))

    thread = threading.Thread(target=main, name="cloudwatch-publisher", daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(timeout_s)
