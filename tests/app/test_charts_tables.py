"""The shared chart and table definitions, on hand-made mart rows (no warehouse needed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import vl_convert

from collector.cli import app as app_cli
from collector.cli import options
from collector.outputs import charts, tables
from streamlit_app.ui import escape_dollars

# FMBench's reference row (llama3-1-8b-instruct on g5.4xlarge, en_500-1000, concurrency 1).
REFERENCE = {
    "experiment_name": "llama3-1-8b-instruct",
    "model_id": "meta-llama/Llama-3.1-8B-Instruct",
    "payload_file": "payload_en_500-1000.jsonl",
    "instance_type": "g5.4xlarge",
    "instance_count": 1,
    "concurrency": 1,
    "error_rate": 0.0,
    "prompt_token_count_mean": 837.4,
    "prompt_token_throughput": 504.3,
    "completion_token_count_mean": 40.2,
    "completion_token_throughput": 23.4,
    "transactions_per_minute": 35.3,
    "price_per_txn": 0.0007733333,
    "price_per_token": 8.817939946788295e-07,
    "cost_per_10k_txn": 7.733333,
    **{f"latency_{p}": 1.68 for p in ("p50", "p95", "p99")},
    **{f"ttft_{p}": None for p in ("p50", "p95", "p99")},
    **{f"tpot_{p}": None for p in ("p50", "p95", "p99")},
}


def _levels() -> pd.DataFrame:
    rows = []
    for exp, slow in (("stackA", 1.0), ("stackB", 1.3)):
        for c in (1, 2, 4):
            rows.append(
                {
                    "run_id": "r",
                    "experiment_name": exp,
                    "model_id": "m",
                    "payload_file": "en_500-1000",
                    "concurrency": c,
                    "latency_p50": 1.0 * slow * c**0.5,
                    "latency_p95": 1.4 * slow * c**0.5,
                    "latency_p99": 1.6 * slow * c**0.5,
                    "transactions_per_minute": 35.0 * c / slow,
                    "prompt_token_throughput": 500.0 * c,
                    "completion_token_throughput": 23.0 * c,
                    "cost_per_10k_txn": 7.7 / c,
                    "error_rate": 0.0 if c < 4 else 0.25,
                    "error_count": 0 if c < 4 else 2,
                    "request_count": 8,
                    "meets_all_budgets": c < 4,
                }
            )
    return pd.DataFrame(rows)


def _units(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every single-view spec inside a (layered, concatenated or faceted) spec."""
    found = []
    if "mark" in spec:
        found.append(spec)
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for child in spec.get(key, []):
            found.extend(_units(child))
    if "spec" in spec:
        found.extend(_units(spec["spec"]))
    return found


def test_information_table_prints_the_reference_reports_figures() -> None:
    info = tables.information_table(REFERENCE).set_index("Information")["Value"]
    assert info["prompt_token_count_mean"] == "837"
    assert info["prompt_token_throughput"] == "504"
    assert info["completion_token_count_mean"] == "40"
    assert info["transactions_per_minute"] == "35"
    assert info["price_per_txn"] == "0.000773"
    assert info["price_per_token"] == "0.00000088"
    assert info["latency p50, p95, p99"] == "1.68, 1.68, 1.68"
    assert info["TTFT p50, p95, p99"] == "–, –, –"


def test_criteria_sentence_reads_like_the_reference() -> None:
    budgets = {"latency_budget_s": 2.0, "cost_per_10k_txn_budget_usd": 20.0, "error_rate_budget": 0.0}
    assert tables.criteria_sentence(budgets) == (
        "`Latency` (p95) ≤ `2s`, `cost per 10k transactions`: `$20`, `error rate`: `0`"
    )


def test_failed_table_flags_only_the_missed_budgets() -> None:
    failed = pd.DataFrame(
        [
            {
                "experiment_name": "e",
                "payload_file": "p",
                "concurrency": 2,
                "error_rate": 0.0,
                "latency_p95": 2.14,
                "cost_per_10k_txn": 4.92,
                "missed_budgets": "latency",
                "misses_error_budget": False,
                "misses_latency_budget": True,
                "misses_cost_budget": False,
            }
        ]
    )
    shown, flags = tables.failed_table(failed)
    assert shown.iloc[0][["error_rate_text", "latency_p95_text", "price_per_10k_txn_text"]].tolist() == [
        "0.00",
        "2.14",
        "4.92",
    ]
    assert flags.iloc[0][["error_rate_text", "latency_p95_text", "price_per_10k_txn_text"]].tolist() == [
        False,
        True,
        False,
    ]


def test_serving_names_instance_count_and_token_apis() -> None:
    assert tables.serving({"instance_type": "g5.4xlarge", "instance_count": 2}) == "2 × g5.4xlarge"
    assert tables.serving({"instance_type": "g5.4xlarge", "instance_count": 1}) == "g5.4xlarge"
    assert tables.serving({"instance_type": None, "model_id": "gpt"}) == "gpt API"


def test_dollars_are_escaped_for_streamlit_markdown_outside_code() -> None:
    assert escape_dollars("$4.00 per 10k and `$20` budget, $5") == "\\$4.00 per 10k and `$20` budget, \\$5"


def test_price_performance_chart_sizes_by_throughput_and_draws_the_budget_box() -> None:
    spec = charts.price_performance(_levels(), 2.0, 20.0).to_dict()
    units = _units(spec)
    circles = [u for u in units if u["mark"]["type"] == "circle"]
    assert circles[0]["encoding"]["size"]["field"] == "transactions_per_minute"
    x, y = circles[0]["encoding"]["x"], circles[0]["encoding"]["y"]
    assert (x["field"], x["type"], y["field"], y["type"]) == (
        "latency_p95",
        "quantitative",
        "cost_per_10k_txn",
        "quantitative",
    )
    rects = [u for u in units if u["mark"]["type"] == "rect"]
    box = spec["datasets"][rects[0]["data"]["name"]][0]
    assert (box["x1"], box["y1"]) == (2.0, 20.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda lv: charts.latency_vs_concurrency(lv, 2.0),
        charts.throughput_vs_concurrency,
        charts.error_rate_by_concurrency,
        lambda lv: charts.price_performance(lv, 2.0, 20.0),
    ],
)
def test_level_charts_have_typed_encodings_and_tooltips(make: Any) -> None:
    spec = make(_levels()).to_dict()
    units = _units(spec)
    assert any("tooltip" in u.get("encoding", {}) for u in units)
    for unit in units:
        for channel, enc in unit.get("encoding", {}).items():
            if isinstance(enc, dict) and "field" in enc:
                assert "type" in enc or channel in ("x2", "y2"), (channel, enc)
    png = vl_convert.vegalite_to_png(make(_levels()).to_json(), scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_latency_chart_draws_one_point_per_percentile_and_the_budget() -> None:
    spec = charts.latency_vs_concurrency(_levels(), 0.3).to_dict()
    frames = list(spec["datasets"].values())
    points = next(f for f in frames if "latency_s" in f[0])
    assert len(points) == len(_levels()) * 3
    budget = next(f for f in frames if "latency_budget_s" in f[0])
    assert budget[0]["latency_budget_s"] == 0.3


def test_app_command_passes_the_warehouse_after_the_double_dash(tmp_path: Path) -> None:
    # the command `collector app` serves (tests/test_signals.py runs the real server and stops it)
    parser = argparse.ArgumentParser()
    app_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["app", "--results-dir", str(tmp_path), "--port", "8765"])
    cmd = app_cli.command(options.warehouse(args), args.port, args.address)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("streamlit_app/app.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"  # this machine only, no external IP lookup
    assert cmd[cmd.index("--") + 1 :] == ["--warehouse", str((tmp_path / "tokenbench.duckdb").resolve())]


def _samples(gpu: bool) -> pd.DataFrame:
    """Eleven instants, one a second; instants 2-4 in stackA's c=1 window and 6-8 in its c=2 window."""
    rows = []
    for t in range(11):
        level = 1 if 2 <= t <= 4 else 2 if 6 <= t <= 8 else None
        rows.append(
            {
                "seconds_since_run_start": float(t),
                "sampled_at": pd.Timestamp("2026-01-01 00:00:00", tz="UTC") + pd.Timedelta(seconds=t),
                "experiment_name": "stackA" if level else None,
                "concurrency": level,
                "gpu_count": 2 if gpu else 0,
                "cpu_percent": 10.0 + t,
                "host_memory_used_gib": 8.0,
                "gpu_utilization_percent": 50.0 + t if gpu else None,
                "gpu_memory_used_gib": 30.0 if gpu else None,
                "gpu_memory_total_gib": 48.0 if gpu else None,
                "gpu_power_w": 250.0 if gpu else None,
                "sample_count": 1,
            }
        )
    return pd.DataFrame(rows).astype({"concurrency": "Int32"})


ENDPOINT_WINDOWS = pd.DataFrame(
    {
        "experiment_name": ["stackA", "stackA"],
        "concurrency": [1, 2],
        "window_start_offset_ns": [1_500_000_000, 5_500_000_000],
        "window_end_offset_ns": [4_500_000_000, 8_500_000_000],
        "sample_count": [3, 3],
    }
)


def test_telemetry_over_time_draws_a_panel_per_gpu_measure_and_labels_each_level_window() -> None:
    chart = charts.telemetry_over_time(_samples(gpu=True), ENDPOINT_WINDOWS)
    spec = chart.to_dict()
    titles = [panel["title"] for panel in spec["vconcat"]]
    assert [t.split(" (")[0] for t in titles] == [
        "Host CPU",
        "Host memory used",
        "GPU utilisation",
        "GPU memory used",
        "GPU power",
    ]
    frames = list(spec["datasets"].values())
    (windows,) = [f for f in frames if "level" in f[0]]
    assert [(w["level"], w["start_s"], w["end_s"]) for w in windows] == [("c=1", 1.5, 4.5), ("c=2", 5.5, 8.5)]
    (samples,) = [f for f in frames if "seconds_since_run_start" in f[0]]
    assert len(samples) == 11
    for unit in _units(spec):
        assert "tooltip" in unit["encoding"]
        assert unit["encoding"]["x"]["scale"]["domain"] == [0.0, 10.0]  # every panel on one time axis
    png = vl_convert.vegalite_to_png(chart.to_json(), scale=1)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_telemetry_over_time_without_gpu_rows_draws_only_the_host_panels() -> None:
    samples = _samples(gpu=False)
    assert not charts.has_gpu_telemetry(samples) and charts.has_gpu_telemetry(_samples(gpu=True))
    spec = charts.telemetry_over_time(samples, ENDPOINT_WINDOWS).to_dict()
    assert [panel["title"] for panel in spec["vconcat"]] == ["Host CPU (%)", "Host memory used (GiB)"]
    assert "NVML" in charts.NO_GPU_TELEMETRY


@pytest.mark.parametrize(
    ("simulated", "experiments", "label"),
    [(2, 2, "simulated"), (1, 2, "partly simulated"), (0, 2, ""), (None, None, "")],
)
def test_a_run_sent_to_the_simulator_is_labelled_so_in_the_title(
    simulated: int | None, experiments: int | None, label: str
) -> None:
    run = {"simulated_experiment_count": simulated, "experiment_count": experiments}
    assert tables.simulated(run) == label
    suffix = f" ({label})" if label else ""
    assert tables.title(["m1", "m2"], run) == f"Results for performance benchmarking m1, m2{suffix}"
