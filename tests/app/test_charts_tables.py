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
