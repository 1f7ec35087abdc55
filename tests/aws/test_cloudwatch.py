"""A SageMaker endpoint's CloudWatch view through the real boto3 CloudWatch client: moto's CloudWatch on loopback
holds what the loopback SageMaker runtime served (published by the test, late, as CloudWatch publishes), and the
collector waits for it after the sweep, lands it in raw.telemetry_samples and the marts put it beside the client's
latency. Figures are checked against the loopback's own record of each invocation."""

from __future__ import annotations

import contextlib
import io
import math
import re
import sys
import threading
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pytest

from collector.runner import collect
from collector.sim.aws import AwsLoopback, Invocation
from tests.aws.loopback import gpu_percent, moto_server, publishing_after, serve_aws
from tests.aws.test_sagemaker import deploy, rows, sagemaker_experiment
from tests.conftest import config_dict, run_cli, write_config


def watched(url: str, cloudwatch_url: str, endpoint: dict[str, Any] | None = None, **cloudwatch: Any) -> dict[str, Any]:
    """A SageMaker experiment whose CloudWatch view is read from `cloudwatch_url` in 1 s periods."""
    settings = {"endpoint_url": cloudwatch_url, "period_s": 1, "wait_s": 30, "poll_interval_s": 0.2, **cloudwatch}
    return sagemaker_experiment(url, cloudwatch=settings, **(endpoint or {}))


class Watching(io.TextIOBase):
    """A stream that passes what is written on to `inner` and sets `seen` once `text` has been written."""

    def __init__(self, inner: TextIO, text: str, seen: threading.Event) -> None:
        self.inner, self.text, self.seen = inner, text, seen

    def write(self, s: str) -> int:
        if self.text in s:
            self.seen.set()
        return self.inner.write(s)

    def flush(self) -> None:
        self.inner.flush()


def by_period(invocations: list[Invocation]) -> dict[int, list[Invocation]]:
    """The loopback's invocations grouped by the 1 s period CloudWatch files them under."""
    out: dict[int, list[Invocation]] = defaultdict(list)
    for inv in invocations:
        out[math.floor(inv.received_at_s)].append(inv)
    return out


CLOUDWATCH_ROWS = (
    "select epoch(sampled_at)::bigint, cloudwatch_period_s, cloudwatch_invocations, "
    "cloudwatch_invocations_per_instance, cloudwatch_model_latency_sum_s, cloudwatch_model_latency_count, "
    "cloudwatch_overhead_latency_sum_s, cloudwatch_overhead_latency_count, cloudwatch_gpu_utilization_percent, "
    "cloudwatch_gpu_memory_utilization_percent, experiment_name, device "
    "from raw.telemetry_samples where source = 'cloudwatch:sagemaker' order by sampled_at"
)


def test_the_collector_waits_for_cloudwatch_and_lands_each_period_as_sagemaker_published_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"})
    waiting = threading.Event()
    # CloudWatch publishes only once the collector has said it is waiting, however long its first read took.
    with (
        moto_server() as cw,
        serve_aws(state) as url,
        publishing_after(state, cw, invocations=10, delay_s=0, once=waiting),
        contextlib.redirect_stderr(Watching(sys.stderr, "published; waiting", waiting)),
    ):
        exp = watched(url, cw)
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "completed", outcome.error
    err = capsys.readouterr().err
    assert re.search(
        r"cloudwatch: endpoint llama-tgi: 0 of 10 successful invocations published; waiting \(\d+ of 30 s\)", err
    )
    periods = by_period(state.invocations)
    assert f"cloudwatch: endpoint llama-tgi: {len(periods)} period(s) of 1 s landed (10 invocations)" in err
    landed = rows(tmp_path / "results", CLOUDWATCH_ROWS)
    assert [r[0] for r in landed] == sorted(periods)
    for start, period, invocations, per_instance, ml_sum, ml_n, ol_sum, ol_n, gpu, gpu_mem, name, device in landed:
        mine = periods[start]
        assert (period, invocations, per_instance, ml_n, ol_n) == (1.0, len(mine), len(mine), len(mine), len(mine))
        assert ml_sum == pytest.approx(sum(i.model_latency_us for i in mine) / 1e6, rel=1e-9)
        assert ol_sum == pytest.approx(sum(i.overhead_latency_us for i in mine) / 1e6, rel=1e-9)
        assert gpu == pytest.approx(sum(gpu_percent(i) for i in mine) / len(mine), rel=1e-12)
        assert gpu_mem == pytest.approx(gpu / 2, rel=1e-12)
        assert (name, device) == ("sm", "endpoint")


def test_cloudwatch_that_never_publishes_is_waited_for_no_longer_than_wait_s_and_the_run_completes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"})
    with moto_server() as cw, serve_aws(state) as url:
        exp = watched(url, cw, wait_s=0.5)
        started = datetime.now()
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
        took = (datetime.now() - started).total_seconds()
    assert outcome.status == "completed", outcome.error
    waits = re.findall(r"^cloudwatch: endpoint llama-tgi: (.*)$", capsys.readouterr().err, re.MULTILINE)
    assert waits[0] == "0 of 10 successful invocations published; waiting (0 of 0.5 s)"
    gave_up = re.fullmatch(
        r"0 of 10 successful invocations published after ([0-9.]+) s "
        r"\(cloudwatch\.wait_s 0\.5\); keeping what there is",
        waits[-2],
    )
    assert gave_up is not None, waits[-2]
    assert float(gave_up.group(1)) >= 0.5  # how much longer, a busy machine decides: the bound is `took` below
    assert waits[-1] == "0 period(s) of 1 s landed (0 invocations)"
    assert rows(tmp_path / "results", "select count(*) from raw.telemetry_samples where source like 'cloud%'") == [(0,)]
    assert took < 60


def test_cloudwatch_refusing_get_metric_data_is_one_line_and_the_run_keeps_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"}, cloudwatch_denied=True)
    with serve_aws(state) as url:
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([watched(url, url)])), tmp_path / "results")
    assert outcome.status == "completed", outcome.error
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cloudwatch:")]
    assert lines == [
        "cloudwatch: endpoint llama-tgi: GetMetricData refused (HTTP 403 AccessDenied: User: "
        "arn:aws:iam::123456789012:user/bench is not authorized to perform: cloudwatch:GetMetricData because no "
        "identity-based policy allows the action); its CloudWatch view is skipped (reading it needs "
        "cloudwatch:GetMetricData)"
    ]
    assert rows(tmp_path / "results", "select count(*) from raw.requests where status = 'success'") == [(10,)]


def test_an_endpoint_deleted_mid_sweep_fails_the_run_in_one_line_keeps_its_rows_and_cloudwatch_still_has_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = AwsLoopback(sagemaker_endpoints={}, delete_after_invocations=3)
    with moto_server() as cw, serve_aws(state) as url, publishing_after(state, cw, invocations=3, delay_s=0.3):
        exp = watched(url, cw, {"deploy": deploy(url)}, wait_s=20)
        outcome = collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "failed"
    name = state.invocations[0].endpoint_name
    assert outcome.error == (
        f"experiments[0] (sm): SageMaker endpoint {name}: HTTP 400 ValidationError: Endpoint {name} of account "
        "123456789012 not found."
    )
    err = capsys.readouterr().err
    # The endpoint was gone already; its config and model were still deleted.
    assert f"sagemaker: deleted endpoint config and model {name} (the endpoint already gone)" in err
    assert (state.models, state.endpoint_configs, state.endpoints) == (set(), set(), {})
    landed = rows(tmp_path / "results", "select count(*), count(*) filter (where status = 'success') from raw.requests")
    assert landed == [(state.received, 3)]
    published = rows(
        tmp_path / "results",
        "select sum(cloudwatch_invocations) from raw.telemetry_samples where source = 'cloudwatch:sagemaker'",
    )
    assert published == [(3.0,)]


@pytest.mark.slow
def test_the_server_view_mart_gives_a_level_cloudwatchs_latency_over_the_whole_periods_inside_its_window(
    tmp_path: Path,
) -> None:
    # Slow requests (about 0.3 s each), ten in a row: the level spans about 3 s, so whole 1 s periods lie inside it.
    state = AwsLoopback(sagemaker_endpoints={"llama-tgi": "tgi"})
    with moto_server() as cw, serve_aws(state, speedup=2) as url, publishing_after(state, cw, invocations=11):
        exp = watched(url, cw)
        exp.update(concurrency_levels=[1], requests_per_level=10, warmup_requests_per_level=1)
        cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
        done = run_cli("run", "--config", str(cfg), "--results-dir", str(tmp_path / "results"), timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = tmp_path / "results"
    ((start, end, client_mean),) = rows(
        results,
        "select min(start_offset_ns), max(start_offset_ns + e2e_ns), avg(e2e_ns) / 1e9 from raw.requests "
        "where not is_warmup",
    )
    inside = [
        wall
        for wall, offset in rows(
            results,
            "select epoch(sampled_at)::bigint, offset_ns from raw.telemetry_samples "
            "where source = 'cloudwatch:sagemaker' order by offset_ns",
        )
        if offset >= start and offset + 1_000_000_000 <= end
    ]
    assert len(inside) >= 2
    counted = [i for i in state.invocations if math.floor(i.received_at_s) in inside]
    view = rows(
        results,
        "select server_view_source, cloudwatch_period_count, server_finished_requests, server_mean_model_latency_s, "
        "server_mean_overhead_latency_s, server_mean_e2e_s, client_mean_e2e_s, e2e_gap_s, "
        "server_mean_gpu_utilization_percent from marts.fct_level_server_view",
    )
    assert len(view) == 1
    source, periods, finished, model_s, overhead_s, server_s, client_s, gap_s, gpu = view[0]
    model = sum(i.model_latency_us for i in counted) / len(counted) / 1e6
    overhead = sum(i.overhead_latency_us for i in counted) / len(counted) / 1e6
    gpu_by_period = [
        sum(gpu_percent(i) for i in counted if math.floor(i.received_at_s) == p)
        / sum(math.floor(i.received_at_s) == p for i in counted)
        for p in inside
    ]
    assert (source, periods, finished) == ("cloudwatch:sagemaker", len(inside), len(counted))
    assert model_s == pytest.approx(model, rel=1e-9) and overhead_s == pytest.approx(overhead, rel=1e-9)
    assert server_s == pytest.approx(model + overhead, rel=1e-9)
    assert client_s == pytest.approx(client_mean, rel=1e-9) and gap_s == pytest.approx(client_s - server_s, rel=1e-9)
    assert gpu == pytest.approx(sum(gpu_by_period) / len(gpu_by_period), rel=1e-9)


@pytest.mark.parametrize("period_s", [45, 90])
def test_a_period_cloudwatch_does_not_take_is_a_config_error_naming_the_field(tmp_path: Path, period_s: int) -> None:
    from tests.conftest import config_error

    exp = sagemaker_experiment("http://127.0.0.1:9", cloudwatch={"period_s": period_s})
    msg = config_error(tmp_path, cfg=config_dict([exp]))
    assert msg.endswith(
        f"bad.yml: experiments[0].endpoint.cloudwatch: period_s {period_s}: CloudWatch takes 1, 5, 10, 30 or a "
        "multiple of 60"
    )
