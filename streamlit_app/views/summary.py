"""Summary page: the reference report's Summary for the picked run, from the marts."""

from __future__ import annotations

import json

import streamlit as st
import yaml

from collector.outputs import charts, figures, sentences, tables
from streamlit_app import cache, ui

ctx = ui.context()
run = ctx.run
levels = cache.level_metrics(ctx.warehouse, [ctx.run_id])
recs = cache.recommendations(ctx.warehouse, [ctx.run_id])
failed = cache.failed_experiments(ctx.warehouse, ctx.run_id)
costs = cache.experiment_costs(ctx.warehouse, ctx.run_id)
endpoint = cache.endpoint_metrics(ctx.warehouse, ctx.run_id)
errors = cache.level_errors(ctx.warehouse, [ctx.run_id])
unmeasured = cache.unmeasured_levels(ctx.warehouse, ctx.run_id)

models = sorted(levels["model_id"].dropna().astype(str).unique()) or [str(run["run_name"])]
st.title(tables.title(models, run))
st.caption(
    f"Run `{ctx.run_id}` ({run['run_name']}, {run['status']}), started {run['started_at']}, "
    f"tokenbench {run['collector_version']}; budgets from {run['budget_source']}, prices {run['price_source']}."
)
ui.preview_banner(ctx)

st.header("Summary")
no_best, failed_line = sentences.verdict(run, recs, failed, unmeasured)
if no_best is not None:
    ui.md(no_best + " See the failed experiments below, or try other budgets in the sidebar.")
else:
    row = recs[recs["is_best_price_performance"]].iloc[0]
    ui.md(sentences.best_price_performance(row))
    ui.show_key_values(tables.information_table(row))
if unmeasured_note := sentences.unmeasured(run, unmeasured):
    st.warning(unmeasured_note, icon="⏸️")

doi_levels = levels[levels["is_dataset_of_interest"]]
if not doi_levels.empty and doi_levels["cost_per_10k_txn"].notna().any():
    b = ctx.budgets
    ui.chart(
        charts.price_performance(doi_levels, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"]),
        key="summary_price_performance",
    )
    if ctx.is_preview:
        st.caption("The budget box shows the *preview* budgets from the sidebar.")

st.subheader("Latency metrics analysis")
if doi_levels.empty:
    ui.md(f"_No level of the dataset of interest `{run['dataset_of_interest']}` was measured._")
else:
    ui.md(
        f"Overall latency, time to first token (TTFT) and time per output token (TPOT) for the "
        f"`{run['dataset_of_interest']}` dataset, per experiment and concurrency level."
    )
    ui.show_table(tables.latency_table(doi_levels), key="summary_latency_table")
    if doi_levels["ttft_p50"].isna().all() and doi_levels["success_count"].gt(0).any():
        ui.md("_No TTFT or TPOT: they need streamed responses (`stream: true` on the endpoint)._")

st.subheader("Failed experiments")
ui.md(failed_line)
if not failed.empty:
    ui.show_table(tables.failed_table(failed), key="summary_failed_table")
if not errors.empty:
    st.markdown("**What the failed requests failed with** (warm-up excluded)")
    for line in sentences.errors_by_level(levels, errors, lambda name: f"`{name}`"):
        ui.md(f"- {line}")
    ui.show_table(tables.errors_table(errors), key="summary_errors")

if ctx.is_preview:
    b = ctx.budgets
    preview = cache.preview_levels(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    with st.container(border=True):
        ui.md("**Preview verdicts** under " + sentences.criteria(b) + " (not in the marts):")
        ui.show_table(tables.level_table(preview, verdict_prefix="preview_"), key="summary_preview_levels")

st.subheader("Recommendation per experiment and bucket")
st.table(tables.recommendation_table(recs).frame, hide_index=True)  # a table wraps the long sentences
if ctx.is_preview:
    b = ctx.budgets
    preview_recs = cache.preview_recommendations(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    with st.container(border=True):
        ui.md("**Preview recommendations** (rerun `dbt build` with these budgets to make them official):")
        for _, rec in preview_recs.iterrows():
            ui.md(f"- {sentences.recommendation(rec, b, preview=True)}")

st.subheader("Experiment cost")
ui.md(f"The total cost for running all experiments is {figures.figure('cost_usd').text(tables.total_cost(costs))}.")
if unpriced := sentences.unpriced_note(levels):
    ui.md(unpriced)
ui.show_table(tables.cost_table(costs), key="summary_costs")

st.subheader("Endpoint metrics")
ui.md(
    "Host and GPU telemetry per experiment and concurrency level, over each level's window "
    "(min, quartiles, max of the samples inside it)."
)
if remote := sentences.remote_telemetry_note(endpoint):
    st.warning(remote)
ui.show_table(tables.endpoint_table(endpoint), key="summary_endpoint_metrics")

config = run.get("config_json")
if isinstance(config, str) and config:
    with st.expander("Resolved configuration (marts.dim_runs.config_json)"):
        st.code(yaml.safe_dump(json.loads(config), sort_keys=False, allow_unicode=True), language="yaml")
