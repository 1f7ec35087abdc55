"""The view of a run landed since the last build: its levels so far, from the raw rows (queries.live_levels),
marked provisional and refreshed every few seconds while the sweep runs."""

from __future__ import annotations

import streamlit as st

from collector.outputs import charts, queries, sentences, tables
from streamlit_app import ui

REFRESH_S = 5


def show(ctx: ui.AppContext) -> None:
    run = ctx.run
    st.title(f"{run['run_name']} ({run['status']}{', ' + tables.simulated(run) if tables.simulated(run) else ''})")
    st.warning(
        "**Provisional.** This run has not been built into the marts yet: the figures below come from the requests "
        "it has landed so far and change as the sweep goes on. Prices, verdicts and the recommendation appear "
        "after `python -m collector build` (which `collector run` does when the sweep ends).",
        icon="⏱️",
    )
    levels_so_far(ctx)


@st.fragment(run_every=REFRESH_S)
def levels_so_far(ctx: ui.AppContext) -> None:
    levels = queries.live_levels(ctx.warehouse, ctx.run_id)  # not cached: the raw rows grow between reruns
    planned = int(ctx.run.get("planned_level_count") or 0)
    of = f" of {planned} planned" if planned >= len(levels) else ""
    st.markdown(
        f"**{len(levels)}{of} levels** have measured requests so far"
        + (" (the last one may still be running)." if ctx.run["status"] == "running" else ".")
    )
    if levels.empty:
        st.info("No measured request yet: the endpoint may be starting or warming up.", icon="ℹ️")
        return
    ui.show_table(tables.live_table(levels), key="live_levels")
    for bucket in sorted(levels["payload_file"].unique()):
        shown = levels[levels["payload_file"] == bucket]
        if shown["latency_p50"].notna().any():
            st.subheader(f"Latency on `{bucket}` so far")
            ui.chart(charts.latency_vs_concurrency(shown), key=f"live_latency_{bucket}")
    if int(levels["error_count"].sum()):
        st.caption(sentences.SURVIVORS_NOTE)
