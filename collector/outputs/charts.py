"""Altair chart definitions shared by the app's pages and the report's PNGs (pure Altair, no streamlit).

Each function takes a mart frame already filtered to what it should show and returns a chart with explicit
encodings and tooltips. `color` names the column that tells series apart (an experiment by default; the
Compare page passes a run-and-experiment label).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

AnyChart = alt.Chart | alt.LayerChart | alt.HConcatChart | alt.VConcatChart | alt.FacetChart

WIDTH = 520
HEIGHT = 300
BUDGET_COLOR = "#d62728"
PERCENTILE_DASH = {"p50": [1, 0], "p95": [6, 3], "p99": [2, 2]}


def _natural_size(chart: AnyChart) -> AnyChart:
    """Width and height size the plot; legends and titles add to them (Streamlit would otherwise fit the whole
    chart, legends included, into the height and squash the plot)."""
    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))


def _concurrency_axis(levels: pd.DataFrame) -> alt.X:
    values = sorted({int(c) for c in levels["concurrency"].dropna()})
    return alt.X(
        "concurrency:Q",
        title="Concurrency (requests in flight)",
        scale=alt.Scale(type="log", base=2, nice=False, padding=12),
        axis=alt.Axis(values=values, format="d"),
    )


def _color(color: str, title: str) -> alt.Color:
    return alt.Color(f"{color}:N", title=title, legend=alt.Legend(orient="bottom", columns=2, labelLimit=360))


def latency_vs_concurrency(
    levels: pd.DataFrame,
    latency_budget_s: float | None = None,
    color: str = "experiment_name",
    color_title: str = "Experiment",
) -> AnyChart:
    """Concurrency vs end-to-end latency p50/p95/p99, with the latency budget as a red rule."""
    long = levels.melt(
        id_vars=[color, "payload_file", "concurrency", "transactions_per_minute"],
        value_vars=["latency_p50", "latency_p95", "latency_p99"],
        var_name="percentile",
        value_name="latency_s",
    )
    long["percentile"] = long["percentile"].str.removeprefix("latency_")
    base = alt.Chart(long).encode(
        x=_concurrency_axis(levels),
        y=alt.Y("latency_s:Q", title="End-to-end latency (s)"),
        color=_color(color, color_title),
        tooltip=[
            alt.Tooltip(f"{color}:N", title=color_title),
            alt.Tooltip("payload_file:N", title="Payload"),
            alt.Tooltip("concurrency:Q", title="Concurrency"),
            alt.Tooltip("percentile:N", title="Percentile"),
            alt.Tooltip("latency_s:Q", title="Latency (s)", format=".3f"),
            alt.Tooltip("transactions_per_minute:Q", title="Transactions/min", format=".1f"),
        ],
    )
    dash = alt.StrokeDash(
        "percentile:N",
        title="Percentile",
        scale=alt.Scale(domain=list(PERCENTILE_DASH), range=list(PERCENTILE_DASH.values())),
        legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=2),
    )
    layers: list[alt.Chart] = [
        base.mark_line().encode(strokeDash=dash),
        base.mark_point(filled=True, size=50).encode(shape=alt.Shape("percentile:N", legend=None)),
    ]
    if latency_budget_s is not None:
        budget = pd.DataFrame({"latency_budget_s": [float(latency_budget_s)], "label": ["latency budget"]})
        rule = alt.Chart(budget).encode(
            y=alt.Y("latency_budget_s:Q"),
            tooltip=[alt.Tooltip("latency_budget_s:Q", title="Latency budget (s)")],
        )
        layers += [
            rule.mark_rule(color=BUDGET_COLOR, strokeDash=[4, 4], size=2),
            rule.mark_text(color=BUDGET_COLOR, align="left", dy=-6, x=4).encode(text="label:N"),
        ]
    return _natural_size(
        alt.layer(*layers).properties(title="Concurrency vs latency (p50, p95, p99)", width=WIDTH, height=HEIGHT)
    )


def throughput_vs_concurrency(
    levels: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """Concurrency vs transactions per minute, and vs prompt and completion tokens per second."""
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("payload_file:N", title="Payload"),
        alt.Tooltip("concurrency:Q", title="Concurrency"),
        alt.Tooltip("transactions_per_minute:Q", title="Transactions/min", format=".1f"),
        alt.Tooltip("prompt_token_throughput:Q", title="Prompt tokens/s", format=".1f"),
        alt.Tooltip("completion_token_throughput:Q", title="Completion tokens/s", format=".1f"),
    ]
    tpm = alt.Chart(levels).encode(
        x=_concurrency_axis(levels),
        y=alt.Y("transactions_per_minute:Q", title="Transactions per minute"),
        color=_color(color, color_title),
        tooltip=tooltip,
    )
    tpm_chart = (tpm.mark_line() + tpm.mark_point(filled=True, size=50)).properties(
        title="Concurrency vs transactions per minute", width=WIDTH // 2 + 40, height=HEIGHT
    )
    long = levels.melt(
        id_vars=[color, "payload_file", "concurrency", "transactions_per_minute"],
        value_vars=["prompt_token_throughput", "completion_token_throughput"],
        var_name="tokens",
        value_name="tokens_per_s",
    )
    long["tokens"] = long["tokens"].map(
        {"prompt_token_throughput": "prompt", "completion_token_throughput": "completion"}
    )
    tps = alt.Chart(long).encode(
        x=_concurrency_axis(levels),
        y=alt.Y("tokens_per_s:Q", title="Tokens per second"),
        color=_color(color, color_title),
        tooltip=[
            alt.Tooltip(f"{color}:N", title=color_title),
            alt.Tooltip("payload_file:N", title="Payload"),
            alt.Tooltip("concurrency:Q", title="Concurrency"),
            alt.Tooltip("tokens:N", title="Tokens"),
            alt.Tooltip("tokens_per_s:Q", title="Tokens/s", format=".1f"),
        ],
    )
    dash = alt.StrokeDash(
        "tokens:N",
        title="Tokens",
        sort=["prompt", "completion"],
        legend=alt.Legend(symbolType="stroke", symbolStrokeWidth=2),
    )
    tps_chart = (tps.mark_line().encode(strokeDash=dash) + tps.mark_point(filled=True, size=50)).properties(
        title="Concurrency vs tokens per second", width=WIDTH // 2 + 40, height=HEIGHT
    )
    return _natural_size(alt.hconcat(tpm_chart, tps_chart))


def tokens_vs_latency(
    requests: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """Prompt tokens vs end-to-end latency, one point per request (a sample of them)."""
    return _natural_size(
        alt.Chart(requests)
        .mark_point(filled=True, opacity=0.6)
        .encode(
            x=alt.X("prompt_tokens:Q", title="Prompt tokens"),
            y=alt.Y("e2e_latency_s:Q", title="End-to-end latency (s)"),
            color=_color(color, color_title),
            shape=alt.Shape("payload_file:N", title="Payload"),
            size=alt.Size("concurrency:O", title="Concurrency", legend=alt.Legend(orient="right")),
            tooltip=[
                alt.Tooltip("request_id:N", title="Request"),
                alt.Tooltip(f"{color}:N", title=color_title),
                alt.Tooltip("payload_file:N", title="Payload"),
                alt.Tooltip("concurrency:Q", title="Concurrency"),
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("prompt_tokens:Q", title="Prompt tokens"),
                alt.Tooltip("completion_tokens:Q", title="Completion tokens"),
                alt.Tooltip("e2e_latency_s:Q", title="Latency (s)", format=".3f"),
            ],
        )
        .properties(title="Prompt tokens vs latency per request", width=WIDTH, height=HEIGHT)
    )


def error_rate_by_concurrency(
    levels: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """Error rate per concurrency level, one bar per series."""
    return _natural_size(
        alt.Chart(levels)
        .mark_bar()
        .encode(
            x=alt.X("concurrency:O", title="Concurrency"),
            xOffset=alt.XOffset(f"{color}:N"),
            y=alt.Y("error_rate:Q", title="Error rate", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=_color(color, color_title),
            tooltip=[
                alt.Tooltip(f"{color}:N", title=color_title),
                alt.Tooltip("payload_file:N", title="Payload"),
                alt.Tooltip("concurrency:Q", title="Concurrency"),
                alt.Tooltip("error_rate:Q", title="Error rate", format=".2%"),
                alt.Tooltip("error_count:Q", title="Errors"),
                alt.Tooltip("request_count:Q", title="Requests"),
            ],
        )
        .properties(title="Error rate by concurrency", width=WIDTH, height=HEIGHT // 2 + 50)
    )


def price_performance(
    levels: pd.DataFrame,
    latency_budget_s: float | None = None,
    cost_budget_usd: float | None = None,
    color: str = "experiment_name",
    color_title: str = "Experiment",
) -> AnyChart:
    """p95 latency vs cost per 10k transactions; bubble size is transactions per minute, the box the budgets."""
    data = levels.dropna(subset=["latency_p95", "cost_per_10k_txn"])
    layers: list[alt.Chart] = []
    if latency_budget_s is not None and cost_budget_usd is not None:
        box = pd.DataFrame(
            {
                "x0": [0.0],
                "x1": [float(latency_budget_s)],
                "y0": [0.0],
                "y1": [float(cost_budget_usd)],
                "label": [f"budget: p95 ≤ {latency_budget_s:g} s, ≤ ${cost_budget_usd:g} per 10k"],
            }
        )
        layers += [
            alt.Chart(box)
            .mark_rect(color="#2ca02c", opacity=0.08, stroke=BUDGET_COLOR, strokeDash=[4, 4], strokeWidth=1.5)
            .encode(
                x=alt.X("x0:Q"),
                x2="x1:Q",
                y=alt.Y("y0:Q"),
                y2="y1:Q",
                tooltip=[
                    alt.Tooltip("x1:Q", title="Latency budget (s)"),
                    alt.Tooltip("y1:Q", title="Cost budget per 10k ($)"),
                ],
            ),
            alt.Chart(box)
            .mark_text(color=BUDGET_COLOR, align="right", baseline="bottom", dx=-4, dy=-4)
            .encode(x="x1:Q", y="y1:Q", text="label:N"),
        ]
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("payload_file:N", title="Payload"),
        alt.Tooltip("concurrency:Q", title="Concurrency"),
        alt.Tooltip("latency_p95:Q", title="p95 latency (s)", format=".3f"),
        alt.Tooltip("cost_per_10k_txn:Q", title="Cost per 10k txn ($)", format=".2f"),
        alt.Tooltip("transactions_per_minute:Q", title="Transactions/min", format=".1f"),
        alt.Tooltip("error_rate:Q", title="Error rate", format=".2%"),
        alt.Tooltip("meets_all_budgets:N", title="Meets every budget (marts)"),
    ]
    points = alt.Chart(data).encode(
        x=alt.X("latency_p95:Q", title="p95 end-to-end latency (s)"),
        y=alt.Y("cost_per_10k_txn:Q", title="Cost per 10k transactions (USD)"),
        tooltip=tooltip,
    )
    layers += [
        points.mark_circle(opacity=0.7, stroke="black", strokeWidth=0.5).encode(
            color=_color(color, color_title),
            size=alt.Size(
                "transactions_per_minute:Q",
                title="Transactions/min",
                scale=alt.Scale(range=[60, 900]),
                legend=alt.Legend(orient="right"),
            ),
        ),
        points.mark_text(dy=-14, fontSize=10).encode(text=alt.Text("concurrency:Q", format="d")),
    ]
    chart = alt.layer(*layers).properties(
        title="Price performance: p95 latency vs cost per 10k transactions (labels: concurrency)",
        width=WIDTH,
        height=HEIGHT,
    )
    return _natural_size(chart)


METRIC_TITLES = {
    "e2e_latency_s": "End-to-end latency (s)",
    "ttft_s": "Time to first token, TTFT (s)",
    "tpot_s": "Time per output token, TPOT (s)",
}


def _histogram(bins: pd.DataFrame, metric: str, color: str, color_title: str) -> alt.Chart:
    data = bins[bins["metric"] == metric]
    return (
        alt.Chart(data)
        .mark_bar(opacity=0.85)
        .encode(
            x=alt.X("bin_start:Q", title=METRIC_TITLES.get(metric, metric), bin="binned"),
            x2="bin_end:Q",
            y=alt.Y("sum(request_count):Q", title="Requests", stack="zero"),
            color=_color(color, color_title),
            tooltip=[
                alt.Tooltip(f"{color}:N", title=color_title),
                alt.Tooltip("bin_start:Q", title="From (s)", format=".4f"),
                alt.Tooltip("bin_end:Q", title="To (s)", format=".4f"),
                alt.Tooltip("sum(request_count):Q", title="Requests"),
            ],
        )
        .properties(title=METRIC_TITLES.get(metric, metric), width=WIDTH // 2 + 40, height=HEIGHT // 2 + 40)
    )


def histogram(
    bins: pd.DataFrame, metric: str, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """A histogram from SQL-binned rows (bin_start, bin_end, request_count) of one metric, stacked by series."""
    return _natural_size(_histogram(bins, metric, color, color_title))


def distributions(bins: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment") -> AnyChart:
    """The latency, TTFT and TPOT histograms side by side (those with data)."""
    present = [m for m in METRIC_TITLES if bins["metric"].eq(m).any()]
    return _natural_size(alt.hconcat(*[_histogram(bins, m, color, color_title) for m in present]))


def telemetry_bands(bands: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment") -> AnyChart:
    """Per measure over the run's time: each concurrency window as a p25-p75 box, min-max whisker, p50 line.

    Built from the per-level aggregates of fct_endpoint_metrics (rows of queries.telemetry_bands); the window
    label marks the concurrency level.
    """
    data = bands.dropna(subset=["p50"]).copy()
    data["window_mid_s"] = (data["window_start_s"] + data["window_end_s"]) / 2
    data["level"] = "c=" + data["concurrency"].astype(int).astype(str)
    data["title"] = data["measure"] + " (" + data["unit"] + ")"
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("concurrency:Q", title="Concurrency"),
        alt.Tooltip("window_start_s:Q", title="Window start (s)", format=".1f"),
        alt.Tooltip("window_end_s:Q", title="Window end (s)", format=".1f"),
        alt.Tooltip("sample_count:Q", title="Samples"),
        alt.Tooltip("min:Q", title="min", format=".2f"),
        alt.Tooltip("p25:Q", title="p25", format=".2f"),
        alt.Tooltip("p50:Q", title="p50", format=".2f"),
        alt.Tooltip("p75:Q", title="p75", format=".2f"),
        alt.Tooltip("max:Q", title="max", format=".2f"),
    ]
    x = alt.X("window_start_s:Q", title="Seconds since the run started")
    base = alt.Chart().encode(tooltip=tooltip)
    box = base.mark_rect(opacity=0.35).encode(
        x=x, x2="window_end_s:Q", y=alt.Y("p25:Q", title=None), y2="p75:Q", color=_color(color, color_title)
    )
    whisker = base.mark_rule(strokeWidth=1.5).encode(
        x="window_mid_s:Q", y="min:Q", y2="max:Q", color=_color(color, color_title)
    )
    median = base.mark_rule(strokeWidth=3).encode(x=x, x2="window_end_s:Q", y="p50:Q", color=_color(color, color_title))
    label = base.mark_text(baseline="bottom", dy=-3, fontSize=10).encode(x="window_mid_s:Q", y="max:Q", text="level:N")
    return _natural_size(
        alt.layer(box, whisker, median, label, data=data)
        .properties(width=WIDTH + 160, height=150)
        .facet(row=alt.Row("title:N", title=None, sort=alt.SortField("measure_order")))
        .resolve_scale(y="independent")
        .properties(title="Telemetry per concurrency window (box p25-p75, whisker min-max, thick line p50)")
    )


# fct_telemetry_samples columns drawn over time: column, panel title, unit, whether it is a GPU measure.
TELEMETRY_SERIES: tuple[tuple[str, str, str, bool], ...] = (
    ("cpu_percent", "Host CPU", "%", False),
    ("host_memory_used_gib", "Host memory used", "GiB", False),
    ("gpu_utilization_percent", "GPU utilisation (mean across GPUs)", "%", True),
    ("gpu_memory_used_gib", "GPU memory used (all GPUs)", "GiB", True),
    ("gpu_power_w", "GPU power (all GPUs)", "W", True),
)
NO_GPU_TELEMETRY = "No GPU telemetry in this run (no NVML on the collector's host)."
SERIES_COLOR = "#1f77b4"


def has_gpu_telemetry(samples: pd.DataFrame) -> bool:
    """Whether any instant sampled a GPU (fct_telemetry_samples.gpu_count > 0)."""
    return bool(len(samples)) and bool(pd.to_numeric(samples["gpu_count"]).fillna(0).gt(0).any())


def level_windows(endpoint: pd.DataFrame) -> pd.DataFrame:
    """fct_endpoint_metrics rows as the shaded windows of the time series: start/end/mid seconds and `c=N`."""
    windows = pd.DataFrame(
        {
            "experiment_name": endpoint["experiment_name"].astype(str),
            "concurrency": endpoint["concurrency"].astype(int),
            "start_s": endpoint["window_start_offset_ns"].astype(float) / 1e9,
            "end_s": endpoint["window_end_offset_ns"].astype(float) / 1e9,
            "window_sample_count": endpoint["sample_count"].astype(int),
        }
    ).reset_index(drop=True)
    windows["mid_s"] = (windows["start_s"] + windows["end_s"]) / 2
    windows["level"] = "c=" + windows["concurrency"].astype(str)
    return windows


def telemetry_over_time(samples: pd.DataFrame, endpoint: pd.DataFrame) -> AnyChart:
    """Host CPU % and memory, and (when a GPU was sampled) GPU utilisation, memory and power, over the run.

    `samples` are rows of queries.telemetry_samples (fct_telemetry_samples); `endpoint` the fct_endpoint_metrics
    rows whose windows are shaded and labelled `c=N` (coloured by experiment). One panel per measure, all on
    the same seconds-since-the-run-started axis.
    """
    windows = level_windows(endpoint)
    series = [s for s in TELEMETRY_SERIES if not s[3] or has_gpu_telemetry(samples)]
    series = [s for s in series if samples[s[0]].notna().any()]
    ends = [0.0, *samples["seconds_since_run_start"].dropna(), *windows["end_s"]]
    x_scale = alt.Scale(domain=[0.0, float(max(ends))], nice=False)
    window_tooltip = [
        alt.Tooltip("experiment_name:N", title="Experiment"),
        alt.Tooltip("concurrency:Q", title="Concurrency"),
        alt.Tooltip("start_s:Q", title="Window start (s)", format=".1f"),
        alt.Tooltip("end_s:Q", title="Window end (s)", format=".1f"),
        alt.Tooltip("window_sample_count:Q", title="Samples in window"),
    ]
    panels = []
    for i, (column, title, unit, is_gpu) in enumerate(series):
        x_title = "Seconds since the run started" if i == len(series) - 1 else None
        layers: list[alt.Chart] = []
        if not windows.empty:
            marks = alt.Chart(windows)
            layers += [
                marks.mark_rect(fillOpacity=0.15, stroke="#999", strokeWidth=0.8).encode(
                    x=alt.X("start_s:Q", scale=x_scale, title=x_title),
                    x2="end_s:Q",
                    color=_color("experiment_name", "Level window of experiment"),
                    tooltip=window_tooltip,
                ),
                marks.mark_text(baseline="top", dy=3, fontSize=10, color="#444").encode(
                    x=alt.X("mid_s:Q", scale=x_scale, title=x_title),
                    y=alt.value(0),
                    text="level:N",
                    tooltip=window_tooltip,
                ),
            ]
        tooltip = [
            alt.Tooltip("seconds_since_run_start:Q", title="Seconds since start", format=".1f"),
            alt.Tooltip(
                "sampled_at:T",
                title="Sampled at (UTC)",
                format="%Y-%m-%d %H:%M:%S",
                timeUnit="utcyearmonthdatehoursminutesseconds",
            ),
            alt.Tooltip("experiment_name:N", title="Experiment"),
            alt.Tooltip("concurrency:Q", title="Concurrency"),
            alt.Tooltip(f"{column}:Q", title=f"{title} ({unit})", format=".2f"),
            alt.Tooltip("sample_count:Q", title="Instants averaged"),
        ]
        if is_gpu:
            tooltip.append(alt.Tooltip("gpu_count:Q", title="GPUs"))
        if column == "gpu_memory_used_gib":
            tooltip.append(alt.Tooltip("gpu_memory_total_gib:Q", title="GPU memory installed (GiB)", format=".1f"))
        line = alt.Chart(samples).encode(
            x=alt.X("seconds_since_run_start:Q", scale=x_scale, title=x_title),
            y=alt.Y(f"{column}:Q", title=unit),
            tooltip=tooltip,
        )
        layers += [
            line.mark_line(color=SERIES_COLOR, strokeWidth=1.5),
            line.mark_circle(color=SERIES_COLOR, size=16),
        ]
        panels.append(alt.layer(*layers).properties(title=f"{title} ({unit})", width=WIDTH + 160, height=110))
    return _natural_size(
        alt.vconcat(*panels)
        .resolve_scale(x="shared", color="shared")
        .properties(title="Host and GPU telemetry over the run (shaded: concurrency level windows)")
    )
