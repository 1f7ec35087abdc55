"""Altair chart definitions shared by the app's pages and the report's PNGs (pure Altair, no streamlit).

Each function takes a mart frame already filtered to what it should show and returns a chart at the report's
fixed size; `fit_container` makes any of them as wide as the app's column. Axis titles, tooltip titles and the
numbers shown come from collector.outputs.figures. A chart with nothing to draw says why (`empty_reason`).
`color` names the column that tells series apart (an experiment by default; Compare passes a run label).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import altair as alt
import pandas as pd

from collector.outputs import figures
from collector.outputs.precision import flag

AnyChart = alt.Chart | alt.LayerChart | alt.HConcatChart | alt.VConcatChart | alt.FacetChart

WIDTH = 520
HEIGHT = 300
BUDGET_COLOR = "#d62728"
PERCENTILE_DASH = {"p50": [1, 0], "p95": [6, 3], "p99": [2, 2]}
# Vega's tableau20, its ten saturated hues first: ten series get ten different hues before any repeats lighter.
SERIES_COLORS = (
    *("#4c78a8", "#f58518", "#54a24b", "#b79a20", "#439894", "#e45756", "#79706e", "#d67195", "#b279a2", "#9e765f"),
    *("#9ecae9", "#ffbf79", "#88d27a", "#f2cf5b", "#83bcb6", "#ff9d98", "#bab0ac", "#fcbfd2", "#d6a5c9", "#d8b5a5"),
)
SERIES_COLOR = SERIES_COLORS[0]
TEXT_COLOR = "#555"
# The legend wraps into as many columns of this many pixels as the plot is wide.
LEGEND_COLUMN_PX = 300
LABEL_LIMIT_PX = LEGEND_COLUMN_PX - 30
EMPTY_KEY = "empty_reason"
APP_PADDING_PX = 6


# -- Figures: what the charts plot and show -------------------------------------------------------------------


def _shown(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """A copy with each figure column in its display unit (TTFT in ms, error rate in %) and a `<column>_text`
    beside it written by the precision rule, for the tooltips. Positions keep every digit (only scaled)."""
    out = frame.copy()
    for column in columns:
        fig = figures.figure(column)
        raw = pd.to_numeric(out[column], errors="coerce").astype("float64")
        out[f"{column}_text"] = [fig.with_unit(v) for v in raw]
        out[column] = raw * fig.scale
    return out


def repeat_count(levels: pd.DataFrame) -> int:
    """The most times any of these levels ran (repeats_per_level); 1 when none repeated."""
    if "repeat_count" not in levels or levels.empty:
        return 1
    return int(pd.to_numeric(levels["repeat_count"], errors="coerce").fillna(1).max())


def _spread_bars(levels: pd.DataFrame, column: str, x: alt.X, color: alt.Color) -> list[alt.Chart]:
    """Error bars from the lowest to the highest of a figure across each level's repeats (the marts'
    `<column>_repeat_min` and `_max`), or nothing when no level ran more than once."""
    low, high = f"{column}_repeat_min", f"{column}_repeat_max"
    if repeat_count(levels) < 2 or low not in levels or high not in levels:
        return []
    fig = figures.figure(column)
    data = levels.dropna(subset=[low, high]).copy()
    for end in (low, high):
        data[end] = pd.to_numeric(data[end], errors="coerce").astype("float64") * fig.scale
    data["spread_text"] = [
        f"{fig.with_unit(lo / fig.scale)} to {fig.with_unit(hi / fig.scale)} over {int(n)} repeats"
        for lo, hi, n in zip(data[low], data[high], data["repeat_count"], strict=True)
    ]
    return [
        alt.Chart(data)
        .mark_rule(size=2, opacity=0.7)
        .encode(
            x=x,
            y=alt.Y(f"{low}:Q"),
            y2=alt.Y2(f"{high}:Q"),
            color=color,
            tooltip=[_tip_plain("spread_text", f"{fig.label}, spread")],
        )
    ]


def _tip_plain(column: str, title: str) -> alt.Tooltip:
    return alt.Tooltip(f"{column}:N", title=title)


def spread_note(levels: pd.DataFrame) -> str:
    """The subtitle line that says what a chart's error bars are, or '' without repeats."""
    n = repeat_count(levels)
    return f"Bars: lowest to highest over each level's {n} repeats." if n > 1 else ""


def _tip(column: str, title: str | None = None) -> alt.Tooltip:
    """A tooltip line for a figure column of a `_shown` frame: its label and its value with the unit."""
    return alt.Tooltip(f"{column}_text:N", title=title or figures.figure(column).label)


def _axis_title(column: str) -> str:
    return figures.header(column)


# -- Series colours and legends -------------------------------------------------------------------------------


def _legend(**overrides: Any) -> alt.Legend:
    return alt.Legend(
        orient=overrides.pop("orient", "bottom"),
        # `width` is the plot's width in a single or layered view; a concatenation has none (one column then).
        columns={"expr": f"isFinite(width) && width > 0 ? max(1, floor(width / {LEGEND_COLUMN_PX})) : 1"},
        labelLimit={
            "expr": f"isFinite(width) && width > 0 ? max(100, min({LABEL_LIMIT_PX}, width - 30)) : {LABEL_LIMIT_PX}"
        },
        **overrides,
    )


def _color(color: str, title: str, series: pd.Series) -> alt.Color:
    """The series colour from one palette over every series of the frame given (`series`, sorted), so a series
    keeps its colour in each chart drawn from that frame, even one where it has nothing to plot."""
    domain = sorted({str(v) for v in series.dropna()})
    return alt.Color(
        f"{color}:N", title=title, scale=alt.Scale(domain=domain, range=list(SERIES_COLORS)), legend=_legend()
    )


def _concurrency_axis(levels: pd.DataFrame, title: str | None = None) -> alt.X:
    values = sorted({int(c) for c in levels["concurrency"].dropna()})
    return alt.X(
        "concurrency:Q",
        title=_axis_title("concurrency") if title is None else title,
        scale=alt.Scale(type="log", base=2, nice=False, padding=12),
        axis=alt.Axis(values=values, format="d"),
    )


def _title(text: str, subtitle: Sequence[str] = ()) -> str | alt.TitleParams:
    """A chart title, with the non-empty subtitle lines under it (what is left out, what the box means)."""
    lines = [s for s in subtitle if s]
    return alt.TitleParams(text=text, subtitle=lines) if lines else text


def _natural_size(chart: AnyChart) -> AnyChart:
    """Width and height size the plot; legends and titles add to them (the report's PNGs, and Streamlit would
    otherwise fit the whole chart, legends included, into the height and squash the plot)."""
    return chart.properties(autosize=alt.AutoSizeParams(type="pad", contains="padding"))


def fit_container(chart: AnyChart) -> AnyChart:
    """The app's version of a chart: every view as wide as the column it is drawn in (st.altair_chart with
    width="stretch"), heights kept. Vega-Lite sizes only single views, layers and their vertical stacks to a
    container, so a side-by-side pair is stacked; a faceted chart keeps its fixed size."""
    chart = chart.copy(deep=True)
    if isinstance(chart, alt.FacetChart):
        return chart
    if isinstance(chart, alt.HConcatChart):
        stacked = alt.vconcat(*chart.hconcat)
        for key in ("title", "resolve", "usermeta", "config"):
            value = chart._get(key)
            if value is not alt.Undefined:
                stacked[key] = value
        chart = stacked
    if isinstance(chart, alt.VConcatChart):
        for part in chart.vconcat:
            part.width = "container"
    else:
        chart.width = "container"
    chart.autosize = alt.AutoSizeParams(type="fit-x", contains="padding")
    # Room for the text boxes at the edges (a title's line box, a rotated axis title): Streamlit sets no padding
    # but at the bottom, and expects an object here.
    chart.padding = {side: APP_PADDING_PX for side in ("left", "top", "right", "bottom")}
    return chart


# -- Charts with nothing to draw ------------------------------------------------------------------------------


def _nothing(title: str, reason: str, width: int = WIDTH) -> AnyChart:
    """A chart that draws the reason it has no data where its plot would be, and carries it for the app."""
    return _natural_size(
        alt.Chart(pd.DataFrame({"reason": [reason]}))
        .mark_text(align="left", baseline="middle", fontSize=13, color=TEXT_COLOR, x=0, y=20)
        .encode(text="reason:N")
        .properties(title=_title(title), width=width, height=40, usermeta={EMPTY_KEY: reason})
    )


def empty_reason(chart: AnyChart) -> str | None:
    """Why a chart of this module draws nothing (no successful request, not streamed, no price...), or None.

    The app shows the reason instead of the chart (streamlit_app.ui.chart); the report can write it in place of
    the PNG."""
    meta = chart._get("usermeta")
    return None if meta is alt.Undefined or not isinstance(meta, dict) else meta.get(EMPTY_KEY)


def _successes(levels: pd.DataFrame) -> pd.Series:
    if "success_count" in levels:
        return pd.to_numeric(levels["success_count"], errors="coerce").fillna(0)
    return pd.to_numeric(levels["latency_p50"], errors="coerce").notna().astype(int)


def level_reason(levels: pd.DataFrame, needs: str = "latency") -> str | None:
    """Why a per-level chart has nothing to draw: no level, no successful request in any of them, no price
    (`needs="price"`), or no streamed response (`needs="ttft"`); None when it has something."""
    if levels.empty:
        return "No measured level to draw (pick another bucket or experiment, or wait for the run's build)."
    if _successes(levels).sum() == 0:
        failed = int(pd.to_numeric(levels.get("error_count", pd.Series(dtype=float)), errors="coerce").sum())
        what = f" all {failed:,} measured requests failed" if failed else " no request succeeded"
        return f"Nothing to draw:{what} (see the error table), so there is no latency or throughput."
    if needs == "price" and pd.to_numeric(levels["cost_per_10k_txn"], errors="coerce").isna().all():
        return (
            "No priced level: price performance needs an instance price (pricing/instance_prices.csv) or a "
            "token price for the model, and none applied to these levels."
        )
    if needs == "ttft" and pd.to_numeric(levels["ttft_p50"], errors="coerce").isna().all():
        return "No TTFT or TPOT: the responses were not streamed (`stream: true` on the endpoint measures them)."
    return None


def histogram_reason(bins: pd.DataFrame, metric: str) -> str | None:
    """Why the histogram of `metric` (a fct_requests column) is empty for these binned rows, or None."""
    if bins.empty:
        return "No successful request matches the filters, so there is no distribution to draw."
    if bins["metric"].eq(metric).any():
        return None
    if metric in ("ttft_s", "tpot_s") and not bins["metric"].eq("ttft_s").any():
        return f"No {figures.figure(metric).label}: the responses were not streamed (TTFT and TPOT need streaming)."
    if metric == "tpot_s":
        return "No TPOT: no successful streamed request returned more than one output token."
    return f"No {figures.figure(metric).label} in the matching successful requests."


# -- Per-level charts -----------------------------------------------------------------------------------------


def _unmeasured(levels: pd.DataFrame, column: str, color: str) -> list[str]:
    """`series c=N` of the levels that have no `column` (drawn by nobody), for a chart's subtitle."""
    missing = levels[pd.to_numeric(levels[column], errors="coerce").isna()]
    return [f"{row[color]} c={int(row['concurrency'])}" for _, row in missing.iterrows()]


def _not_drawn(names: list[str], why: str, limit: int = 4) -> str:
    if not names:
        return ""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"Not drawn ({why}): {', '.join(names[:limit])}{more}."


def closed_levels(levels: pd.DataFrame) -> pd.DataFrame:
    """The closed-loop levels (the concurrency charts' x axis); open-loop ones go to the rate chart."""
    if "target_rate_rps" not in levels:
        return levels
    return levels[levels["target_rate_rps"].isna()]


def _open_only(levels: pd.DataFrame, title: str) -> AnyChart | None:
    """The chart saying so, when every level is open loop (nothing has a concurrency axis)."""
    if not levels.empty and closed_levels(levels).empty:
        return _nothing(title, "Only open-loop (rate) levels: see the rate chart, which draws them by offered rate.")
    return None


def level_label(level: pd.Series) -> str:
    """A level's load as a short label: `4` (concurrency) or `12.6/s` (an open loop's target rate)."""
    rate = level.get("target_rate_rps")
    if rate is not None and not pd.isna(rate):
        return f"{figures.figure('target_rate_rps').text(rate)}/s"
    return str(int(level["concurrency"]))


def latency_vs_concurrency(
    levels: pd.DataFrame,
    latency_budget_s: float | None = None,
    color: str = "experiment_name",
    color_title: str = "Experiment",
) -> AnyChart:
    """Concurrency vs end-to-end latency p50/p95/p99 of the successful requests, the budget as a red rule."""
    title = "Concurrency vs latency (p50, p95, p99)"
    if (chart := _open_only(levels, title)) is not None:
        return chart
    levels = closed_levels(levels)
    if reason := level_reason(levels):
        return _nothing(title, reason)
    latency = figures.figure("e2e_latency_s")
    long = levels.melt(
        id_vars=[color, "payload_file", "concurrency", "transactions_per_minute"],
        value_vars=["latency_p50", "latency_p95", "latency_p99"],
        var_name="percentile",
        value_name="latency_s",
    ).dropna(subset=["latency_s"])
    long["percentile"] = long["percentile"].str.removeprefix("latency_")
    long = _shown(long, ["concurrency", "transactions_per_minute"])
    long["latency_s_text"] = [latency.with_unit(v) for v in long["latency_s"]]
    base = alt.Chart(long).encode(
        x=_concurrency_axis(levels),
        y=alt.Y("latency_s:Q", title=latency.header),
        color=_color(color, color_title, levels[color]),
        tooltip=[
            alt.Tooltip(f"{color}:N", title=color_title),
            alt.Tooltip("payload_file:N", title="Payload"),
            _tip("concurrency"),
            alt.Tooltip("percentile:N", title="Percentile"),
            alt.Tooltip("latency_s_text:N", title=latency.label),
            _tip("transactions_per_minute"),
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
        *_spread_bars(levels, "latency_p95", _concurrency_axis(levels), _color(color, color_title, levels[color])),
    ]
    if latency_budget_s is not None:
        budget = pd.DataFrame({"latency_budget_s": [float(latency_budget_s)], "label": ["latency budget"]})
        budget["latency_budget_s_text"] = latency.with_unit(latency_budget_s)
        rule = alt.Chart(budget).encode(
            y=alt.Y("latency_budget_s:Q"),
            tooltip=[alt.Tooltip("latency_budget_s_text:N", title="Latency budget (p95)")],
        )
        layers += [
            rule.mark_rule(color=BUDGET_COLOR, strokeDash=[4, 4], size=2),
            rule.mark_text(color=BUDGET_COLOR, align="left", dy=-6, x=4).encode(text="label:N"),
        ]
    subtitle = [
        _not_drawn(_unmeasured(levels, "latency_p50", color), "no successful request"),
        spread_note(levels).replace("Bars:", "Bars on p95:"),
    ]
    return _natural_size(alt.layer(*layers).properties(title=_title(title, subtitle), width=WIDTH, height=HEIGHT))


THROUGHPUT_PANELS = ("transactions_per_minute", "prompt_token_throughput", "completion_token_throughput")


def throughput_vs_concurrency(
    levels: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """Concurrency vs transactions per minute, prompt tokens/s and output tokens/s, one panel each: prompt
    throughput is often ten times the output's, and one axis for both would flatten the output's."""
    title = "Concurrency vs throughput"
    if (chart := _open_only(levels, title)) is not None:
        return chart
    levels = closed_levels(levels)
    if reason := level_reason(levels):
        return _nothing(title, reason)
    data = _shown(levels, ["concurrency", *THROUGHPUT_PANELS])
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("payload_file:N", title="Payload"),
        _tip("concurrency"),
        *[_tip(c) for c in THROUGHPUT_PANELS],
    ]
    panels = []
    for i, column in enumerate(THROUGHPUT_PANELS):
        last = i == len(THROUGHPUT_PANELS) - 1
        base = alt.Chart(data).encode(
            x=_concurrency_axis(levels, title=None if last else ""),
            y=alt.Y(f"{column}:Q", title=figures.figure(column).unit or figures.figure(column).label),
            color=_color(color, color_title, levels[color]),
            tooltip=tooltip,
        )
        bars = _spread_bars(
            levels,
            column,
            _concurrency_axis(levels, title=None if last else ""),
            _color(color, color_title, levels[color]),
        )
        panels.append(
            alt.layer(base.mark_line(), base.mark_point(filled=True, size=50), *bars).properties(
                title=_axis_title(column), width=WIDTH, height=130
            )
        )
    return _natural_size(
        alt.vconcat(*panels)
        .resolve_scale(x="shared", y="independent", color="shared")
        .properties(title=_title(f"{title} (each measure on its own scale)", [spread_note(levels)]))
    )


def error_rate_by_concurrency(
    levels: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """Error rate per concurrency level, one bar per series."""
    title = "Error rate by concurrency"
    if (chart := _open_only(levels, title)) is not None:
        return chart
    levels = closed_levels(levels)
    if levels.empty:
        return _nothing(title, "No measured level to draw.")
    if pd.to_numeric(levels["error_count"], errors="coerce").fillna(0).sum() == 0:
        requests = int(pd.to_numeric(levels["request_count"], errors="coerce").fillna(0).sum())
        return _nothing(title, f"No request failed: the error rate is 0 at every level ({requests:,} requests).")
    data = _shown(levels, ["concurrency", "error_rate", "error_count", "request_count"])
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("payload_file:N", title="Payload"),
        _tip("concurrency"),
        _tip("error_rate"),
        _tip("error_count"),
        _tip("request_count"),
    ]
    if "error_sentence" in data:
        tooltip.append(alt.Tooltip("error_sentence:N", title="What failed"))
    return _natural_size(
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("concurrency:O", title=_axis_title("concurrency"), axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset(f"{color}:N"),
            y=alt.Y("error_rate:Q", title=_axis_title("error_rate"), scale=alt.Scale(domain=[0, 100])),
            color=_color(color, color_title, levels[color]),
            tooltip=tooltip,
        )
        .properties(title=_title(title), width=WIDTH, height=HEIGHT // 2 + 50)
    )


def _rate_state(level: pd.Series) -> str:
    if flag(level.get("is_schedule_kept")) is False:
        return "client fell behind"
    return "saturated" if flag(level.get("is_saturated")) else "kept up"


def rate_curve(
    levels: pd.DataFrame,
    latency_budget_s: float | None = None,
    color: str = "experiment_name",
    color_title: str = "Experiment",
) -> AnyChart:
    """Open-loop levels by offered rate: the rate served against the rate offered (on the diagonal while the
    server keeps up, flat where it saturates) and the p95 latency, each level's point saying whether its schedule
    was kept and whether it saturated."""
    title = "Offered rate vs served rate and latency (open loop)"
    rated = levels[levels["target_rate_rps"].notna()] if "target_rate_rps" in levels else levels.iloc[0:0]
    if rated.empty:
        return _nothing(title, "No open-loop level: give an experiment `load: {model: rate}` or `{model: sweep}`.")
    if reason := level_reason(rated):
        return _nothing(title, reason)
    data = _shown(rated, ["target_rate_rps", "offered_request_rate", "latency_p95", "transactions_per_minute"])
    data["served_rps"] = pd.to_numeric(rated["transactions_per_minute"], errors="coerce").to_numpy() / 60
    data["state"] = [_rate_state(row) for _, row in rated.iterrows()]
    rate = figures.figure("offered_request_rate")
    x = alt.X("offered_request_rate:Q", title=rate.header)
    shape = alt.Shape(
        "state:N",
        title="Level",
        scale=alt.Scale(domain=["kept up", "saturated", "client fell behind"], range=["circle", "triangle", "cross"]),
    )
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("payload_file:N", title="Payload"),
        _tip("target_rate_rps"),
        _tip("offered_request_rate"),
        alt.Tooltip("served_rps:Q", title="Served (req/s)", format=".3g"),
        _tip("latency_p95"),
        alt.Tooltip("state:N", title="Level"),
    ]
    base = alt.Chart(data).encode(x=x, color=_color(color, color_title, levels[color]), tooltip=tooltip)
    top = float(max(data["offered_request_rate"].max(), data["served_rps"].max()) or 1)
    diagonal = (
        alt.Chart(pd.DataFrame({"r": [0.0, top]}))
        .mark_line(color="#999999", strokeDash=[4, 4])
        .encode(x="r:Q", y="r:Q")
    )
    served = (
        diagonal
        + base.mark_line().encode(y=alt.Y("served_rps:Q", title="Served (req/s)"))
        + base.mark_point(filled=True, size=70).encode(y="served_rps:Q", shape=shape)
    ).properties(title="Served vs offered (dashed: served = offered)", width=WIDTH, height=HEIGHT // 2 + 50)
    latency_layers: list[alt.Chart] = [
        base.mark_line().encode(y=alt.Y("latency_p95:Q", title=_axis_title("latency_p95"))),
        base.mark_point(filled=True, size=70).encode(y="latency_p95:Q", shape=shape),
    ]
    if latency_budget_s is not None:
        rule = pd.DataFrame({"latency_p95": [float(latency_budget_s)]})
        latency_layers.append(
            alt.Chart(rule).mark_rule(color=BUDGET_COLOR, strokeDash=[4, 4], size=2).encode(y="latency_p95:Q")
        )
    latency = alt.layer(*latency_layers).properties(title="Latency p95", width=WIDTH, height=HEIGHT // 2 + 50)
    return _natural_size(
        alt.vconcat(served, latency).resolve_scale(x="shared", y="independent").properties(title=title)
    )


# -- Price performance ----------------------------------------------------------------------------------------

LABEL_FONT_PX = 11
# Where a concurrency label may go around its bubble: name -> (direction x, direction y); first free one wins.
LABEL_SPOTS: dict[str, tuple[float, float]] = {
    "above": (0, -1),
    "right": (1, 0),
    "below": (0, 1),
    "left": (-1, 0),
    "above right": (0.75, -0.75),
    "above left": (-0.75, -0.75),
    "below right": (0.75, 0.75),
    "below left": (-0.75, 0.75),
}
ALIGN: dict[int, Literal["left", "center", "right"]] = {-1: "right", 0: "center", 1: "left"}
BASELINE: dict[int, Literal["bottom", "middle", "top"]] = {-1: "bottom", 0: "middle", 1: "top"}


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


BUBBLE_AREA = (40, 500)
# A label's gap from its bubble's centre: clear of the largest bubble.
LABEL_OFFSET_PX = math.sqrt(BUBBLE_AREA[1] / math.pi) + 2
# The narrowest plot the app draws this chart in (a 1280 px window); wider ones only leave more room.
PLACEMENT_WIDTH_PX = 600


def _text_box(x: float, y: float, text: str, spot: str) -> tuple[float, float, float, float]:
    """The pixel box (x0, y0, x1, y1) of a label written at `spot` of a bubble centred at (x, y)."""
    w, h = len(text) * LABEL_FONT_PX * 0.62 + 2, LABEL_FONT_PX + 2
    dx, dy = LABEL_SPOTS[spot]
    cx = x + dx * LABEL_OFFSET_PX + _sign(dx) * w / 2
    cy = y + dy * LABEL_OFFSET_PX + _sign(dy) * h / 2
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_labels(
    points: pd.DataFrame, x_max: float, y_max: float, size_max: float, width: float, height: float
) -> list[str]:
    """A spot (LABEL_SPOTS) for each point's concurrency label, so that labels overlap neither each other nor
    the bubbles: the first spot that is free and inside the plot, else the least covered one.

    `points` has latency_p95, cost_per_10k_txn, transactions_per_minute and concurrency; the plot maps
    [0, x_max] x [0, y_max] onto width x height pixels and bubble areas [0, size_max] onto BUBBLE_AREA."""
    px = [float(v) / x_max * width for v in points["latency_p95"]]
    py = [height - float(v) / y_max * height for v in points["cost_per_10k_txn"]]
    lo, hi = BUBBLE_AREA
    radii = [
        math.sqrt((lo + (hi - lo) * (float(t) / size_max if size_max > 0 else 0)) / math.pi)
        for t in points["transactions_per_minute"].fillna(0)
    ]
    obstacles = [(x - r, y - r, x + r, y + r) for x, y, r in zip(px, py, radii, strict=True)]
    spots: list[str] = []
    for i, concurrency in enumerate(points["concurrency"]):
        text = str(int(concurrency))
        best, best_cost = "above", math.inf
        for spot in LABEL_SPOTS:
            box = _text_box(px[i], py[i], text, spot)
            outside = box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height
            cost = sum(_overlap(box, o) for j, o in enumerate(obstacles) if j != i) + (1e6 if outside else 0)
            if cost < best_cost:
                best, best_cost = spot, cost
            if cost == 0:
                break
        spots.append(best)
        obstacles.append(_text_box(px[i], py[i], text, best))
    return spots


# An axis reaches out to a budget at most this many times its largest value; a budget further out would squash
# the points into a corner, so the budget box runs off the plot instead (the subtitle gives its value).
BUDGET_REACH = 2.5


def _reach(values: pd.Series, budget: float | None) -> float:
    """The top of a price-performance axis: the largest value and the budget (when near enough), plus a margin."""
    top = float(values.max())
    if budget is not None and float(budget) <= BUDGET_REACH * top:
        top = max(top, float(budget))
    return top * 1.1 if top > 0 else 1.0


def price_performance(
    levels: pd.DataFrame,
    latency_budget_s: float | None = None,
    cost_budget_usd: float | None = None,
    color: str = "experiment_name",
    color_title: str = "Experiment",
) -> AnyChart:
    """p95 latency vs cost per 10k transactions, a bubble per level sized by transactions per minute and
    labelled with its concurrency; the budgets as a shaded box (described in the subtitle, not on the plot)."""
    title = "Price performance: p95 latency vs cost per 10k transactions"
    if reason := level_reason(levels, needs="price"):
        return _nothing(title, reason)
    columns = ["concurrency", "latency_p95", "cost_per_10k_txn", "transactions_per_minute", "error_rate"]
    data = _shown(levels.dropna(subset=["latency_p95", "cost_per_10k_txn"]), columns)
    data = data.sort_values(
        [color, "payload_file", "concurrency", *(["target_rate_rps"] if "target_rate_rps" in data else [])]
    ).reset_index(drop=True)
    x_max = _reach(data["latency_p95"], latency_budget_s)
    y_max = _reach(data["cost_per_10k_txn"], cost_budget_usd)
    size_max = float(data["transactions_per_minute"].max() or 1)
    data["label"] = [level_label(row) for _, row in data.iterrows()]
    data["label_spot"] = place_labels(data, x_max, y_max, size_max, PLACEMENT_WIDTH_PX, HEIGHT)
    x = alt.X("latency_p95:Q", title=_axis_title("latency_p95"), scale=alt.Scale(domain=[0, x_max], nice=False))
    y = alt.Y(
        "cost_per_10k_txn:Q", title=_axis_title("cost_per_10k_txn"), scale=alt.Scale(domain=[0, y_max], nice=False)
    )
    layers: list[alt.Chart] = []
    subtitle = []
    if latency_budget_s is not None and cost_budget_usd is not None:
        box = pd.DataFrame({"x0": [0.0], "x1": [float(latency_budget_s)], "y0": [0.0], "y1": [float(cost_budget_usd)]})
        box["x1_text"] = figures.figure("latency_p95").with_unit(latency_budget_s)
        box["y1_text"] = figures.figure("cost_per_10k_txn").with_unit(cost_budget_usd)
        layers.append(
            alt.Chart(box)
            .mark_rect(
                color="#2ca02c", fillOpacity=0.08, stroke=BUDGET_COLOR, strokeDash=[4, 4], strokeWidth=1.5, clip=True
            )
            .encode(
                x=alt.X("x0:Q", scale=alt.Scale(domain=[0, x_max], nice=False)),
                x2="x1:Q",
                y=alt.Y("y0:Q", scale=alt.Scale(domain=[0, y_max], nice=False)),
                y2="y1:Q",
                tooltip=[
                    alt.Tooltip("x1_text:N", title="Latency budget (p95)"),
                    alt.Tooltip("y1_text:N", title="Cost budget per 10k transactions"),
                ],
            )
        )
        subtitle.append(
            f"Dashed red box: the budgets, p95 ≤ {box['x1_text'][0]} and ≤ {box['y1_text'][0]} per 10k transactions. "
            "Labels: concurrency."
        )
    else:
        subtitle.append("Labels: concurrency.")
    subtitle.append(_not_drawn(_unmeasured(levels, "cost_per_10k_txn", color), "no price"))
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("payload_file:N", title="Payload"),
        *[_tip(c) for c in columns],
    ]
    if "meets_all_budgets" in data:
        tooltip.append(alt.Tooltip("meets_all_budgets:N", title="Meets every budget (marts)"))
    points = alt.Chart(data).encode(x=x, y=y, tooltip=tooltip)
    layers += [
        points.mark_line(strokeWidth=1, opacity=0.5).encode(
            color=_color(color, color_title, levels[color]), detail="payload_file:N", order="concurrency:Q"
        ),
        points.mark_circle(opacity=0.75, stroke="black", strokeWidth=0.5).encode(
            color=_color(color, color_title, levels[color]),
            size=alt.Size(
                "transactions_per_minute:Q",
                title=_axis_title("transactions_per_minute"),
                scale=alt.Scale(domain=[0, size_max], range=list(BUBBLE_AREA)),
                legend=alt.Legend(orient="right"),
            ),
        ),
    ]
    for spot, (dx, dy) in LABEL_SPOTS.items():
        layers.append(
            points.transform_filter(alt.datum.label_spot == spot)
            .mark_text(
                fontSize=LABEL_FONT_PX,
                color="#222",
                align=ALIGN[_sign(dx)],
                baseline=BASELINE[_sign(dy)],
                dx=dx * LABEL_OFFSET_PX,
                dy=dy * LABEL_OFFSET_PX,
            )
            .encode(text="label:N")
        )
    return _natural_size(alt.layer(*layers).properties(title=_title(title, subtitle), width=WIDTH, height=HEIGHT))


# -- Requests -------------------------------------------------------------------------------------------------


def tokens_vs_latency(
    requests: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment"
) -> AnyChart:
    """Prompt tokens vs end-to-end latency, one point per successful request (a failed request's latency is
    how long it took to fail, not a latency: they are left out and counted in the subtitle)."""
    title = "Prompt tokens vs latency per request"
    ok = requests[requests["status"] == "success"] if "status" in requests else requests
    failed = len(requests) - len(ok)
    if ok.empty:
        reason = (
            f"No successful request among these {len(requests):,}: every one failed, so none has a latency."
            if failed
            else "No request matches."
        )
        return _nothing(title, reason)
    columns = ["concurrency", "prompt_tokens", "completion_tokens", "e2e_latency_s"]
    if "ttft_s" in ok:
        columns.append("ttft_s")
    data = _shown(ok, columns)
    subtitle = [f"Successful requests only: {failed:,} failed request(s) left out." if failed else ""]
    return _natural_size(
        alt.Chart(data)
        .mark_point(filled=True, opacity=0.6)
        .encode(
            x=alt.X("prompt_tokens:Q", title=_axis_title("prompt_tokens"), scale=alt.Scale(zero=False)),
            y=alt.Y("e2e_latency_s:Q", title=_axis_title("e2e_latency_s")),
            color=_color(color, color_title, requests[color]),
            shape=alt.Shape("payload_file:N", title="Payload", legend=_legend()),
            size=alt.Size(
                "concurrency:O",
                title=_axis_title("concurrency"),
                scale=alt.Scale(range=[25, 160]),
                legend=alt.Legend(orient="right"),
            ),
            tooltip=[
                alt.Tooltip("request_id:N", title="Request"),
                alt.Tooltip(f"{color}:N", title=color_title),
                alt.Tooltip("payload_file:N", title="Payload"),
                *[_tip(c) for c in columns],
            ],
        )
        .properties(title=_title(title, subtitle), width=WIDTH, height=HEIGHT)
    )


HISTOGRAM_METRICS = ("e2e_latency_s", "ttft_s", "tpot_s")


def _histogram(
    bins: pd.DataFrame, metric: str, color: str, color_title: str, width: int, legend: bool = True
) -> alt.Chart:
    fig = figures.figure(metric)
    data = bins[bins["metric"] == metric].copy()
    for edge in ("bin_start", "bin_end"):
        data[edge] = data[edge].astype(float) * fig.scale
        data[f"{edge}_text"] = [figures.plain(v) for v in data[edge]]
    # The domain runs from the fastest bin's start to the slowest's end, so the slowest requests are on it.
    domain = [float(data["bin_start"].min()), float(data["bin_end"].max())]
    return (
        alt.Chart(data)
        .mark_bar(opacity=0.85, binSpacing=0)
        .encode(
            x=alt.X(
                "bin_start:Q",
                title=fig.header,
                bin="binned",
                scale=alt.Scale(domain=domain, nice=False, zero=False),
                axis=alt.Axis(tickCount=5),
            ),
            x2="bin_end:Q",
            y=alt.Y("sum(request_count):Q", title="Requests", stack="zero"),
            color=_color(color, color_title, bins[color]) if legend else _color(color, "", bins[color]).legend(None),
            tooltip=[
                alt.Tooltip(f"{color}:N", title=color_title),
                alt.Tooltip("bin_start_text:N", title=f"From ({fig.unit})"),
                alt.Tooltip("bin_end_text:N", title=f"To ({fig.unit})"),
                alt.Tooltip("sum(request_count):Q", title="Requests", format=",d"),
            ],
        )
        .properties(
            title=fig.label,
            width=width,
            height=HEIGHT // 2 + 40,
        )
    )


def histogram(
    bins: pd.DataFrame,
    metric: str,
    color: str = "experiment_name",
    color_title: str = "Experiment",
    legend: bool = True,
) -> AnyChart:
    """A histogram of one fct_requests metric from SQL-binned rows (bin_start, bin_end in seconds, request_count),
    stacked by series, in the metric's display unit (TTFT and TPOT in ms). Its x domain runs from the fastest
    bin to the slowest; series colours follow every series in `bins` (so side-by-side histograms agree and one
    `legend` can serve them all)."""
    if reason := histogram_reason(bins, metric):
        return _nothing(figures.figure(metric).label, reason, width=WIDTH // 2 + 40)
    return _natural_size(_histogram(bins, metric, color, color_title, WIDTH // 2 + 40, legend))


def distributions(bins: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment") -> AnyChart:
    """The latency, TTFT and TPOT histograms side by side (those with data), for the report."""
    present = [m for m in HISTOGRAM_METRICS if not histogram_reason(bins, m)]
    if not present:
        return _nothing("Distributions", histogram_reason(bins, "e2e_latency_s") or "")
    return _natural_size(
        alt.hconcat(*[_histogram(bins, m, color, color_title, WIDTH // 2 + 40) for m in present]).properties(
            title=_title("Distributions of the successful requests")
        )
    )


# -- Telemetry ------------------------------------------------------------------------------------------------


def telemetry_bands(bands: pd.DataFrame, color: str = "experiment_name", color_title: str = "Experiment") -> AnyChart:
    """Per measure over the run's time: each concurrency window as a p25-p75 box, min-max whisker, p50 line.

    Built from the per-level aggregates of fct_endpoint_metrics (rows of queries.telemetry_bands); the window
    label marks the concurrency level.
    """
    data = bands.dropna(subset=["p50"]).copy()
    title = "Telemetry per concurrency window (box p25-p75, whisker min-max, thick line p50)"
    if data.empty:
        return _nothing(title, "No telemetry sample fell inside a level's window.")
    by_label = {f.label: f for f in figures.TELEMETRY}
    data["window_mid_s"] = (data["window_start_s"] + data["window_end_s"]) / 2
    data["level"] = "c=" + data["concurrency"].astype(int).astype(str)
    pairs = zip(data["measure"], data["unit"], strict=True)
    data["title"] = [by_label[m].header if m in by_label else f"{m} ({u})" for m, u in pairs]
    for stat in ("min", "p25", "p50", "p75", "max"):
        data[f"{stat}_text"] = [figures.plain(v) for v in data[stat]]
    window = figures.figure("window_duration_s")
    data["window_start_text"] = [window.with_unit(v) for v in data["window_start_s"]]
    data["window_end_text"] = [window.with_unit(v) for v in data["window_end_s"]]
    tooltip = [
        alt.Tooltip(f"{color}:N", title=color_title),
        alt.Tooltip("concurrency:Q", title="Concurrency"),
        alt.Tooltip("title:N", title="Measure"),
        alt.Tooltip("window_start_text:N", title="Window start"),
        alt.Tooltip("window_end_text:N", title="Window end"),
        alt.Tooltip("sample_count:Q", title="Samples", format=",d"),
        *[alt.Tooltip(f"{s}_text:N", title=s) for s in ("min", "p25", "p50", "p75", "max")],
    ]
    x = alt.X("window_start_s:Q", title="Seconds since the run started")
    base = alt.Chart().encode(tooltip=tooltip)
    box = base.mark_rect(opacity=0.35).encode(
        x=x,
        x2="window_end_s:Q",
        y=alt.Y("p25:Q", title=None),
        y2="p75:Q",
        color=_color(color, color_title, data[color]),
    )
    whisker = base.mark_rule(strokeWidth=1.5).encode(
        x="window_mid_s:Q", y="min:Q", y2="max:Q", color=_color(color, color_title, data[color])
    )
    median = base.mark_rule(strokeWidth=3).encode(
        x=x, x2="window_end_s:Q", y="p50:Q", color=_color(color, color_title, data[color])
    )
    label = base.mark_text(baseline="bottom", dy=-3, fontSize=10).encode(x="window_mid_s:Q", y="max:Q", text="level:N")
    return _natural_size(
        alt.layer(box, whisker, median, label, data=data)
        .properties(width=WIDTH + 160, height=150)
        .facet(row=alt.Row("title:N", title=None, sort=alt.SortField("measure_order")))
        .resolve_scale(y="independent")
        .properties(title=title)
    )


# fct_telemetry_samples columns drawn over time: the column, a panel title suffix, whether it is a GPU measure.
TELEMETRY_SERIES: tuple[tuple[str, str, bool], ...] = (
    ("cpu_percent", "", False),
    ("host_memory_used_gib", "", False),
    ("gpu_utilization_percent", "mean across GPUs", True),
    ("gpu_memory_used_gib", "all GPUs", True),
    ("gpu_power_w", "all GPUs", True),
)
NO_GPU_TELEMETRY = "No GPU telemetry in this run (no NVML on the collector's host)."
NO_TELEMETRY = "No telemetry sample of this run is in the marts (rerun `python -m collector build` after it ends)."


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
    window = figures.figure("window_duration_s")
    windows["start_s_text"] = [window.with_unit(v) for v in windows["start_s"]]
    windows["end_s_text"] = [window.with_unit(v) for v in windows["end_s"]]
    return windows


WINDOW_LABEL_FONT_PX = 10
WINDOW_LABEL_ROWS = 3


def window_label_rows(windows: pd.DataFrame, x_max: float, width_px: float) -> list[float | None]:
    """The pixel height of each window's `c=N` label above its panel's plot (negative: up from the plot's top
    edge, in a band of its own, off the data), stacking labels of narrow windows in up to WINDOW_LABEL_ROWS rows
    so that none overlaps another (None: no room, the window's tooltip still tells).

    Placed for a plot of `width_px` (the report's); the app's wider plots only leave more room."""
    row_ends = [-math.inf] * WINDOW_LABEL_ROWS
    heights: list[float | None] = [None] * len(windows)
    for i in sorted(range(len(windows)), key=lambda k: float(windows["mid_s"].iloc[k])):
        label = str(windows["level"].iloc[i])
        half = (len(label) * WINDOW_LABEL_FONT_PX * 0.6 + 4) / 2
        centre = float(windows["mid_s"].iloc[i]) / x_max * width_px if x_max > 0 else 0.0
        for row, end in enumerate(row_ends):
            if centre - half >= end:
                row_ends[row] = centre + half
                heights[i] = -(2.0 + row * (WINDOW_LABEL_FONT_PX + 1))
                break
    return heights


def telemetry_panel_title(column: str, suffix: str = "") -> str:
    """A time-series panel's title: the figure's header, with what the number covers before the unit:
    `GPU power (all GPUs) (W)`."""
    fig = figures.figure(column)
    return figures.Figure(column, f"{fig.label} ({suffix})", fig.unit).header if suffix else fig.header


def telemetry_over_time(samples: pd.DataFrame, endpoint: pd.DataFrame) -> AnyChart:
    """Host CPU % and memory, and (when a GPU was sampled) GPU utilisation, memory and power, over the run.

    `samples` are rows of queries.telemetry_samples (fct_telemetry_samples); `endpoint` the fct_endpoint_metrics
    rows whose windows are shaded and labelled `c=N` (coloured by experiment). One panel per measure, all on
    the same seconds-since-the-run-started axis.
    """
    title = "Host and GPU telemetry over the run (shaded: concurrency level windows)"
    if samples.empty:
        return _nothing(title, NO_TELEMETRY)
    windows = level_windows(endpoint)
    series = [s for s in TELEMETRY_SERIES if not s[2] or has_gpu_telemetry(samples)]
    series = [s for s in series if samples[s[0]].notna().any()]
    ends = [0.0, *samples["seconds_since_run_start"].dropna(), *windows["end_s"]]
    x_scale = alt.Scale(domain=[0.0, float(max(ends))], nice=False)
    windows["label_y"] = window_label_rows(windows, float(max(ends)), WIDTH + 160)
    window_tooltip = [
        alt.Tooltip("experiment_name:N", title="Experiment"),
        alt.Tooltip("concurrency:Q", title="Concurrency"),
        alt.Tooltip("start_s_text:N", title="Window start"),
        alt.Tooltip("end_s_text:N", title="Window end"),
        alt.Tooltip("window_sample_count:Q", title="Samples in window", format=",d"),
    ]
    shown = [c for c, _, _ in series]
    if "gpu_memory_used_gib" in shown:
        shown.append("gpu_memory_total_gib")
    data = _shown(samples, shown)
    data["seconds_text"] = [figures.plain(v) for v in data["seconds_since_run_start"]]
    panels = []
    for i, (column, suffix, is_gpu) in enumerate(series):
        x_title = "Seconds since the run started" if i == len(series) - 1 else None
        layers: list[alt.Chart] = []
        if not windows.empty:
            marks = alt.Chart(windows)
            layers += [
                marks.mark_rect(fillOpacity=0.15, stroke="#999", strokeWidth=0.8).encode(
                    x=alt.X("start_s:Q", scale=x_scale, title=x_title),
                    x2="end_s:Q",
                    color=_color("experiment_name", "Level window of experiment", windows["experiment_name"]),
                    tooltip=window_tooltip,
                ),
                marks.transform_filter("isValid(datum.label_y)")
                .mark_text(baseline="bottom", fontSize=WINDOW_LABEL_FONT_PX, color="#444")
                .encode(
                    x=alt.X("mid_s:Q", scale=x_scale, title=x_title),
                    y=alt.Y("label_y:Q", scale=None),
                    text="level:N",
                    tooltip=window_tooltip,
                ),
            ]
        tooltip = [
            alt.Tooltip("seconds_text:N", title="Seconds since start"),
            alt.Tooltip(
                "sampled_at:T",
                title="Sampled at (UTC)",
                format="%Y-%m-%d %H:%M:%S",
                timeUnit="utcyearmonthdatehoursminutesseconds",
            ),
            alt.Tooltip("experiment_name:N", title="Experiment"),
            alt.Tooltip("concurrency:Q", title="Concurrency"),
            _tip(column),
            alt.Tooltip("sample_count:Q", title="Instants averaged", format=",d"),
        ]
        if is_gpu:
            tooltip.append(alt.Tooltip("gpu_count:Q", title="GPUs", format=",d"))
        if column == "gpu_memory_used_gib":
            tooltip.append(_tip("gpu_memory_total_gib"))
        line = alt.Chart(data).encode(
            x=alt.X("seconds_since_run_start:Q", scale=x_scale, title=x_title),
            y=alt.Y(f"{column}:Q", title=figures.figure(column).unit),
            tooltip=tooltip,
        )
        layers += [
            line.mark_line(color=SERIES_COLOR, strokeWidth=1.5),
            line.mark_circle(color=SERIES_COLOR, size=16),
        ]
        panels.append(
            alt.layer(*layers).properties(title=telemetry_panel_title(column, suffix), width=WIDTH + 160, height=110)
        )
    return _natural_size(alt.vconcat(*panels).resolve_scale(x="shared", color="shared").properties(title=_title(title)))
