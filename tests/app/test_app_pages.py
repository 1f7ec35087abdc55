"""Each page of the app on the end-to-end run's warehouse shows the marts' figures (AppTest, no browser)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from collector.outputs import charts, figures, sentences
from streamlit_app import ui
from tests.app.app_helpers import charts_of, mart, texts, warehouse_copy

pytestmark = pytest.mark.slow


def _experiments(cfg: dict[str, Any]) -> list[str]:
    return sorted(e["name"] for e in cfg["experiments"])


def _run(at: AppTest, page: str | None = None) -> AppTest:
    at.run()
    if page is not None:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _dataframe(at: AppTest, column: str) -> pd.DataFrame:
    """The one table on the page with this column (or index name)."""
    frames = [e.value for e in [*at.dataframe, *at.table]]
    (frame,) = [f for f in frames if column in f.columns or f.index.name == column]
    return frame


@pytest.fixture(scope="module")
def cfg(e2e_run: dict[str, Any]) -> dict[str, Any]:
    """The config the end-to-end run was started with (tests/conftest.py's e2e_config, as written)."""
    return yaml.safe_load(e2e_run["config"].read_text())


@pytest.fixture
def best(e2e_run: dict[str, Any]) -> pd.Series:
    rows = mart(e2e_run["warehouse"], "select * from marts.fct_recommendations where is_best_price_performance")
    assert len(rows) == 1, "the e2e budgets should leave one best price-performance row"
    return rows.iloc[0]


def test_summary_information_table_shows_the_best_rows_figures(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], best: pd.Series, cfg: dict[str, Any]
) -> None:
    at = _run(app_on(e2e_run["warehouse"]))
    assert at.title[0].value == "Results for performance benchmarking meta-llama/Llama-3.1-8B-Instruct (simulated)"
    assert " · simulated (" in at.sidebar.selectbox[0].format_func(at.sidebar.selectbox[0].value)
    info = _dataframe(at, "Information")["Value"]  # a full table, indexed by Information
    assert info["Experiment"] == best["experiment_name"]
    assert info["Payload bucket"] == cfg["report"]["dataset_of_interest"]
    assert info["Transactions/min"] == figures.plain(best["transactions_per_minute"])
    assert info["Price per transaction"] == figures.figure("price_per_txn").text(best["price_per_txn"])
    assert info["Requests"] == f"{best['request_count']} ({best['success_count']} succeeded)"
    # TTFT in milliseconds; the e2e levels have under 20 requests, so p95 and p99 carry the mark.
    ttft = [figures.plain(best[f"ttft_{p}"] * 1000) for p in ("p50", "p95", "p99")]
    assert info["TTFT p50 / p95 / p99"] == f"{ttft[0]} / {ttft[1]}† / {ttft[2]}† ms"
    assert sentences.UNDERSAMPLED_NOTE in texts(at)
    assert ui.escape_dollars(sentences.best_price_performance(best)) in texts(at)


def test_summary_failed_experiments_match_the_mart_and_flag_the_missed_budget(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any]
) -> None:
    failed = mart(
        e2e_run["warehouse"],
        "select * from marts.fct_failed_experiments order by is_dataset_of_interest desc, experiment_name, "
        "payload_file, concurrency",
    )
    at = _run(app_on(e2e_run["warehouse"]))
    shown = _dataframe(at, "Missed budgets")
    assert len(shown) == len(failed) > 0
    assert f"{len(failed)} levels missed at least one configured budget: latency p95 ≤ 0.3 s" in texts(at)
    # Numbers stay numbers (the table sorts them), rounded by the precision rule.
    assert list(shown["Latency p95 (s)"]) == [figures.rounded(v) for v in failed["latency_p95"]]
    assert list(shown["Missed budgets"]) == list(failed["missed_budgets"])


def test_summary_lists_every_recommendation_sentence_and_the_cost(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], cfg: dict[str, Any]
) -> None:
    recs = mart(e2e_run["warehouse"], "select * from marts.fct_recommendations")
    costs = mart(e2e_run["warehouse"], "select sum(cost_usd) as total from marts.fct_experiment_costs")
    at = _run(app_on(e2e_run["warehouse"]))
    shown = _dataframe(at, "Recommendation")
    assert sorted(shown["Recommendation"]) == sorted(sentences.recommendation(r) for _, r in recs.iterrows())
    assert len(shown) == len(_experiments(cfg)) * len(cfg["payloads"])
    total = ui.escape_dollars(figures.figure("cost_usd").text(costs["total"].iloc[0]))
    assert f"The total cost for running all experiments is {total}." in texts(at)
    endpoint = _dataframe(at, "Measure")
    assert set(endpoint["Experiment"]) <= set(_experiments(cfg)) and "Host CPU (%)" in set(endpoint["Measure"])


def test_sweep_charts_draw_the_marts_levels_and_the_latency_budget(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], cfg: dict[str, Any]
) -> None:
    levels = mart(
        e2e_run["warehouse"],
        "select * from marts.fct_concurrency_metrics where payload_file = ? order by experiment_name, concurrency",
        [cfg["report"]["dataset_of_interest"]],
    )
    at = _run(app_on(e2e_run["warehouse"]), "sweep")
    charts = {c["title"] or f"untitled {i}": c for i, c in enumerate(charts_of(at))}
    latency = charts["Concurrency vs latency (p50, p95, p99)"]
    frames = list(latency["datasets"].values())
    budget = next(f for f in frames if "latency_budget_s" in f.columns)
    assert budget["latency_budget_s"].tolist() == [cfg["report"]["latency_budget_s"]]
    points = next(f for f in frames if "latency_s" in f.columns)
    p95 = points[points["percentile"] == "p95"].sort_values(["experiment_name", "concurrency"])
    assert p95["latency_s"].round(9).tolist() == levels["latency_p95"].round(9).tolist()
    assert any(t.startswith("Price performance") for t in charts)
    assert len(charts) == 4  # no request failed: the error-rate chart says so instead of drawing zeros
    assert "No request failed: the error rate is 0 at every level" in texts(at)
    verdicts = _dataframe(at, "All budgets")
    assert verdicts["All budgets"].tolist() == ["pass" if v else "FAIL" for v in levels["meets_all_budgets"]]
    assert verdicts["Requests"].tolist() == levels["request_count"].tolist()


def test_requests_concurrency_filter_narrows_the_table_and_the_counts(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], cfg: dict[str, Any]
) -> None:
    at = _run(app_on(e2e_run["warehouse"]), "requests")
    at.multiselect(key="req_concurrency").set_value([4]).run()
    rows = _dataframe(at, "request_id")
    per_level = cfg["experiments"][0]["requests_per_level"]
    assert set(rows["concurrency"]) == {4}
    assert len(rows) == len(_experiments(cfg)) * len(cfg["payloads"]) * per_level  # warm-up excluded
    assert at.metric[0].value == str(len(rows))
    assert len(charts_of(at)) == 3  # latency, TTFT and TPOT histograms


def test_requests_filters_are_restored_from_a_shared_link(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], cfg: dict[str, Any]
) -> None:
    at = app_on(e2e_run["warehouse"])
    at.run()
    at.switch_page("views/requests.py")
    at.query_params["req_experiment"] = _experiments(cfg)[1]
    at.query_params["req_status"] = "success"
    at.run()
    assert not at.exception
    assert at.multiselect(key="req_experiment").value == [_experiments(cfg)[1]]
    assert set(_dataframe(at, "request_id")["experiment_name"]) == {_experiments(cfg)[1]}


def _series_chart(at: AppTest) -> dict[str, Any]:
    """The telemetry time-series chart: its panel titles, its samples frame and its level-window frame."""
    (chart,) = [c for c in charts_of(at) if "over the run" in str(c["spec"].get("title"))]
    frames = list(chart["datasets"].values())
    (samples,) = [f for f in frames if "seconds_since_run_start" in f.columns]
    (windows,) = [f for f in frames if "level" in f.columns]
    titles = [panel["title"] for panel in chart["spec"]["vconcat"]]
    return {"titles": titles, "samples": samples, "windows": windows}


def test_telemetry_page_draws_every_sample_over_time_with_each_level_window_labelled(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any]
) -> None:
    samples = mart(
        e2e_run["warehouse"],
        "select * from marts.fct_telemetry_samples where run_id = ? order by offset_ns",
        [e2e_run["run_id"]],
    )
    windows = mart(e2e_run["warehouse"], "select * from marts.fct_endpoint_metrics order by window_start_offset_ns")
    at = _run(app_on(e2e_run["warehouse"]), "telemetry")
    series = _series_chart(at)
    assert len(series["samples"]) == len(samples) > 0
    assert series["samples"]["seconds_since_run_start"].round(9).tolist() == (
        samples["seconds_since_run_start"].round(9).tolist()
    )
    assert series["samples"]["cpu_percent"].round(9).tolist() == samples["cpu_percent"].round(9).tolist()
    assert sorted(series["windows"]["level"]) == sorted(f"c={c}" for c in windows["concurrency"])
    assert series["windows"]["start_s"].round(9).tolist() == (windows["window_start_offset_ns"] / 1e9).round(9).tolist()
    assert series["titles"][:2] == ["Host CPU (%)", "Host memory used (GiB)"]
    assert (charts.NO_GPU_TELEMETRY in texts(at)) == (samples["gpu_count"].max() == 0)
    # The per-level five-number table stays below the series.
    shown = _dataframe(at, "Measure")
    cpu = shown[shown["Measure"] == "Host CPU (%)"]
    measured = windows[windows["sample_count"] > 0]
    assert len(cpu) == len(measured)
    for _, w in measured.iterrows():
        row = cpu[(cpu["Experiment"] == w["experiment_name"]) & (cpu["Concurrency"] == w["concurrency"])]
        assert row["Median"].tolist() == [figures.rounded(w["cpu_percent_p50"])]


def test_telemetry_page_without_gpu_rows_says_so_instead_of_gpu_charts(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], tmp_path: Path
) -> None:
    warehouse = warehouse_copy(
        e2e_run["warehouse"],
        tmp_path,
        "update marts.fct_telemetry_samples set gpu_count = 0, gpu_utilization_percent = null, "
        "gpu_memory_used_gib = null, gpu_memory_total_gib = null, gpu_power_w = null",
    )
    at = _run(app_on(warehouse), "telemetry")
    assert "No GPU telemetry in this run (no NVML on the collector's host)" in texts(at)
    assert _series_chart(at)["titles"] == ["Host CPU (%)", "Host memory used (GiB)"]


def test_telemetry_page_with_gpu_rows_draws_gpu_utilisation_memory_and_power(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], tmp_path: Path
) -> None:
    warehouse = warehouse_copy(
        e2e_run["warehouse"],
        tmp_path,
        "update marts.fct_telemetry_samples set gpu_count = 2, gpu_utilization_percent = 60 + cpu_percent / 10, "
        "gpu_memory_used_gib = 30.5, gpu_memory_total_gib = 48, gpu_power_w = 2 * (100 + cpu_percent)",
    )
    expected = mart(warehouse, "select * from marts.fct_telemetry_samples order by offset_ns")
    at = _run(app_on(warehouse), "telemetry")
    assert charts.NO_GPU_TELEMETRY not in texts(at)
    series = _series_chart(at)
    assert series["titles"] == [
        "Host CPU (%)",
        "Host memory used (GiB)",
        "GPU utilisation (mean across GPUs) (%)",
        "GPU memory used (all GPUs) (GiB)",
        "GPU power (all GPUs) (W)",
    ]
    assert series["samples"]["gpu_power_w"].round(9).tolist() == expected["gpu_power_w"].round(9).tolist()
    assert set(series["samples"]["gpu_memory_used_gib"]) == {30.5}


def test_compare_puts_experiments_side_by_side_on_one_bucket(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], cfg: dict[str, Any]
) -> None:
    recs = mart(
        e2e_run["warehouse"],
        "select * from marts.fct_recommendations where payload_file = ? order by experiment_name",
        [cfg["report"]["dataset_of_interest"]],
    )
    at = _run(app_on(e2e_run["warehouse"]), "compare")
    side = _dataframe(at, "Figure").set_index("Figure")
    first, *others = _experiments(cfg)
    assert list(side.columns) == [first, *others, *(f"{o} / {first}" for o in others)]
    tpm = recs.set_index("experiment_name")["transactions_per_minute"]
    for name in _experiments(cfg):
        assert side.loc["Transactions/min", name] == figures.plain(tpm[name])
    assert side.loc["Transactions/min", f"{others[0]} / {first}"] == f"×{figures.plain(tpm[others[0]] / tpm[first])}"
    at.selectbox(key="cmp_bucket").set_value("short").run()
    assert "Recommended level per experiment on `short`" in texts(at)


def test_sidebar_budgets_preview_verdicts_without_changing_the_marts(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any]
) -> None:
    levels = mart(e2e_run["warehouse"], "select * from marts.fct_concurrency_metrics")
    trial = 10.0  # a latency budget every level meets
    would_pass = int(
        ((levels["latency_p95"] <= trial) & levels["meets_cost_budget"] & levels["meets_error_budget"]).sum()
    )
    at = _run(app_on(e2e_run["warehouse"], budget_latency_s=str(trial)))
    preview = "\n".join(str(w.value) for w in at.sidebar.warning)
    assert "PREVIEW" in preview
    official = int(levels["meets_all_budgets"].sum())
    assert f"{would_pass} of {len(levels)} levels would meet every budget (marts: {official})" in preview
    assert "Preview budgets" in texts(at)
    shown = _dataframe(at, "All budgets")
    assert (shown["Latency verdict"] == "pass").all()
    # The marts' own tables are unchanged.
    assert len(_dataframe(at, "Missed budgets")) == len(levels) - int(levels["meets_all_budgets"].sum())


OLDER_RUN = "20000101T000000Z-older"


@pytest.fixture
def two_runs(e2e_run: dict[str, Any], tmp_path: Path) -> Path:
    """The end-to-end warehouse with a second, older run in dim_runs (named older-run)."""
    return warehouse_copy(
        e2e_run["warehouse"],
        tmp_path,
        "insert into intermediate.int_runs_summarised select * replace "
        f"('{OLDER_RUN}' as run_id, 'older-run' as run_name, started_at - interval 1 day as started_at) "
        "from intermediate.int_runs_summarised",
    )


def test_a_run_link_opens_that_run_and_the_url_always_names_the_run_shown(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], two_runs: Path
) -> None:
    at = _run(app_on(two_runs, run=OLDER_RUN))  # a hand-written ?run= link to the older run
    assert at.sidebar.selectbox(key="run_picker").value == OLDER_RUN
    assert OLDER_RUN in texts(at) and at.query_params["run"] == OLDER_RUN
    # Opened without a link, the newest run is shown and put in the URL, so a copied link keeps showing it.
    fresh = _run(app_on(two_runs))
    assert fresh.sidebar.selectbox(key="run_picker").value == e2e_run["run_id"]
    assert fresh.query_params["run"] == e2e_run["run_id"]
    # Picking another run moves the URL with it.
    fresh.sidebar.selectbox(key="run_picker").select(OLDER_RUN).run()
    assert fresh.query_params["run"] == OLDER_RUN


def test_a_link_to_a_run_not_in_the_warehouse_says_so_and_shows_the_newest(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], two_runs: Path
) -> None:
    at = _run(app_on(two_runs, run="no-such-run"))
    assert any("Run `no-such-run` from the link is not in this warehouse" in w.value for w in at.sidebar.warning)
    assert at.sidebar.selectbox(key="run_picker").value == e2e_run["run_id"]


def test_a_lost_run_is_flagged_as_stopped_without_finishing(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], tmp_path: Path
) -> None:
    # dim_runs is a view over this table: what a manifest marked lost by the collector builds into
    warehouse = warehouse_copy(
        e2e_run["warehouse"], tmp_path, "update intermediate.int_runs_summarised set recorded_status = 'lost'"
    )
    at = _run(app_on(warehouse), "summary")
    assert any("collector stopped without finishing" in w.value for w in at.warning)
    assert not any("still collecting" in i.value for i in at.info)
