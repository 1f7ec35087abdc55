"""End to end: configs/bedrock-vs-sagemaker-vs-ec2.yml, its endpoints pointed at loopback servers (Bedrock runtime,
a SageMaker endpoint the collector deploys and deletes on the loopback control plane, its CloudWatch on moto, and
the EC2 host's vLLM OpenAI API played by the simulator), run by the CLI and built by dbt: the three ways to serve
the model side by side on one bucket with their pricing models, prices checked against the raw rows by hand, and
the app's Compare page showing them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from collector.outputs import figures, tables
from collector.sim.aws import AwsLoopback
from tests.app.app_helpers import APP, mart, texts
from tests.aws.loopback import FAKE_CREDENTIALS, moto_server, publishing_after, serve_aws
from tests.conftest import PRICING, REPO

pytestmark = pytest.mark.slow

CONFIG = REPO / "configs" / "bedrock-vs-sagemaker-vs-ec2.yml"
BUCKET = "en_500-1000"  # the config's dataset of interest
# The frozen prices of the config's three experiments.
USD_PER_1M_TOKENS = 0.22  # meta.llama3-1-8b-instruct-v1:0, input and output
USD_PER_HOUR = {"sagemaker-lmi-g5-2xlarge": 1.515, "ec2-vllm-g5-2xlarge": 1.212}  # ml.g5.2xlarge, g5.2xlarge
LEVELS, REQUESTS, WARMUP = [1, 2], 6, 1


def loopback_copy(url: str, cloudwatch_url: str) -> dict[str, Any]:
    """The shipped config with every endpoint on loopback, fewer requests, and the frozen prices."""
    cfg = yaml.safe_load(CONFIG.read_text())
    bedrock, sagemaker, ec2 = cfg["experiments"]
    bedrock["endpoint"].update(endpoint_url=url, retry_base_s=0.01)
    sagemaker["endpoint"].update(
        endpoint_url=url,
        cloudwatch={"endpoint_url": cloudwatch_url, "wait_s": 60, "poll_interval_s": 0.2},  # 60 s periods
    )
    sagemaker["endpoint"]["deploy"].update(control_endpoint_url=url, poll_interval_s=0.05)
    ec2["endpoint"].update(base_url=f"{url}/v1", served_model_name="sim-model")
    for exp in cfg["experiments"]:
        exp.update(concurrency_levels=LEVELS, requests_per_level=REQUESTS, warmup_requests_per_level=WARMUP)
    cfg["pricing_dir"] = str(PRICING)
    return cfg


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("three-ways")
    state = AwsLoopback(sagemaker_endpoints={}, deployed_format="djl")  # the config's LMI container speaks djl
    sagemaker_requests = len(LEVELS) * 2 * (REQUESTS + WARMUP)  # two buckets
    # Fake credentials only, whatever the machine has: no AWS_* of its own reaches the collector.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(work / "no-config"))
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(work / "no-credentials")
    with (
        moto_server() as cw,
        serve_aws(state) as url,
        publishing_after(state, cw, invocations=sagemaker_requests),
    ):
        cfg = work / "bedrock-vs-sagemaker-vs-ec2.yml"
        cfg.write_text(yaml.safe_dump(loopback_copy(url, cw), sort_keys=False))
        results = work / "results"
        done = subprocess.run(
            [sys.executable, "-m", "collector", "run", "--config", str(cfg), "--results-dir", str(results)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"warehouse": results / "tokenbench.duckdb", "state": state, "stderr": done.stderr}


@pytest.fixture
def app_on(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AppTest]:
    """An AppTest of the real app reading `warehouse`, with query parameters set, not yet run."""

    def make(warehouse: Path, **query_params: str) -> AppTest:
        monkeypatch.setenv("TOKENBENCH_WAREHOUSE", str(warehouse))
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in query_params.items():
            at.query_params[key] = value
        return at

    return make


def test_bedrock_sagemaker_and_ec2_are_recommended_side_by_side_with_their_pricing_models_and_hand_checked_prices(
    three_ways: dict[str, Any],
) -> None:
    warehouse = three_ways["warehouse"]
    recs = mart(
        warehouse,
        "select experiment_name, pricing_model, pricing_kind, has_recommendation, concurrency, price_per_txn, "
        "transactions_per_minute from marts.fct_recommendations where payload_file = ? order by experiment_name",
        [BUCKET],
    )
    assert recs[["experiment_name", "pricing_model", "pricing_kind"]].values.tolist() == [
        ["bedrock-on-demand", "token", "token"],
        ["ec2-vllm-g5-2xlarge", "instance-hour", "instance"],
        ["sagemaker-lmi-g5-2xlarge", "instance-hour", "instance"],
    ]
    assert recs["has_recommendation"].all() and (recs["concurrency"] == 2).all()  # every level within budget
    for _, rec in recs.iterrows():
        name = rec["experiment_name"]
        raw = mart(
            warehouse,
            "select avg(prompt_tokens), avg(completion_tokens) from raw.requests where experiment_name = ? "
            "and payload_file = ? and concurrency = 2 and not is_warmup and status = 'success'",
            [name, BUCKET],
        ).iloc[0]
        if rec["pricing_model"] == "token":  # the mean transaction's tokens at the per-token price
            expected = (raw.iloc[0] + raw.iloc[1]) * USD_PER_1M_TOKENS / 1e6
        else:  # one instance's hour over the transactions it served in an hour
            expected = USD_PER_HOUR[name] / 60 / rec["transactions_per_minute"]
        assert rec["price_per_txn"] == pytest.approx(expected, rel=1e-12), name
    costs = mart(warehouse, "select experiment_name, pricing_model, cost_usd from marts.fct_experiment_costs")
    spans = mart(
        warehouse,
        "select experiment_name, (max(start_offset_ns + e2e_ns) - min(start_offset_ns)) / 1e9 as span_s, "
        "sum(prompt_tokens + completion_tokens) filter (where status = 'success') as tokens "
        "from raw.requests group by experiment_name",
    ).set_index("experiment_name")
    for _, cost in costs.iterrows():
        span_s, tokens = spans.loc[cost["experiment_name"], ["span_s", "tokens"]]
        if cost["pricing_model"] == "token":
            assert cost["cost_usd"] == pytest.approx(tokens * USD_PER_1M_TOKENS / 1e6, rel=1e-12)
        else:  # warm-up included, first send to last end
            assert cost["cost_usd"] == pytest.approx(USD_PER_HOUR[cost["experiment_name"]] * span_s / 3600, rel=1e-9)


def test_each_way_to_serve_has_its_server_side_view_beside_the_clients(three_ways: dict[str, Any]) -> None:
    warehouse, state = three_ways["warehouse"], three_ways["state"]
    sources = mart(
        warehouse,
        "select experiment_name, min(server_view_source) as source, count(*) as levels "
        "from marts.fct_level_server_view group by experiment_name order by experiment_name",
    )
    assert sources.values.tolist() == [
        ["bedrock-on-demand", "service:bedrock", 4],
        ["ec2-vllm-g5-2xlarge", "server:vllm", 4],
        ["sagemaker-lmi-g5-2xlarge", "cloudwatch:sagemaker", 4],
    ]
    # Bedrock: the mean of the latency the service reported, per level, as its raw rows hold it.
    bedrock = mart(
        warehouse,
        "select v.server_mean_e2e_s, r.reported from marts.fct_level_server_view v join ("
        "  select payload_file, concurrency, avg(server_latency_ms) / 1e3 as reported from raw.requests"
        "  where experiment_name = 'bedrock-on-demand' and not is_warmup and status = 'success'"
        "  group by all) r using (payload_file, concurrency) where v.experiment_name = 'bedrock-on-demand'",
    )
    assert len(bedrock) == 4
    assert bedrock["server_mean_e2e_s"].tolist() == pytest.approx(bedrock["reported"].tolist(), rel=1e-12)
    # SageMaker: CloudWatch counted every invocation the deployed endpoint served, after it was deleted.
    published = mart(
        warehouse,
        "select sum(cloudwatch_invocations) from raw.telemetry_samples where source = 'cloudwatch:sagemaker'",
    ).iloc[0, 0]
    assert published == len(state.invocations) == 2 * len(LEVELS) * (REQUESTS + WARMUP)
    stderr = three_ways["stderr"]
    assert stderr.index("sagemaker: deleted endpoint") < stderr.index("cloudwatch: endpoint tokenbench-")


def test_the_compare_page_shows_the_three_side_by_side_with_their_pricing_models(
    app_on: Callable[..., AppTest], three_ways: dict[str, Any]
) -> None:
    at = app_on(three_ways["warehouse"], cmp_bucket=BUCKET)
    at.run()
    at.switch_page("views/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"Recommended level per experiment on `{BUCKET}`" in texts(at)
    shown = next(e.value for e in at.dataframe if "Figure" in e.value.columns).set_index("Figure")
    names = ["bedrock-on-demand", "ec2-vllm-g5-2xlarge", "sagemaker-lmi-g5-2xlarge"]
    assert list(shown.columns[:3]) == names
    assert shown.loc[figures.label("pricing_model")].tolist()[:3] == ["token", "instance-hour", "instance-hour"]
    recs = mart(
        three_ways["warehouse"],
        "select experiment_name, cost_per_10k_txn from marts.fct_recommendations where payload_file = ? "
        "order by experiment_name",
        [BUCKET],
    )
    cost = figures.figure("cost_per_10k_txn")
    assert shown.loc[cost.header].tolist()[:3] == [cost.text(v) for v in recs["cost_per_10k_txn"]]


def test_the_sweep_pages_server_table_shows_each_ones_source_and_bedrocks_reported_latency(
    app_on: Callable[..., AppTest], three_ways: dict[str, Any]
) -> None:
    at = app_on(three_ways["warehouse"], sweep_bucket=BUCKET)
    at.run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "the latency Bedrock reported for each of the level's measured requests" in texts(at)
    shown = next(e.value for e in at.dataframe if tables.TOKEN_TOTALS in e.value.columns)
    view = mart(
        three_ways["warehouse"],
        "select * from marts.fct_level_server_view where payload_file = ? order by experiment_name, concurrency",
        [BUCKET],
    )
    source = figures.label("server_view_source")
    assert shown[source].tolist() == [
        *["bedrock reported latency"] * 2,
        *["vllm /metrics"] * 2,
        *["sagemaker CloudWatch"] * 2,
    ]
    server = figures.figure("server_mean_e2e_s")
    shown_server = [None if pd.isna(v) else v for v in shown[server.header]]
    assert shown_server == [server.value(v) for v in view["server_mean_e2e_s"]]
    assert all(v is not None for v in shown_server[:4])  # Bedrock's and the engine's levels have one
    # The loopback's SageMaker levels last well under a minute: no whole 60 s CloudWatch period lies inside one, so
    # CloudWatch's figures stay empty (their columns left out) and the period count says why.
    periods = figures.header("cloudwatch_period_count")
    assert [None if pd.isna(v) else v for v in shown[periods]] == [None] * 4 + [0, 0]
    assert figures.header("server_mean_model_latency_s") not in shown.columns
