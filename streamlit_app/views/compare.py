"""Compare page: runs or experiments (models, serving stacks, instance types) side by side on one bucket."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collector.outputs import charts, figures, sentences, tables
from streamlit_app import cache, ui

ctx = ui.context()
st.title("Compare")
run_ids = [str(r) for r in ctx.runs["run_id"]]
RUN_NAMES = {str(r["run_id"]): ui.run_name(r, ctx.runs) for _, r in ctx.runs.iterrows()}
chosen_runs = st.multiselect(
    "Runs",
    run_ids,
    default=[ctx.run_id],
    format_func=lambda rid: RUN_NAMES.get(rid, rid),
    key="cmp_runs",
    bind="query-params",
    help="Pick several runs to compare them; within one run, its experiments are compared.",
) or [ctx.run_id]
levels = cache.level_metrics(ctx.warehouse, chosen_runs)
recs = cache.recommendations(ctx.warehouse, chosen_runs)
if levels.empty:
    st.info("The chosen runs have no measured level in the marts.")
    st.stop()


def series_label(frame: pd.DataFrame) -> pd.Series:
    """The experiment, and with several runs the run's name (with its start time where two runs share a name)."""
    if len(chosen_runs) == 1:
        return frame["experiment_name"].astype(str)
    return frame["experiment_name"].astype(str) + " · " + frame["run_id"].astype(str).map(RUN_NAMES)


levels = levels.assign(series=series_label(levels))
recs = recs.assign(series=series_label(recs))

# Only buckets every chosen run measured can be compared fairly.
per_run = levels.groupby("run_id")["payload_file"].agg(set)
common = sorted(set.intersection(*per_run.tolist())) if len(per_run) else []
if not common:
    st.warning("The chosen runs share no payload bucket; pick runs measured on the same bucket.")
    st.stop()
of_interest = [p for p in common if str(ctx.run["dataset_of_interest"]) in p]
left, right = st.columns([1, 2])
with left:
    bucket = ui.bucket_choice(common, of_interest[0] if of_interest else None, key="cmp_bucket")
all_series = sorted(levels["series"].unique())
with right:
    chosen_series = (
        st.multiselect("Experiments", all_series, default=all_series, key="cmp_series", bind="query-params")
        or all_series
    )

shown = levels[(levels["payload_file"] == bucket) & levels["series"].isin(chosen_series)]
shown_recs = recs[(recs["payload_file"] == bucket) & recs["series"].isin(chosen_series)]

st.subheader(f"Recommended level per experiment on `{bucket}`")
st.caption(
    "Each column is the highest concurrency meeting every budget of its run (fct_recommendations); the ratio "
    "columns divide each series by the first (×1.25: 25% more)."
)
if not shown_recs.empty:  # a series without a recommended level shows dashes
    ui.show_table(tables.comparison_table(shown_recs.sort_values("series"), "series"), key="cmp_side_by_side")
for _, rec in shown_recs.sort_values("series").iterrows():
    ui.md(f"- **{rec['series']}**: {sentences.recommendation(rec)}")

b = ctx.budgets
st.subheader("Price performance")
ui.chart(
    charts.price_performance(
        shown, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], color="series", color_title="Series"
    ),
    key="cmp_price_perf",
)
st.caption(f"Budget box: the budgets of run `{ctx.run_id}`" + (" (preview)." if ctx.is_preview else "."))
st.subheader("Latency")
ui.chart(
    charts.latency_vs_concurrency(shown, b["latency_budget_s"], color="series", color_title="Series"),
    key="cmp_latency",
)
st.subheader("Throughput")
ui.chart(charts.throughput_vs_concurrency(shown, color="series", color_title="Series"), key="cmp_throughput")

st.subheader(f"Every level on `{bucket}`")
# What each series is, once per series, so the level table below fits a 1440 px screen: it starts without the
# model and serving (here), the experiment (in the series), the bucket (picked above) and the per-budget verdicts
# ("All budgets" stays); its column menu shows them all.
first = shown.sort_values("series").drop_duplicates("series")
what = pd.DataFrame(
    {
        "Series": first["series"].astype(str).to_numpy(),
        figures.label("model_id"): first["model_id"].astype(str).to_numpy(),
        "Serving": [sentences.serving(r) for _, r in first.iterrows()],
    }
)
ui.show_table(tables.Table.plain(what), key="cmp_series_table")
every = tables.level_table(shown)
every.frame.insert(0, "Series", shown["series"].astype(str).to_numpy())
every.frame.insert(1, figures.label("model_id"), shown["model_id"].astype(str).to_numpy())
every.frame.insert(2, "Serving", [sentences.serving(r) for _, r in shown.iterrows()])
for column in ("Series", figures.label("model_id"), "Serving"):
    every.states[column] = ""
every.states = every.states[every.frame.columns]
hidden = (
    figures.label("model_id"),
    "Serving",
    figures.label("experiment_name"),
    figures.label("payload_file"),
    *tables.BUDGET_VERDICTS,
    figures.header("offered_request_rate"),
    figures.header("send_lag_p99"),
    figures.header("event_loop_lag_p99"),
    *tables.REPEAT_RANGE_HEADERS,
)
st.caption(
    "The table's column menu shows the model, serving, experiment, bucket, per-budget verdicts and, where they "
    "apply, the open loop's offered rate and lags and the repeats' range."
)
ui.show_table(every, key="cmp_levels", hidden=hidden)
