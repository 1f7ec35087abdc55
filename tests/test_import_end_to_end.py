"""End to end: one of our simulator runs and each tool's file imported with the real CLI into one results folder,
then `collector build` (real dbt): the marts show every imported run beside ours with the figures hand-computed from
its fixture, and the Compare page shows an imported run and ours side by side."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from collector.landing import run_dirs
from collector.outputs import figures
from tests.conftest import PRICING, REPO, config_dict, run_cli, sim_experiment, write_config

pytestmark = pytest.mark.slow

FIXTURES = REPO / "tests" / "fixtures" / "imports"
APP = REPO / "streamlit_app" / "app.py"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BUCKET = "short"
IMPORTS = {
    # tool: (file, options): every import filed under our run's bucket, so Compare can set them side by side.
    "vllm": (
        FIXTURES / "vllm_bench_serve_detailed.json",
        ["--experiment-name", "vllm-bench", "--instance-type", "g5.4xlarge"],
    ),
    "guidellm": (FIXTURES / "guidellm_benchmarks.json", ["--instance-type", "g5.4xlarge"]),
    "aiperf": (FIXTURES / "aiperf" / "profile_export.jsonl", ["--instance-type", "g5.4xlarge"]),
    "fmbench": (FIXTURES / "fmbench_per_inference_request_results.csv", ["--model-id", MODEL]),
}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("imports")
    results = work / "results"
    cfg = write_config(
        work / "ours.yml",
        config_dict(
            [sim_experiment(name="llama8b-sim", concurrency_levels=[1, 2], requests_per_level=6)],
            run_name="ours",
        ),
    )
    proc = run_cli("run", "--config", str(cfg), "--results-dir", str(results), "--no-build", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ours,) = (d.name for d in run_dirs(results))
    runs = {"ours": ours}
    for tool, (file, options) in IMPORTS.items():
        before = {d.name for d in run_dirs(results)}
        proc = run_cli(
            "import",
            tool,
            str(file),
            "--payload-file",
            BUCKET,
            "--config",
            str(cfg),
            "--results-dir",
            str(results),
            "--no-build",
            *options,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        (runs[tool],) = {d.name for d in run_dirs(results)} - before
    proc = run_cli("build", "--results-dir", str(results), "--pricing-dir", str(PRICING), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return {"path": results / "tokenbench.duckdb", "runs": runs}


def _levels(warehouse: dict[str, Any], tool: str) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse["path"]), read_only=True)
    try:
        return con.execute(
            "select * from marts.fct_concurrency_metrics where run_id = ? order by concurrency",
            [warehouse["runs"][tool]],
        ).df()
    finally:
        con.close()


def _check(level: pd.Series, **expected: float | str | None) -> None:
    for column, value in expected.items():
        if value is None:
            assert pd.isna(level[column]), column
        elif isinstance(value, str):
            assert level[column] == value, column
        else:
            assert level[column] == pytest.approx(value, rel=1e-9), column


def test_the_marts_list_each_imported_run_with_its_tool_beside_ours(warehouse: dict[str, Any]) -> None:
    con = duckdb.connect(str(warehouse["path"]), read_only=True)
    try:
        runs = dict(con.execute("select run_id, source_tool from marts.dim_runs").fetchall())
        levels = con.execute(
            "select run_id, count(*) from marts.fct_concurrency_metrics where payload_file = ? group by run_id",
            [BUCKET],
        ).fetchall()
        quarantined = con.execute("select count(*) from marts.fct_quarantined_rows").fetchone()
    finally:
        con.close()
    assert runs == {run_id: (None if tool == "ours" else tool) for tool, run_id in warehouse["runs"].items()}
    assert dict(levels) == {
        warehouse["runs"]["ours"]: 2,
        warehouse["runs"]["vllm"]: 1,
        warehouse["runs"]["guidellm"]: 2,
        warehouse["runs"]["aiperf"]: 1,
        warehouse["runs"]["fmbench"]: 2,
    }
    assert quarantined == (0,)


def test_vllm_level_figures_are_those_of_its_file(warehouse: dict[str, Any]) -> None:
    (level,) = (row for _, row in _levels(warehouse, "vllm").iterrows())
    # Sends at 0, 0, 1.0 and 1.5 s; successes end at 1.0, 1.5 and 2.25 s (the timed-out one has no end): span 2.25 s.
    # 3 successes: 80/min; 15 completion tokens / 2.25 s; latencies 1.0, 1.25, 1.5 (p95 = 1.25 + 0.9 x 0.25);
    # TTFT 0.2, 0.25, 0.3; TPOT (1.0 - 0.2) / 4, (1.25 - 0.25) / 4, (1.5 - 0.3) / 4; g5.4xlarge at 1.624 $/h.
    # The failed request's slot time is unknown, so there is no steady state: the headline figures are the span's.
    _check(
        level,
        concurrency=2,
        throughput_window="level_span",
        request_count=4,
        error_count=1,
        error_rate=0.25,
        duration_s=2.25,
        transactions_per_minute=80.0,
        completion_token_throughput=15 / 2.25,
        prompt_token_throughput=330 / 2.25,
        latency_p50=1.25,
        latency_p95=1.475,
        ttft_p50=0.25,
        tpot_p50=0.25,
        price_per_txn=1.624 / 60 / 80,
    )


def test_guidellm_levels_figures_are_those_of_its_concurrency_benchmarks(warehouse: dict[str, Any]) -> None:
    sync, concurrent = (row for _, row in _levels(warehouse, "guidellm").iterrows())
    # synchronous: 0-0.5 and 0.5-1.0 s, 5 + 4 tokens; TPOT (0.5 - 0.125) / 4 and / 3. Both ran with one in
    # flight (the steady state): 1 x 2 x 60 / (0.5 + 0.5) s = 120/min, as over the span.
    _check(
        sync,
        concurrency=1,
        throughput_window="steady_state",
        request_count=2,
        error_count=0,
        duration_s=1.0,
        transactions_per_minute=120.0,
        completion_token_throughput=9.0,
        latency_p50=0.5,
        ttft_p50=0.125,
        tpot_p50=(0.09375 + 0.125) / 2,
    )
    # concurrent@2: the warm-up request before its window and the incomplete one are out; C 2.0-2.75, D 2.0-3.0,
    # E failed 2.75-2.875: span 1.0 s, 2 successes, 4 + 8 tokens (120/min, 12/s over it); TTFT 0.25, 0.375. The last
    # start is E's (2.75 s) and the first end after it E's too (2.875 s): C and E ran with 2 in flight, slot time
    # 0.75 + 0.125 s, 1 success: 2 x 1 x 60 / 0.875 per minute, 2 x 4 / 0.875 tokens/s (Little's law).
    _check(
        concurrent,
        concurrency=2,
        request_count=3,
        error_count=1,
        duration_s=1.0,
        span_transactions_per_minute=120.0,
        throughput_window="steady_state",
        transactions_per_minute=120 / 0.875,
        completion_token_throughput=8 / 0.875,
        latency_p50=0.875,
        ttft_p50=0.3125,
        price_per_txn=1.624 / 60 / (120 / 0.875),
    )


def test_aiperf_level_figures_are_those_of_its_records(warehouse: dict[str, Any]) -> None:
    (level,) = (row for _, row in _levels(warehouse, "aiperf").iterrows())
    # Profiling sends at 1.0, 1.0, 1.8 and 2.0 s; ends at 1.8, 2.0, 2.4 and 2.05 (the HTTP 500): span 1.4 s;
    # 3 successes, 8 + 10 + 6 tokens (180/1.4 per minute over the span); latencies 0.8, 1.0, 0.6; TPOT 0.6 / 7,
    # 0.7 / 9, 0.5 / 5. Steady state: up to the first end after the last start (2.05 s), the requests of 0.8, 1.0
    # and 0.05 s with 2 in flight: 2 x 2 x 60 / 1.85 per minute, 2 x 18 / 1.85 tokens/s.
    _check(
        level,
        concurrency=2,
        request_count=4,
        error_count=1,
        duration_s=1.4,
        span_transactions_per_minute=180 / 1.4,
        throughput_window="steady_state",
        transactions_per_minute=240 / 1.85,
        completion_token_throughput=36 / 1.85,
        latency_p50=0.8,
        ttft_p50=0.2,
        tpot_p50=0.6 / 7,
    )


def test_fmbench_levels_have_latencies_but_no_span_throughput_or_hourly_price(warehouse: dict[str, Any]) -> None:
    one, two = (row for _, row in _levels(warehouse, "fmbench").iterrows())
    _check(
        one,
        concurrency=1,
        request_count=2,
        error_count=0,
        latency_p50=1.0,
        ttft_p50=0.15,
        duration_s=None,
        transactions_per_minute=None,
        price_per_txn=None,
    )
    _check(two, concurrency=2, request_count=2, error_count=1, error_rate=0.5, latency_p50=1.5, ttft_p50=None)


@pytest.fixture
def app(warehouse: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("TOKENBENCH_WAREHOUSE", str(warehouse["path"]))
    return AppTest.from_file(str(APP), default_timeout=60)


def test_compare_page_shows_an_imported_run_beside_ours(app: AppTest, warehouse: dict[str, Any]) -> None:
    ours, theirs = warehouse["runs"]["ours"], warehouse["runs"]["vllm"]
    app.run()
    app.switch_page("views/compare.py").run()
    app.multiselect(key="cmp_runs").set_value([ours, theirs]).run()
    assert not app.exception, [e.value for e in app.exception]
    # The per-level table (the page also states each series' model and serving once, in a table of its own).
    (every,) = [e.value for e in app.dataframe if {"Series", figures.label("concurrency")} <= set(e.value.columns)]
    series = every["Series"].astype(str)
    assert series.str.startswith("llama8b-sim · ours").sum() == 2  # our two levels
    (imported,) = every[series.str.startswith("vllm-bench · vllm-import")].index
    assert every.loc[imported, figures.label("transactions_per_minute")] == pytest.approx(80.0)
    assert every.loc[imported, figures.label("concurrency")] == 2
