"""Compare page: runs or experiments (models, serving stacks, instance types) side by side on one bucket."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collector.outputs import charts, tables
from streamlit_app import cache, ui

ctx = ui.context()
st.title("Compare")
run_ids = [str(r) for r in ctx.runs["run_id"]]
chosen_runs = st.multiselect(
    "Runs",
    run_ids,
    default=[ctx.run_id],
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
    if len(chosen_runs) == 1:
        return frame["experiment_name"].astype(str)
    return frame["experiment_name"].astype(str) + " · " + frame["run_id"].astype(str)


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
st.caption("Each column is the highest concurrency meeting every budget of its run (fct_recommendations).")
columns = {}
for _, rec in shown_recs.sort_values("series").iterrows():
    if bool(rec["has_recommendation"]):
        columns[rec["series"]] = tables.information_table(rec).set_index("Information")["Value"]
    else:
        columns[rec["series"]] = pd.Series({"recommendation": "no level met every budget"})
if columns:
    side_by_side = pd.DataFrame(columns).fillna(tables.NO_VALUE)
    side_by_side.index.name = "Information"
    st.dataframe(side_by_side, key="cmp_side_by_side")
for _, rec in shown_recs.sort_values("series").iterrows():
    ui.md(f"- **{rec['series']}**: {rec['recommendation_sentence']}")

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

st.subheader("Every level")
table = tables.level_table(shown).assign(
    series=shown["series"].to_numpy(),
    model_id=shown["model_id"].astype(str).to_numpy(),
    serving=[tables.serving(r) for _, r in shown.iterrows()],
)
st.dataframe(
    table[["series", "model_id", "serving", *[c for c in table.columns if c not in ("series", "model_id", "serving")]]],
    hide_index=True,
    key="cmp_levels",
)
