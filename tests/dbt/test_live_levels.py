"""A run landed since the last build: the app lists it (`is_live`) and shows its levels so far from the raw rows,
marked provisional. The live level figures restate int_levels_aggregated's SQL over raw.requests; the twin
test holds them equal to the marts once the run is built, on every level of runs A and B."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from collector.outputs import figures, queries
from collector.warehouse import refresh
from tests.dbt.builders import REPO, RUN_A, RUN_B, Experiment, Req, RunSpec, land_run

pytestmark = pytest.mark.slow

LIVE_COLUMNS = (
    "request_count",
    "success_count",
    "error_count",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "ttft_p50",
    "prompt_token_throughput",
    "completion_token_throughput",
    "transactions_per_minute",
    "is_p95_undersampled",
    "is_p99_undersampled",
)
KEY = ["experiment_name", "payload_file", "concurrency"]

# Landed after the build, still running: c=1 measured (3 requests, one timed out), c=2 under way.
RUNNING = RunSpec(
    run_id="20261126T140000Z-running",
    run_name="running",
    status="running",
    experiments=[Experiment("vllm", usd_per_hour=1.624)],
    requests=[
        Req("vllm", "big", 1, 0.0, 0.5, ttft_s=0.1, is_warmup=True),
        Req("vllm", "big", 1, 0.5, 0.4, ttft_s=0.1),
        Req("vllm", "big", 1, 0.9, 0.6, ttft_s=0.1),
        Req("vllm", "big", 1, 1.5, 1.5, status="error", error_type="timeout", http_status=None),
        Req("vllm", "big", 2, 3.0, 0.8, ttft_s=0.2),
    ],
    planned={"vllm": (["big"], [1, 2, 4])},
)


@pytest.mark.parametrize("run_id", [RUN_A, RUN_B])
def test_live_levels_equal_the_marts_once_built(built: Path, run_id: str) -> None:
    live = queries.live_levels(built, run_id).set_index(KEY).sort_index()
    marts = queries.level_metrics(built, [run_id]).set_index(KEY).sort_index()
    assert list(live.index) == list(marts.index)
    for column in LIVE_COLUMNS:
        pd.testing.assert_series_equal(
            live[column].astype(float), marts[column].astype(float), check_names=False, rtol=1e-12, obj=column
        )


@pytest.fixture(scope="module")
def with_running(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built warehouse, and a run landed after its build (raw views refreshed, as `collector run` does)."""
    results = tmp_path_factory.mktemp("live") / "results"
    shutil.copytree(built.parent, results, ignore=shutil.ignore_patterns(".dbt"))
    land_run(results, RUNNING, compact=False)  # JSONL, as while a sweep runs
    return refresh(results)


def test_a_run_landed_since_the_build_is_listed_live_with_its_plan(with_running: Path) -> None:
    runs = queries.runs(with_running).set_index("run_id")
    assert runs.loc[RUNNING.run_id, "is_live"] and not runs.loc[RUN_A, "is_live"]
    assert runs.loc[RUNNING.run_id, ["status", "planned_level_count", "simulated_experiment_count"]].tolist() == [
        "running",
        3,
        1,
    ]
    levels = queries.live_levels(with_running, RUNNING.run_id)
    assert levels[["concurrency", "request_count", "error_count"]].values.tolist() == [[1, 3, 1], [2, 1, 0]]
    assert levels["latency_p50"].tolist() == [0.5, 0.8]  # successes only, warm-up excluded


@pytest.fixture
def app_on(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path, str], AppTest]:
    def run(warehouse: Path, run_id: str) -> AppTest:
        monkeypatch.setenv("TOKENBENCH_WAREHOUSE", str(warehouse))
        at = AppTest.from_file(str(REPO / "streamlit_app" / "app.py"), default_timeout=60)
        at.query_params["run"] = run_id
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def test_the_app_shows_a_running_sweeps_levels_as_provisional(
    with_running: Path, app_on: Callable[[Path, str], AppTest]
) -> None:
    at = app_on(with_running, RUNNING.run_id)
    assert "not built yet" in at.sidebar.selectbox(key="run_picker").format_func(RUNNING.run_id)
    assert any(w.value.startswith("**Provisional.**") for w in at.warning)
    assert any("**2 of 3 planned levels** have measured requests so far" in m.value for m in at.markdown)
    (table,) = [d.value for d in at.dataframe]
    assert table[figures.header("request_count")].tolist() == [3, 1]
    assert table[figures.header("latency_p50")].tolist() == [0.5, 0.8]
