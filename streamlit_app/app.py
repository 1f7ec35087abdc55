"""tokenbench app: `streamlit run streamlit_app/app.py -- --warehouse PATH` (or $TOKENBENCH_WAREHOUSE).

The entry point: page config, navigation, the sidebar's run picker and trial budgets; the pages in views/
lay out what streamlit_app.cache returns from the marts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import streamlit as st

try:
    import streamlit_app  # noqa: F401  (installed with `pip install -e .`)
except ImportError:  # run from a checkout without installing: the repo root holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collector.outputs import figures, queries, tables
from collector.settings import DEFAULT_WAREHOUSE, WAREHOUSE_ENV
from streamlit_app import cache, live, ui

VIEWS = Path(__file__).resolve().parent / "views"


def warehouse_path(argv: list[str]) -> Path:
    """`-- --warehouse PATH` after streamlit's own options, else $TOKENBENCH_WAREHOUSE, else the default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--warehouse", type=Path, default=None)
    known, _ = parser.parse_known_args(argv)
    return known.warehouse or Path(os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE)


RUN_PICKER = "run_picker"
RUN_LINK_APPLIED = "_run_link_applied"


def run_label(runs: dict[str, dict], run_id: str) -> str:
    run = runs[run_id]
    started = run["started_at"]
    when = started.strftime("%Y-%m-%d %H:%M UTC") if hasattr(started, "strftime") else str(started)
    simulated = tables.simulated(run)
    built = " · not built yet" if bool(run.get("is_live")) else ""
    return f"{run['run_name']} · {when} · {run['status']}{built}{' · ' + simulated if simulated else ''} ({run_id})"


def sidebar_run_picker(runs) -> str:
    """The run picked, kept in the URL as ?run=<run_id> at all times, so a link shows the same run after the
    next sweep; a link's run opens at the session's first load, and one not in this warehouse says so."""
    by_id = {str(r["run_id"]): r for r in runs.to_dict("records")}
    wanted = st.query_params.get("run")
    if wanted is not None and wanted not in by_id:
        st.sidebar.warning(f"Run `{wanted}` from the link is not in this warehouse: showing the newest run.", icon="🔗")
    elif wanted is not None and RUN_LINK_APPLIED not in st.session_state:
        st.session_state[RUN_PICKER] = wanted
    st.session_state[RUN_LINK_APPLIED] = True
    if st.session_state.get(RUN_PICKER) not in by_id:  # a run picked earlier that the warehouse no longer has
        st.session_state.pop(RUN_PICKER, None)
    choice = st.sidebar.selectbox(
        "Run",
        list(by_id),
        index=0,
        format_func=lambda rid: run_label(by_id, rid),
        key=RUN_PICKER,
        help="Newest first. The choice is kept in the URL (?run=...), so the view can be shared.",
    )
    st.query_params["run"] = choice
    return choice


def sidebar_budgets(run) -> dict[str, float]:
    """Trial budgets: an empty box keeps the run's budget; a value previews the verdicts it would give."""
    trial: dict[str, float] = {}
    with st.sidebar.expander("Try other budgets (preview)", expanded=False):
        st.caption("Empty = the budget the marts were built with. Values here are a preview, not in the marts.")
        specs = [
            ("latency_budget_s", "Latency budget, p95 (s)", "budget_latency_s", 0.01),
            ("cost_per_10k_txn_budget_usd", "Cost per 10k transactions (USD)", "budget_cost_usd", 0.5),
            ("error_rate_budget", "Error rate (fraction)", "budget_error_rate", 0.01),
        ]
        for field, label, key, step in specs:
            value = st.number_input(
                label,
                min_value=0.0,
                value=None,
                step=step,
                format="%g",
                placeholder=f"{float(run[field]):g} (marts)",
                key=key,
                bind="query-params",
            )
            if value is not None:
                trial[field] = float(value)
    return trial


def sidebar_preview(ctx: ui.AppContext) -> None:
    """The verdicts the trial budgets would give, next to the marts' ones."""
    if not ctx.is_preview:
        return
    b = ctx.budgets
    levels = cache.preview_levels(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    recs = cache.preview_recommendations(
        ctx.warehouse, ctx.run_id, b["latency_budget_s"], b["cost_per_10k_txn_budget_usd"], b["error_rate_budget"]
    )
    passing = int(levels["preview_meets_all_budgets"].sum())
    official = int(levels["meets_all_budgets"].sum())
    best = recs[recs["is_best_price_performance"]]
    lines = [
        "**PREVIEW** (rerun `dbt build` to make it official)",
        f"- {passing} of {len(levels)} levels would meet every budget (marts: {official}).",
    ]
    if best.empty:
        lines.append("- No level of the dataset of interest would meet every budget.")
    else:
        row = best.iloc[0]
        lines.append(
            f"- Best price performance would be **{row['experiment_name']}** on {row['payload_file']} at "
            f"concurrency {figures.figure('concurrency').text(row['concurrency'])} "
            f"({figures.figure('cost_per_10k_txn').text(row['cost_per_10k_txn'])} per 10k)."
        )
    st.sidebar.warning(ui.escape_dollars("\n".join(lines)), icon="🧪")


# The path a default page is registered under: st.navigation serves the default page at the root only, so no link
# uses this path (/home says "Page not found"); it only has to differ from every page's own path.
ROOT_PAGE_KEY = "home"


def pages() -> list[st.Page]:
    """Every page at its own path, /summary, /sweep, /requests, /telemetry and /compare, and the Summary also at
    the root, where the app opens. The default page has no path of its own in st.navigation (it is served at / and
    only there), so /summary is a second, hidden entry for the same script."""
    summary = VIEWS / "summary.py"
    return [
        st.Page(summary, title="Summary", icon="📋", url_path=ROOT_PAGE_KEY, default=True),
        st.Page(summary, title="Summary", icon="📋", url_path="summary", visibility="hidden"),
        st.Page(VIEWS / "sweep.py", title="Sweep", icon="📈", url_path="sweep"),
        st.Page(VIEWS / "requests.py", title="Requests", icon="🧾", url_path="requests"),
        st.Page(VIEWS / "telemetry.py", title="Telemetry", icon="🌡️", url_path="telemetry"),
        st.Page(VIEWS / "compare.py", title="Compare", icon="⚖️", url_path="compare"),
    ]


def main() -> None:
    st.set_page_config(page_title="tokenbench", page_icon="📈", layout="wide")
    page = st.navigation(pages())
    warehouse = warehouse_path(sys.argv[1:])
    st.sidebar.caption(f"Warehouse: `{warehouse}` (read-only)")
    try:
        runs = cache.runs(warehouse)
        if runs.empty:
            raise queries.WarehouseEmpty(
                f"The warehouse {warehouse} has marts but no run in them.", f"{queries.RUN_HINT}, {queries.BUILD_HINT}"
            )
        run_id = sidebar_run_picker(runs)
        run = runs[runs["run_id"] == run_id].iloc[0]
        ctx = ui.AppContext(warehouse=warehouse, runs=runs, run=run, trial_budgets=sidebar_budgets(run))
        ui.set_context(ctx)
        sidebar_preview(ctx)
        if bool(run.get("is_live")):
            live.show(ctx)  # every page: the run has no marts yet
            return
        if run["status"] == "running":
            st.info("This run is still collecting: its figures are those of the last `dbt build`.", icon="⏱️")
        elif run["status"] == "lost":
            st.warning(
                "This run's collector stopped without finishing (no heartbeat for over a minute, e.g. it was "
                "killed): the figures cover the requests it landed before that.",
                icon="⚠️",
            )
        page.run()
    except queries.WarehouseUnavailable as exc:
        ui.show_unavailable(exc)


if __name__ == "__main__":  # streamlit runs the entry point as __main__; tests import its helpers
    main()
