"""A SageMaker endpoint's own view from CloudWatch: ModelLatency, OverheadLatency, Invocations,
InvocationsPerInstance and, where the container publishes them, GPU utilisation and memory, read for the sweep's
span into raw.telemetry_samples (source cloudwatch:sagemaker), one row per period CloudWatch has a datapoint for.

Read after the whole sweep, so after a deployed endpoint was deleted: its metrics stay in CloudWatch (kept 15 days,
keyed by endpoint and variant name), and the minutes CloudWatch takes to publish them are then neither billed
instance time nor a pause before the next experiment. The marts give a level the whole periods inside its
measured window (models_dbt int_levels_server_compared).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.aws.client import aws_session, control_client, failure_of
from collector.aws.endpoint_config import SageMakerCloudWatch, SageMakerEndpoint
from collector.clock import iso_utc
from collector.config import Experiment
from collector.schema import TelemetrySample

SOURCE = "cloudwatch:sagemaker"
INVOCATION_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"  # the container's instance metrics (GPU, CPU, memory)


@dataclass(frozen=True)
class Query:
    """One GetMetricData query: a metric's statistic, landed in `column` after multiplying by `scale`."""

    id: str
    namespace: str
    metric: str
    stat: str
    column: str
    scale: float = 1.0


QUERIES: tuple[Query, ...] = (
    Query("ml_sum", INVOCATION_NAMESPACE, "ModelLatency", "Sum", "cloudwatch_model_latency_sum_s", 1e-6),
    Query("ml_n", INVOCATION_NAMESPACE, "ModelLatency", "SampleCount", "cloudwatch_model_latency_count"),
    Query("ol_sum", INVOCATION_NAMESPACE, "OverheadLatency", "Sum", "cloudwatch_overhead_latency_sum_s", 1e-6),
    Query("ol_n", INVOCATION_NAMESPACE, "OverheadLatency", "SampleCount", "cloudwatch_overhead_latency_count"),
    Query("inv", INVOCATION_NAMESPACE, "Invocations", "Sum", "cloudwatch_invocations"),
    Query("inv_inst", INVOCATION_NAMESPACE, "InvocationsPerInstance", "Sum", "cloudwatch_invocations_per_instance"),
    Query("gpu", INSTANCE_NAMESPACE, "GPUUtilization", "Average", "cloudwatch_gpu_utilization_percent"),
    Query(
        "gpu_mem", INSTANCE_NAMESPACE, "GPUMemoryUtilization", "Average", "cloudwatch_gpu_memory_utilization_percent"
    ),
)


class CloudWatchError(Exception):
    """GetMetricData was refused or could not be sent."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Watch:
    """One SageMaker experiment's span to read: its endpoint and variant, the wall-clock span the sweep sent in,
    and the successful invocations CloudWatch should count once it has published them all."""

    experiment_name: str
    where: str
    region: str | None
    endpoint_name: str
    variant_name: str
    settings: SageMakerCloudWatch
    started_ns: int
    ended_ns: int
    expected: int

    def window(self) -> tuple[datetime, datetime]:
        """StartTime and EndTime on period boundaries (as CloudWatch aligns them), one period past the end."""
        period = self.settings.period_s
        start = math.floor(self.started_ns / 1e9 / period) * period
        end = (math.ceil(self.ended_ns / 1e9 / period) + 1) * period
        return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)


def metric_queries(watch: Watch) -> list[dict[str, Any]]:
    dimensions = [
        {"Name": "EndpointName", "Value": watch.endpoint_name},
        {"Name": "VariantName", "Value": watch.variant_name},
    ]
    return [
        {
            "Id": q.id,
            "MetricStat": {
                "Metric": {"Namespace": q.namespace, "MetricName": q.metric, "Dimensions": dimensions},
                "Period": watch.settings.period_s,
                "Stat": q.stat,
            },
            "ReturnData": True,
        }
        for q in QUERIES
    ]


def fetch(client: Any, watch: Watch) -> dict[int, dict[str, float]]:
    """Every datapoint of the watch's span: {period start, epoch s: {column: value}} (all pages)."""
    from botocore.exceptions import BotoCoreError, ClientError

    start, end = watch.window()
    by_id = {q.id: q for q in QUERIES}
    points: dict[int, dict[str, float]] = {}
    kwargs: dict[str, Any] = {
        "MetricDataQueries": metric_queries(watch),
        "StartTime": start,
        "EndTime": end,
        "ScanBy": "TimestampAscending",
    }
    while True:
        try:
            reply = client.get_metric_data(**kwargs)
        except ClientError as exc:
            raise CloudWatchError(f"GetMetricData refused ({failure_of(exc).describe()})") from exc
        except BotoCoreError as exc:
            raise CloudWatchError(f"GetMetricData failed ({exc})") from exc
        for result in reply.get("MetricDataResults") or []:
            query = by_id.get(str(result.get("Id")))
            if query is None:
                continue
            for stamp, value in zip(result.get("Timestamps") or [], result.get("Values") or [], strict=False):
                if isinstance(stamp, datetime) and isinstance(value, int | float) and math.isfinite(value):
                    points.setdefault(round(stamp.timestamp()), {})[query.column] = float(value) * query.scale
        token = reply.get("NextToken")
        if not token:
            return points
        kwargs["NextToken"] = token


class EndpointMetrics:
    """The run's SageMaker experiments to read from CloudWatch once the sweep is over (`add` after each, `read`
    at the end), landing one TelemetrySample per period."""

    def __init__(
        self,
        run_id: str,
        base_perf_ns: int,
        land: Callable[[TelemetrySample], None],
        say: Callable[[str], None] = _say,
    ) -> None:
        self.run_id = run_id
        self.base_perf_ns = base_perf_ns
        self.land = land
        self.say = say
        self.pending: list[Watch] = []

    def add(self, exp: Experiment, where: str, url: str, started_ns: int, ended_ns: int, expected: int) -> None:
        """Note an experiment just swept on the endpoint at `url` (`<runtime>/endpoints/<name>`)."""
        ep = exp.endpoint
        assert isinstance(ep, SageMakerEndpoint)
        if not ep.cloudwatch.read:
            return
        name = url.rstrip("/").rsplit("/", 1)[1]
        self.pending.append(
            Watch(exp.name, where, ep.region, name, ep.variant_name, ep.cloudwatch, started_ns, ended_ns, expected)
        )

    async def read(self, stop: asyncio.Event) -> None:
        """Read every noted experiment, waiting (up to each one's wait_s, polling) for CloudWatch to publish its
        successful invocations; `stop` ends a wait early (what was published by then lands). Nothing here fails
        the run: a refusal is one line and no rows."""
        pending, self.pending = self.pending, []
        for watch in pending:
            if stop.is_set():
                self.say(
                    f"cloudwatch: endpoint {watch.endpoint_name} not read (the run was stopped); CloudWatch keeps "
                    "its metrics for 15 days"
                )
                continue
            await self._read(watch, stop)

    async def _read(self, watch: Watch, stop: asyncio.Event) -> None:
        settings = watch.settings
        session = aws_session(watch.region, f"{watch.where}.endpoint")
        client = control_client(session, "cloudwatch", settings.endpoint_url)
        began = time.monotonic()
        while True:
            try:
                points = await asyncio.to_thread(fetch, client, watch)
            except CloudWatchError as exc:
                self.say(
                    f"cloudwatch: endpoint {watch.endpoint_name}: {exc}; its CloudWatch view is skipped (reading it "
                    "needs cloudwatch:GetMetricData)"
                )
                return
            published = sum(p.get("cloudwatch_invocations", 0.0) for p in points.values())
            waited = time.monotonic() - began
            if published >= watch.expected:
                break
            if waited >= settings.wait_s or stop.is_set():
                self.say(
                    f"cloudwatch: endpoint {watch.endpoint_name}: {published:g} of {watch.expected} successful "
                    f"invocations published after {waited:.1f} s (cloudwatch.wait_s {settings.wait_s:g}); keeping "
                    "what there is"
                )
                break
            self.say(
                f"cloudwatch: endpoint {watch.endpoint_name}: {published:g} of {watch.expected} successful "
                f"invocations published; waiting ({waited:.0f} of {settings.wait_s:g} s)"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(settings.poll_interval_s, settings.wait_s - waited))
        for row in self.rows(watch, points):
            self.land(row)
        self.say(
            f"cloudwatch: endpoint {watch.endpoint_name}: {len(points)} period(s) of {settings.period_s} s landed "
            f"({published:g} invocations)"
        )

    def rows(self, watch: Watch, points: dict[int, dict[str, float]]) -> list[TelemetrySample]:
        # CloudWatch's wall-clock period starts on the run's monotonic clock, as the requests' offsets are.
        wall_at_base_ns = time.time_ns() - (time.perf_counter_ns() - self.base_perf_ns)
        hostname = socket.gethostname()
        return [
            TelemetrySample(
                run_id=self.run_id,
                sampled_at=iso_utc(start_s * 10**9),
                offset_ns=start_s * 10**9 - wall_at_base_ns,
                hostname=hostname,
                device="endpoint",
                source=SOURCE,
                experiment_name=watch.experiment_name,
                cloudwatch_period_s=float(watch.settings.period_s),
                **values,  # type: ignore[arg-type]
            )
            for start_s, values in sorted(points.items())
        ]
