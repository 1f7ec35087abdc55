"""Telemetry page: host and GPU measures over the run, one band per concurrency window."""

from __future__ import annotations

import streamlit as st

from streamlit_app import cache, charts, tables, ui

ctx = ui.context()
st.title("Telemetry")
bands = cache.telemetry_bands(ctx.warehouse, ctx.run_id)
endpoint = cache.endpoint_metrics(ctx.warehouse, ctx.run_id)
if endpoint.empty:
    st.info("No concurrency window of this run is in the marts yet (rerun `python -m collector build`).")
    st.stop()

experiments = sorted(endpoint["experiment_name"].unique())
chosen = st.multiselect("Experiments", experiments, default=experiments, key="tel_experiments", bind="query-params")
shown = bands[bands["experiment_name"].isin(chosen or experiments)]
measured = shown.dropna(subset=["p50"])
st.markdown(
    "Each concurrency level of an experiment runs as one window (`c=N` marks it). The box spans the samples' "
    "p25 to p75 inside the window, the whisker min to max, the thick line the median. Seconds count from the "
    "run's start, on the clock the requests share."
)
if measured.empty:
    st.info("No telemetry sample fell inside a concurrency window of the chosen experiments.")
else:
    if not measured["measure"].str.startswith("GPU").any():
        st.caption("No GPU measure: the host had no NVIDIA driver (NVML) while the run collected.")
    ui.chart(charts.telemetry_bands(measured), key="tel_bands")

st.subheader("Per level")
st.dataframe(
    tables.endpoint_table(endpoint[endpoint["experiment_name"].isin(chosen or experiments)]),
    hide_index=True,
    key="tel_table",
)
energy = endpoint.dropna(subset=["gpu_energy_j"])
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
