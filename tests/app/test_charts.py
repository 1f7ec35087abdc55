"""The shared chart definitions on hand-made mart rows (no warehouse needed): what each chart plots, with which
field, title and scale, what it leaves out and why an empty one is empty."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd
import pytest
import vl_convert

from collector.outputs import charts, figures


def _levels(**overrides: Any) -> pd.DataFrame:
    """Two stacks at concurrency 1, 2 and 4 (fct_concurrency_metrics columns the charts read)."""
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
                    "ttft_p50": 0.0352 * slow,
                    "transactions_per_minute": 35.0 * c / slow,
                    "prompt_token_throughput": 5000.0 * c,
                    "completion_token_throughput": 23.0 * c,
                    "cost_per_10k_txn": 7.7 / c,
                    "error_rate": 0.0 if c < 4 else 0.25,
                    "error_count": 0 if c < 4 else 2,
                    "request_count": 8,
                    "success_count": 8 if c < 4 else 6,
                    "meets_all_budgets": c < 4,
                    **overrides,
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


def _data(spec: dict[str, Any], unit: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a view draws (its own named dataset, else the nearest parent's: Altair hoists them)."""
    name = unit.get("data", {}).get("name") or spec.get("data", {}).get("name")
    return list(spec["datasets"][name])


def _mark(unit: dict[str, Any]) -> str:
    mark = unit["mark"]
    return mark["type"] if isinstance(mark, dict) else mark


def _title_text(title: Any) -> str:
    return title["text"] if isinstance(title, dict) else str(title)


def _subtitle(spec: dict[str, Any]) -> list[str]:
    title = spec.get("title")
    return list(title.get("subtitle", [])) if isinstance(title, dict) else []


def _png(chart: charts.AnyChart) -> bytes:
    return bytes(vl_convert.vegalite_to_png(chart.to_json(), scale=1))


# -- Labels, units and numbers come from figures --------------------------------------------------------------


def test_latency_chart_plots_each_percentile_in_seconds_under_the_figures_title_with_the_budget() -> None:
    spec = charts.latency_vs_concurrency(_levels(), 0.3).to_dict()
    line = next(u for u in _units(spec) if _mark(u) == "line")
    assert line["encoding"]["y"]["field"] == "latency_s"
    assert line["encoding"]["y"]["title"] == figures.header("e2e_latency_s") == "Latency (s)"
    assert line["encoding"]["x"]["title"] == figures.header("concurrency")
    points = _data(spec, line)
    assert len(points) == len(_levels()) * 3
    p95 = sorted((p["experiment_name"], p["concurrency"], p["latency_s"]) for p in points if p["percentile"] == "p95")
    expected = sorted(
        zip(_levels()["experiment_name"], _levels()["concurrency"], _levels()["latency_p95"], strict=True)
    )
    assert p95 == expected
    # Tooltips show the number by the precision rule, with its unit.
    assert {p["latency_s_text"] for p in points if p["latency_s"] == 1.0} == {"1 s"}
    rule = next(u for u in _units(spec) if _mark(u) == "rule")
    assert _data(spec, rule)[0]["latency_budget_s"] == 0.3


def test_price_performance_axes_and_tooltips_come_from_figures_and_bubbles_size_by_throughput() -> None:
    spec = charts.price_performance(_levels(), 2.0, 20.0).to_dict()
    circle = next(u for u in _units(spec) if _mark(u) == "circle")
    enc = circle["encoding"]
    assert (enc["x"]["field"], enc["x"]["title"]) == ("latency_p95", "Latency p95 (s)")
    assert (enc["y"]["field"], enc["y"]["title"]) == ("cost_per_10k_txn", "Cost per 10k transactions ($)")
    assert (enc["size"]["field"], enc["size"]["title"]) == ("transactions_per_minute", "Transactions/min")
    tips = {t["title"]: t["field"] for t in enc["tooltip"]}
    assert tips["Cost per 10k transactions"] == "cost_per_10k_txn_text"
    rows = {(r["experiment_name"], r["concurrency"]): r for r in _data(spec, circle)}
    assert rows[("stackA", 1)]["cost_per_10k_txn_text"] == figures.figure("cost_per_10k_txn").with_unit(7.7)
    assert rows[("stackA", 4)]["error_rate_text"] == figures.figure("error_rate").with_unit(0.25) == "25%"
    rect = next(u for u in _units(spec) if _mark(u) == "rect")
    box = _data(spec, rect)[0]
    assert (box["x1"], box["y1"]) == (2.0, 20.0)
    # The budget is said in the subtitle, not written on the plot where labels could hit it.
    latency, cost = figures.figure("latency_p95").with_unit(2.0), figures.figure("cost_per_10k_txn").with_unit(20.0)
    budget = f"p95 ≤ {latency} and ≤ {cost}"
    assert any(budget in line for line in _subtitle(spec)), _subtitle(spec)
    texts = [u for u in _units(spec) if _mark(u) == "text"]
    assert texts and all(u["encoding"]["text"]["field"] == "label" for u in texts)


def test_price_performance_axes_reach_a_near_budget_but_not_one_that_would_squash_the_points() -> None:
    def domains(cost_budget: float) -> tuple[list[float], list[float]]:
        spec = charts.price_performance(_levels(), 2.0, cost_budget).to_dict()
        enc = next(u for u in _units(spec) if _mark(u) == "circle")["encoding"]
        return enc["x"]["scale"]["domain"], enc["y"]["scale"]["domain"]

    top_cost, top_p95 = 7.7, 1.4 * 1.3 * 2  # stackA at c=1; stackB at c=4
    (x, near), (_, far) = domains(10.0), domains(100.0)
    assert x == [0, pytest.approx(top_p95 * 1.1)]
    assert near == [0, pytest.approx(10.0 * 1.1)]  # the box's top edge is on the plot
    assert far == [0, pytest.approx(top_cost * 1.1)]  # a $100 budget would leave the points in the bottom tenth


def test_ttft_and_tpot_histograms_are_drawn_in_milliseconds() -> None:
    bins = pd.DataFrame(
        {
            "metric": ["ttft_s", "ttft_s", "tpot_s"],
            "experiment_name": ["a", "a", "a"],
            "bin_start": [0.010, 0.020, 0.030],
            "bin_end": [0.020, 0.030, 0.031],
            "request_count": [3, 1, 4],
        }
    )
    spec = charts.histogram(bins, "ttft_s").to_dict()
    (bar,) = _units(spec)
    assert bar["encoding"]["x"]["title"] == figures.header("ttft_s") == "TTFT (ms)"
    assert [round(r["bin_start"], 9) for r in _data(spec, bar)] == [10.0, 20.0]
    assert [r["bin_end_text"] for r in _data(spec, bar)] == ["20", "30"]


def test_throughput_draws_prompt_and_output_tokens_on_separate_panels_with_their_own_scales() -> None:
    levels = _levels()
    spec = charts.throughput_vs_concurrency(levels).to_dict()
    panels = spec["vconcat"]
    assert [p["title"] for p in panels] == [figures.header(c) for c in charts.THROUGHPUT_PANELS]
    fields = [next(u for u in _units(p) if _mark(u) == "line")["encoding"]["y"]["field"] for p in panels]
    assert fields == ["transactions_per_minute", "prompt_token_throughput", "completion_token_throughput"]
    assert spec["resolve"]["scale"]["y"] == "independent"
    line = next(u for u in _units(panels[2]) if _mark(u) == "line")
    drawn = sorted(r["completion_token_throughput"] for r in _data(spec, line))
    assert drawn == sorted(levels["completion_token_throughput"])  # the small series is on its own axis


def test_error_rate_is_plotted_in_percent_on_a_0_to_100_axis() -> None:
    spec = charts.error_rate_by_concurrency(_levels()).to_dict()
    (bar,) = _units(spec)
    assert (bar["encoding"]["y"]["title"], bar["encoding"]["y"]["scale"]["domain"]) == ("Error rate (%)", [0, 100])
    assert sorted({r["error_rate"] for r in _data(spec, bar)}) == [0.0, 25.0]


# -- Failed requests are never latency points -----------------------------------------------------------------


def _requests() -> pd.DataFrame:
    rows = [
        {
            "request_id": f"r:{i}",
            "experiment_name": "stackA",
            "payload_file": "short",
            "concurrency": 1,
            "status": "success",
            "prompt_tokens": 100 + i,
            "completion_tokens": 40,
            "e2e_latency_s": 1.0 + i / 10,
            "ttft_s": 0.05,
        }
        for i in range(3)
    ]
    rows.append({**rows[0], "request_id": "r:timeout", "status": "error", "e2e_latency_s": 60.0, "ttft_s": None})
    return pd.DataFrame(rows)


def test_tokens_vs_latency_plots_successes_only_and_says_how_many_failed_requests_it_left_out() -> None:
    spec = charts.tokens_vs_latency(_requests()).to_dict()
    (point,) = _units(spec)
    plotted = [r["request_id"] for r in _data(spec, point)]
    assert plotted == ["r:0", "r:1", "r:2"]
    assert max(r["e2e_latency_s"] for r in _data(spec, point)) == 1.2
    assert _subtitle(spec) == ["Successful requests only: 1 failed request(s) left out."]
    assert point["encoding"]["y"]["title"] == figures.header("e2e_latency_s")


def test_tokens_vs_latency_with_only_failures_says_so_instead_of_drawing() -> None:
    failed = _requests().assign(status="error")
    reason = charts.empty_reason(charts.tokens_vs_latency(failed))
    assert reason is not None and "every one failed" in reason and "4" in reason


# -- Histograms cover the slowest request ---------------------------------------------------------------------


def test_histogram_domain_runs_from_the_fastest_bin_to_the_slowest_request() -> None:
    bins = pd.DataFrame(
        {
            "metric": ["e2e_latency_s"] * 3,
            "experiment_name": ["a", "a", "b"],
            "bin_start": [1.0, 1.5, 9.5],
            "bin_end": [1.5, 2.0, 10.0],
            "request_count": [5, 2, 1],
        }
    )
    spec = charts.histogram(bins, "e2e_latency_s").to_dict()
    (bar,) = _units(spec)
    assert bar["encoding"]["x"]["scale"]["domain"] == [1.0, 10.0]
    assert bar["encoding"]["x"]["scale"]["nice"] is False
    assert max(r["bin_end"] for r in _data(spec, bar)) == 10.0


# -- Empty charts say why -------------------------------------------------------------------------------------


def test_empty_charts_carry_the_reason_instead_of_an_empty_frame() -> None:
    failed = _levels(
        success_count=0, error_count=8, latency_p50=None, latency_p95=None, latency_p99=None, cost_per_10k_txn=None
    )
    unpriced = _levels(cost_per_10k_txn=None)
    bins = pd.DataFrame(
        {
            "metric": ["e2e_latency_s"],
            "experiment_name": ["a"],
            "bin_start": [1.0],
            "bin_end": [2.0],
            "request_count": [3],
        }
    )
    cases = {
        "no level": (charts.latency_vs_concurrency(_levels().iloc[0:0], 2.0), "No measured level"),
        "all failed": (charts.latency_vs_concurrency(failed, 2.0), "all 48 measured requests failed"),
        "all failed throughput": (charts.throughput_vs_concurrency(failed), "all 48 measured requests failed"),
        "no price": (charts.price_performance(unpriced, 2.0, 20.0), "No priced level"),
        "not streamed": (charts.histogram(bins, "ttft_s"), "not streamed"),
        "no tpot": (charts.histogram(bins.assign(metric="ttft_s"), "tpot_s"), "more than one output token"),
        "no success": (charts.histogram(bins.iloc[0:0], "e2e_latency_s"), "No successful request"),
        "no samples": (charts.telemetry_over_time(pd.DataFrame(), ENDPOINT_WINDOWS), "No telemetry sample"),
        "no errors": (charts.error_rate_by_concurrency(_levels(error_count=0, error_rate=0.0)), "(48 requests)"),
    }
    for name, (chart, needle) in cases.items():
        reason = charts.empty_reason(chart)
        assert reason is not None and needle in reason, (name, reason)
        spec = chart.to_dict()
        (unit,) = _units(spec)
        assert (_mark(unit), _data(spec, unit)) == ("text", [{"reason": reason}]), name  # the report shows it too
    assert charts.empty_reason(charts.latency_vs_concurrency(_levels(), 2.0)) is None
    assert charts.empty_reason(charts.histogram(bins, "e2e_latency_s")) is None


def test_a_level_without_successes_is_named_under_the_latency_chart_not_drawn_at_zero() -> None:
    levels = _levels()
    levels.loc[(levels["experiment_name"] == "stackB") & (levels["concurrency"] == 4), "latency_p50"] = None
    levels.loc[(levels["experiment_name"] == "stackB") & (levels["concurrency"] == 4), "latency_p95"] = None
    levels.loc[(levels["experiment_name"] == "stackB") & (levels["concurrency"] == 4), "latency_p99"] = None
    spec = charts.latency_vs_concurrency(levels, 2.0).to_dict()
    line = next(u for u in _units(spec) if _mark(u) == "line")
    assert not [p for p in _data(spec, line) if p["experiment_name"] == "stackB" and p["concurrency"] == 4]
    assert _subtitle(spec) == ["Not drawn (no successful request): stackB c=4."]


# -- Colours --------------------------------------------------------------------------------------------------


def test_twenty_series_get_twenty_distinct_colours_and_ten_get_ten_hues() -> None:
    assert len(set(charts.SERIES_COLORS)) == 20
    names = [f"exp{i:02d}" for i in range(20)]
    levels = pd.concat([_levels(experiment_name=n) for n in names], ignore_index=True)
    for chart in (
        charts.latency_vs_concurrency(levels, 2.0),
        charts.throughput_vs_concurrency(levels),
        charts.error_rate_by_concurrency(levels),
        charts.price_performance(levels, 2.0, 20.0),
    ):
        for unit in _units(chart.to_dict()):
            color = unit.get("encoding", {}).get("color")
            if color and "field" in color:
                assert color["scale"]["domain"] == names
                assert color["scale"]["range"] == list(charts.SERIES_COLORS)


def test_a_series_keeps_its_colour_in_a_histogram_where_it_has_no_bar() -> None:
    bins = pd.DataFrame(
        {
            "metric": ["e2e_latency_s", "e2e_latency_s", "ttft_s"],
            "experiment_name": ["a-nostream", "b-stream", "b-stream"],
            "bin_start": [1.0, 1.0, 0.1],
            "bin_end": [2.0, 2.0, 0.2],
            "request_count": [1, 1, 1],
        }
    )
    domains = [
        _units(charts.histogram(bins, m).to_dict())[0]["encoding"]["color"]["scale"]["domain"]
        for m in ("e2e_latency_s", "ttft_s")
    ]
    assert domains == [["a-nostream", "b-stream"]] * 2


# -- Price-performance labels ---------------------------------------------------------------------------------


def test_concurrency_labels_of_a_crowded_price_performance_chart_overlap_no_label_and_no_bubble() -> None:
    # Eight series whose levels sit close together in one corner, as on a real sweep.
    rows = []
    for s, c in itertools.product(range(8), (1, 2, 4, 8, 16)):
        rows.append(
            {
                "concurrency": c,
                "latency_p95": 0.2 + 0.03 * s + 0.04 * c,
                "cost_per_10k_txn": 1.6 / (c**0.5) + 0.03 * s,
                "transactions_per_minute": 100.0 + 60 * c,
            }
        )
    points = pd.DataFrame(rows)
    x_max, y_max, size_max, width, height = 1.4, 2.0, 1060.0, charts.PLACEMENT_WIDTH_PX, charts.HEIGHT
    spots = charts.place_labels(points, x_max, y_max, size_max, width, height)
    boxes, naive, bubbles = [], [], []
    low, high = charts.BUBBLE_AREA
    for (_, p), spot in zip(points.iterrows(), spots, strict=True):
        x, y = p["latency_p95"] / x_max * width, height - p["cost_per_10k_txn"] / y_max * height
        boxes.append(charts._text_box(x, y, str(int(p["concurrency"])), spot))
        naive.append(charts._text_box(x, y, str(int(p["concurrency"])), "above"))
        r = ((low + (high - low) * p["transactions_per_minute"] / size_max) / math.pi) ** 0.5
        bubbles.append((x - r, y - r, x + r, y + r))

    def clashes(found: list[tuple[float, float, float, float]]) -> list[tuple[int, int]]:
        pairs = itertools.combinations(range(len(found)), 2)
        return [(i, j) for i, j in pairs if charts._overlap(found[i], found[j]) > 0]

    def covering(found: list[tuple[float, float, float, float]]) -> list[tuple[int, int]]:
        pairs = itertools.product(range(len(found)), range(len(bubbles)))
        return [(i, j) for i, j in pairs if i != j and charts._overlap(found[i], bubbles[j]) > 1]

    assert clashes(naive) or covering(naive)  # every label above its bubble would hit something here
    inside = all(b[0] >= 0 and b[1] >= 0 and b[2] <= width and b[3] <= height for b in boxes)
    assert not clashes(boxes) and inside
    assert not covering(boxes)
    assert set(spots) > {"above"}  # a crowded chart moves labels around their bubbles
    # The chart draws each spot with its own text layer, offset in the spot's direction.
    chart = charts.price_performance(
        points.assign(experiment_name="e", payload_file="p", success_count=8, error_rate=0.0), 1.0, 2.0
    )
    spec = chart.to_dict()
    texts = [u for u in _units(spec) if _mark(u) == "text"]
    offsets = {u["transform"][0]["filter"]: (u["mark"].get("dx", 0), u["mark"].get("dy", 0)) for u in texts}
    for spot, (dx, dy) in charts.LABEL_SPOTS.items():
        assert offsets[f"(datum.label_spot === '{spot}')"] == (dx * charts.LABEL_OFFSET_PX, dy * charts.LABEL_OFFSET_PX)


# -- The app's container width --------------------------------------------------------------------------------


def test_fit_container_makes_every_view_as_wide_as_its_column_and_leaves_the_report_chart_alone() -> None:
    report = charts.latency_vs_concurrency(_levels(), 2.0)
    app = charts.fit_container(report).to_dict()
    assert (app["width"], app["autosize"]["type"]) == ("container", "fit-x")
    assert report.to_dict()["width"] == charts.WIDTH  # the report's PNG keeps its fixed size

    stacked = charts.fit_container(charts.throughput_vs_concurrency(_levels())).to_dict()
    assert [p["width"] for p in stacked["vconcat"]] == ["container"] * 3
    assert stacked["autosize"]["type"] == "fit-x"

    side_by_side = charts.distributions(_bins())
    assert len(side_by_side.to_dict()["hconcat"]) == 2
    turned = charts.fit_container(side_by_side).to_dict()
    assert "hconcat" not in turned and [p["width"] for p in turned["vconcat"]] == ["container"] * 2


def _bins() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "metric": ["e2e_latency_s", "ttft_s"],
            "experiment_name": ["a", "a"],
            "bin_start": [1.0, 0.1],
            "bin_end": [2.0, 0.2],
            "request_count": [1, 1],
        }
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: charts.latency_vs_concurrency(_levels(), 2.0),
        lambda: charts.throughput_vs_concurrency(_levels()),
        lambda: charts.error_rate_by_concurrency(_levels()),
        lambda: charts.price_performance(_levels(), 2.0, 20.0),
        lambda: charts.tokens_vs_latency(_requests()),
        lambda: charts.distributions(_bins()),
        lambda: charts.telemetry_over_time(_samples(gpu=True), ENDPOINT_WINDOWS),
        lambda: charts.price_performance(_levels(cost_per_10k_txn=None), 2.0, 20.0),
    ],
    ids=["latency", "throughput", "errors", "price", "tokens", "distributions", "telemetry", "empty"],
)
def test_the_report_renders_each_chart_to_a_png_of_its_fixed_width(make: Any) -> None:
    png = _png(make())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(png[16:20], "big")
    assert 300 <= width <= 1100  # legends and titles add to the plot's width, never a runaway size


# -- Telemetry ------------------------------------------------------------------------------------------------


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


def test_telemetry_over_time_titles_each_panel_from_figures_and_labels_each_level_window() -> None:
    spec = charts.telemetry_over_time(_samples(gpu=True), ENDPOINT_WINDOWS).to_dict()
    titles = [panel["title"] for panel in spec["vconcat"]]
    assert titles == [
        "Host CPU (%)",
        "Host memory used (GiB)",
        "GPU utilisation (mean across GPUs) (%)",
        "GPU memory used (all GPUs) (GiB)",
        "GPU power (all GPUs) (W)",
    ]
    assert titles[:2] == [f.header for f in figures.TELEMETRY[:2]]
    frames = list(spec["datasets"].values())
    (windows,) = [f for f in frames if "level" in f[0]]
    assert [(w["level"], w["start_s"], w["end_s"]) for w in windows] == [("c=1", 1.5, 4.5), ("c=2", 5.5, 8.5)]
    (samples,) = [f for f in frames if "seconds_since_run_start" in f[0]]
    assert [s["cpu_percent"] for s in samples] == [10.0 + t for t in range(11)]
    for unit in _units(spec):
        assert "tooltip" in unit["encoding"]
        assert unit["encoding"]["x"]["scale"]["domain"] == [0.0, 10.0]  # every panel on one time axis


def test_telemetry_over_time_without_gpu_rows_draws_only_the_host_panels() -> None:
    samples = _samples(gpu=False)
    assert not charts.has_gpu_telemetry(samples) and charts.has_gpu_telemetry(_samples(gpu=True))
    spec = charts.telemetry_over_time(samples, ENDPOINT_WINDOWS).to_dict()
    assert [panel["title"] for panel in spec["vconcat"]] == ["Host CPU (%)", "Host memory used (GiB)"]


def test_window_labels_of_narrow_windows_are_stacked_so_none_overlaps_another() -> None:
    # Five back-to-back windows of 1 s in a 100 s run: at 680 px each is 7 px wide, its label about 25 px.
    windows = pd.DataFrame({"mid_s": [10.5, 11.5, 12.5, 13.5, 14.5], "level": ["c=1", "c=2", "c=4", "c=8", "c=16"]})
    # Rows 0-2 (up from the plot's top) take c=1, c=2, c=4; c=8 finds no free row (left to its tooltip); c=16
    # clears c=1 on row 0.
    assert charts.window_label_rows(windows, 100.0, 680) == [-2.0, -13.0, -24.0, None, -2.0]
    wide = pd.DataFrame({"mid_s": [10.0, 50.0, 90.0], "level": ["c=1", "c=2", "c=4"]})
    assert charts.window_label_rows(wide, 100.0, 680) == [-2.0, -2.0, -2.0]  # room for all on the first row
