"""Requests page: the run's requests, filtered; latency, TTFT and TPOT distributions; errors and messages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collector.outputs import charts, figures, queries
from streamlit_app import cache, ui

ROW_LIMITS = [100, 500, 2000, 10000]
FIGURE_COLUMNS = ("e2e_latency_s", "ttft_s", "tpot_s", "prompt_tokens", "completion_tokens", "cost_usd")

ctx = ui.context()
st.title("Requests")
options = cache.request_options(ctx.warehouse, ctx.run_id)
if options.empty:
    st.info("No request of this run is in the marts yet (rerun `python -m collector build` after it ends).")
    st.stop()

cols = st.columns(4)
experiments = cols[0].multiselect(
    "Experiment", sorted(options["experiment_name"].unique()), key="req_experiment", bind="query-params"
)
buckets = cols[1].multiselect(
    "Payload bucket", sorted(options["payload_file"].unique()), key="req_bucket", bind="query-params"
)
concurrencies = cols[2].multiselect(
    "Concurrency", sorted(int(c) for c in options["concurrency"].unique()), key="req_concurrency", bind="query-params"
)
statuses = cols[3].multiselect("Status", ["success", "error"], key="req_status", bind="query-params")
left, right = st.columns([1, 3])
include_warmup = left.toggle("Include warm-up requests", value=False, key="req_warmup")
limit = right.select_slider("Rows shown", ROW_LIMITS, value=500, key="req_limit", bind="query-params")
st.caption("An empty filter keeps everything. Filters are in the URL, so this view can be shared as a link.")

filters = queries.RequestFilter(
    experiments=tuple(experiments),
    payload_files=tuple(buckets),
    concurrencies=tuple(int(c) for c in concurrencies),
    statuses=tuple(statuses),
    include_warmup=include_warmup,
)
summary = cache.request_summary(ctx.warehouse, ctx.run_id, filters).iloc[0]
m1, m2, m3 = st.columns(3)
m1.metric("Requests", f"{int(summary['request_count']):,}")
m2.metric("Errors", f"{int(summary['error_count']):,}")
m3.metric("Warm-up", f"{int(summary['warmup_count']):,}")

rows = cache.request_rows(ctx.warehouse, ctx.run_id, filters, limit)
# The measures as the charts show them (TTFT and TPOT in ms, the precision rule), under their figures' headers.
shown = rows.copy()
column_config = {}
for column in FIGURE_COLUMNS:
    fig = figures.figure(column)
    shown[column] = pd.array([fig.value(v) for v in rows[column]], dtype="Int64" if fig.kind == "count" else "Float64")
    column_config[column] = st.column_config.NumberColumn(fig.header, format=fig.app_format, help=fig.help or None)
st.dataframe(shown, hide_index=True, key="req_table", column_config=column_config)
if int(summary["request_count"]) > len(rows):
    st.caption(f"First {len(rows):,} of {int(summary['request_count']):,} matching requests, in the order sent.")

st.subheader("Distributions (successful requests)")
bins = cache.request_histograms(ctx.warehouse, ctx.run_id, filters)
failed = int(summary["error_count"])
if failed:
    st.caption(f"{failed:,} failed request(s) left out: how long a request took to fail is not a latency.")
if bins.empty:  # one reason for all three
    st.info(charts.histogram_reason(bins, "e2e_latency_s") or "", icon="ℹ️")
else:  # each in its own column, as wide as the column
    columns = st.columns(len(charts.HISTOGRAM_METRICS))
    for i, (metric, column) in enumerate(zip(charts.HISTOGRAM_METRICS, columns, strict=True)):
        # One legend, under the first: the three share their colours.
        ui.chart(charts.histogram(bins, metric, legend=i == 0), key=f"req_hist_{metric}", where=column)

st.subheader("Errors")
errors = cache.request_errors(ctx.warehouse, ctx.run_id, filters)
if errors.empty:
    st.markdown("No failed request matches the filters.")
else:
    st.dataframe(errors, hide_index=True, key="req_errors")
