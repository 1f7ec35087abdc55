"""Telemetry page: host and GPU samples over the run with the concurrency level windows marked, then the
per-level five-number summary."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collector.outputs import charts, queries, tables
from streamlit_app import cache, ui

ctx = ui.context()
st.title("Telemetry")
endpoint = cache.endpoint_metrics(ctx.warehouse, ctx.run_id)
try:
    samples = cache.telemetry_samples(ctx.warehouse, ctx.run_id)
except queries.WarehouseUnavailable as exc:  # marts built before fct_telemetry_samples existed
    st.info(f"{exc.reason}\n\n{exc.hint}", icon="ℹ️")
    samples = pd.DataFrame()

experiments = sorted(endpoint["experiment_name"].unique())
chosen = st.multiselect("Experiments", experiments, default=experiments, key="tel_experiments", bind="query-params")
windows = endpoint[endpoint["experiment_name"].isin(chosen or experiments)]

st.subheader("Host and GPU samples over time")
if not samples.empty:
    st.markdown(
        "One point per sample (the collector samples once a second), over the whole run, on the clock the "
        "requests share. Shaded: the measured window of each concurrency level (`c=N`) of the chosen "
        "experiments; between windows the endpoint is warming up or starting."
    )
    if int(samples["sample_count"].max()) > 1:
        st.caption(f"A long run: each point averages up to {int(samples['sample_count'].max())} consecutive samples.")
    if not charts.has_gpu_telemetry(samples):
        st.info(charts.NO_GPU_TELEMETRY, icon="ℹ️")
ui.chart(charts.telemetry_over_time(samples, windows), key="tel_series")

st.subheader("Per level")
if endpoint.empty:
    st.info("No concurrency window of this run is in the marts yet (rerun `python -m collector build`).")
    st.stop()
st.caption("Samples inside each level's window: min, quartiles and max (fct_endpoint_metrics).")
ui.show_table(tables.endpoint_table(windows), key="tel_table")
energy = windows.dropna(subset=["gpu_energy_j"])
if not energy.empty:
    st.subheader("GPU energy")
    st.dataframe(
        energy[
            [
                "experiment_name",
                "concurrency",
                "window_duration_s",
                "gpu_energy_j",
                "gpu_energy_method",
                "gpu_energy_per_output_token_j",
            ]
        ],
        hide_index=True,
        key="tel_energy",
    )
