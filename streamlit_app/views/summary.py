"""Summary page: the reference report's Summary for the picked run, from the marts."""

from __future__ import annotations

import json

import streamlit as st
import yaml

from collector.outputs import charts, tables
from streamlit_app import cache, ui

ctx = ui.context()
run = ctx.run
levels = cache.level_metrics(ctx.warehouse, [ctx.run_id])
recs = cache.recommendations(ctx.warehouse, [ctx.run_id])
failed = cache.failed_experiments(ctx.warehouse, ctx.run_id)
costs = cache.experiment_costs(ctx.warehouse, ctx.run_id)
endpoint = cache.endpoint_metrics(ctx.warehouse, ctx.run_id)

models = sorted(levels["model_id"].dropna().astype(str).unique()) or [str(run["run_name"])]
st.title(tables.title(models, run))
st.caption(
    f"Run `{ctx.run_id}` ({run['run_name']}, {run['status']}), started {run['started_at']}, "
    f"tokenbench {run['collector_version']}; budgets from {run['budget_source']}, prices {run['price_source']}."
)
ui.preview_banner(ctx)

st.header("Summary")
best = recs[recs["is_best_price_performance"]]
if best.empty:
    ui.md(
        f"No experiment met every budget on the dataset of interest `{run['dataset_of_interest']}` "
        f"({tables.criteria_sentence(run)}). See the failed experiments below, or try other budgets in the sidebar."
    )
else:
    row = best.iloc[0]
    ui.md(str(row["best_price_performance_sentence"]))
    st.table(tables.information_table(row).set_index("Information"))

doi_levels = levels[levels["is_dataset_of_interest"]]
if not doi_levels.empty:
    b = ctx.budgets
    ui.chart(
        charts.price_performance(doi_levels, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"]),
        key="summary_price_performance",
    )
    if ctx.is_preview:
        st.caption("The budget box shows the *preview* budgets from the sidebar.")

st.subheader("Latency metrics analysis")
if doi_levels.empty or doi_levels["ttft_p50"].isna().all():
    ui.md("_No token latency metrics: TTFT and TPOT need streamed responses (`stream: true` on the endpoint)._")
else:
    ui.md(
        f"Overall latency, time to first token (TTFT) and time per output token (TPOT) for the "
        f"`{run['dataset_of_interest']}` dataset, seconds."
    )
    st.dataframe(tables.latency_table(doi_levels), hide_index=True, key="summary_latency_table")

st.subheader("Failed experiments")
if failed.empty:
    ui.md("All experiments satisfied the configured performance criteria: " + tables.criteria_sentence(run) + ".")
else:
    ui.md(
        f"There were a total of {len(failed)} experiment run(s) that failed at least one configured performance "
        f"criteria: {tables.criteria_sentence(run)}. See table below."
    )
    st.dataframe(ui.styled_failed(failed), hide_index=True, key="summary_failed_table")

if ctx.is_preview:
    b = ctx.budgets
    preview = cache.preview_levels(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    with st.container(border=True):
        ui.md("**Preview verdicts** under " + tables.criteria_sentence(b) + " (not in the marts):")
        st.dataframe(
            tables.level_table(preview, verdict_prefix="preview_"), hide_index=True, key="summary_preview_levels"
        )

st.subheader("Recommendation per experiment and bucket")
st.table(tables.recommendation_table(recs), hide_index=True)  # a table wraps the long sentences
if ctx.is_preview:
    b = ctx.budgets
    preview_recs = cache.preview_recommendations(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    with st.container(border=True):
        ui.md("**Preview recommendations** (rerun `dbt build` with these budgets to make them official):")
        for _, rec in preview_recs.iterrows():
            ui.md(f"- {tables.preview_sentence(rec, b)}")

st.subheader("Experiment cost")
ui.md(f"The total cost for running all experiments is {tables.fmt_usd(tables.total_cost(costs))}.")
if unpriced := tables.unpriced_note(levels):
    ui.md(unpriced)
st.dataframe(tables.cost_table(costs), hide_index=True, key="summary_costs")

st.subheader("Endpoint metrics")
ui.md(
    "Host and GPU telemetry per experiment and concurrency level, over each level's window "
    "(min, quartiles, max of the samples inside it)."
)
if remote := tables.remote_telemetry_note(endpoint):
    st.warning(remote)
st.dataframe(tables.endpoint_table(endpoint), hide_index=True, key="summary_endpoint_metrics")

config = run.get("config_json")
if isinstance(config, str) and config:
    with st.expander("Resolved configuration (marts.dim_runs.config_json)"):
        st.code(yaml.safe_dump(json.loads(config), sort_keys=False, allow_unicode=True), language="yaml")
