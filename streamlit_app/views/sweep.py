"""Sweep page: how latency, throughput, errors and price move with concurrency (and an open loop's offered rate),
for one payload bucket."""

from __future__ import annotations

import streamlit as st

from collector.outputs import charts, figures, queries, sentences, tables
from streamlit_app import cache, ui

ctx = ui.context()
levels = cache.level_metrics(ctx.warehouse, [ctx.run_id])
st.title("Sweep")
ui.preview_banner(ctx)
if levels.empty:
    st.info("This run has no measured level in the marts yet (rerun `python -m collector build` after it ends).")
    st.stop()

buckets = sorted(levels["payload_file"].unique())
of_interest = sorted(levels.loc[levels["is_dataset_of_interest"], "payload_file"].unique())
experiments = sorted(levels["experiment_name"].unique())
left, right = st.columns([1, 2])
with left:
    bucket = ui.bucket_choice(buckets, of_interest[0] if of_interest else None, key="sweep_bucket")
with right:
    chosen = st.multiselect(
        "Experiments", experiments, default=experiments, key="sweep_experiments", bind="query-params"
    )
shown = levels[(levels["payload_file"] == bucket) & levels["experiment_name"].isin(chosen or experiments)]
b = ctx.budgets
note = " (preview budget)" if ctx.is_preview else ""

st.subheader("Latency" + note)
ui.chart(charts.latency_vs_concurrency(shown, b["latency_budget_s"]), key="sweep_latency")

st.subheader("Throughput")
ui.chart(charts.throughput_vs_concurrency(shown), key="sweep_throughput")

if shown["target_rate_rps"].notna().any():
    st.subheader("Open loop: offered rate" + note)
    ui.chart(charts.rate_curve(shown, b["latency_budget_s"]), key="sweep_rate_curve")
    for line in sentences.open_loop_verdicts(shown):
        ui.md(f"- {line}")

st.subheader("Prompt tokens vs latency")
filters = queries.RequestFilter(experiments=tuple(chosen or experiments), payload_files=(bucket,))
sample = cache.request_sample(ctx.warehouse, ctx.run_id, filters)
ui.chart(charts.tokens_vs_latency(sample), key="sweep_tokens_vs_latency")
st.caption(f"{len(sample)} requests shown (a repeatable sample when there are more), warm-up excluded.")

st.subheader("Error rate")
ui.chart(charts.error_rate_by_concurrency(shown), key="sweep_error_rate")

st.subheader("Price performance" + note)
ui.chart(
    charts.price_performance(shown, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"]), key="sweep_price_perf"
)

st.subheader(f"Levels and verdicts on `{bucket}`")
# The bucket is the one picked above, and the per-budget verdicts start behind the column menu, so the table fits
# a 1440 px screen; "All budgets" stays.
level_columns_hidden = (
    figures.label("payload_file"),
    *tables.BUDGET_VERDICTS,
    figures.header("offered_request_rate"),  # an open loop's: its target rate, Schedule and Saturated stay
    figures.header("send_lag_p99"),
    figures.header("event_loop_lag_p99"),
    *tables.REPEAT_RANGE_HEADERS,  # a repeated level's spread: the charts' bars show it
)
st.caption("Which budget a level missed: the table's column menu shows the latency, cost and error verdicts.")
if ctx.is_preview:
    preview = cache.preview_levels(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    preview = preview[(preview["payload_file"] == bucket) & preview["experiment_name"].isin(shown["experiment_name"])]
    st.caption("Verdicts under the preview budgets (the marts' verdicts are in `meets_*`; rerun `dbt build`).")
    ui.show_table(
        tables.level_table(preview, verdict_prefix="preview_"), key="sweep_levels", hidden=level_columns_hidden
    )
else:
    ui.show_table(tables.level_table(shown), key="sweep_levels", hidden=level_columns_hidden)
errors = cache.level_errors(ctx.warehouse, [ctx.run_id])
for line in sentences.errors_by_level(shown, errors, lambda name: f"`{name}`"):
    ui.md(f"- {line}")

server = cache.server_view(ctx.warehouse, ctx.run_id)
server = server[(server["payload_file"] == bucket) & server["experiment_name"].isin(shown["experiment_name"])]
if not server.empty:
    st.subheader("Server's view")
    st.caption(sentences.server_view_intro(server))
    for line in sentences.token_total_mismatches(server, lambda name: f"`{name}`"):
        st.warning(line)
    # The bucket is picked above; the client's mean and its gap to the engine's, the engine's TTFT and the peaks
    # start behind the column menu, so the table fits a 1440 px screen.
    server_columns_hidden = (
        figures.label("payload_file"),
        figures.label("server_view_source"),  # the caption above says what each source is; the menu shows it
        *(figures.header(c) for c in ("client_mean_e2e_s", "e2e_gap_s", "server_mean_ttft_s")),
        *(figures.header(c) for c in ("max_requests_waiting", "mean_requests_running", "max_kv_cache_usage")),
        *(figures.header(c) for c in ("cloudwatch_period_count", "server_mean_gpu_memory_utilization_percent")),
    )
    ui.show_table(tables.server_view_table(server), key="sweep_server_view", hidden=server_columns_hidden)
