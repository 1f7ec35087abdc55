"""Streamlit helpers shared by the entry point and the pages: the per-session context, messages, styled tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from collector.outputs import charts, figures, queries, sentences, tables

CONTEXT_KEY = "_tokenbench_context"
BUDGET_FIELDS = ("latency_budget_s", "cost_per_10k_txn_budget_usd", "error_rate_budget")


@dataclass
class AppContext:
    """What the entry point resolved this rerun: the warehouse, the picked run and the budgets in force."""

    warehouse: Path
    runs: pd.DataFrame
    run: pd.Series
    trial_budgets: dict[str, float] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def mart_budgets(self) -> dict[str, float]:
        return {k: float(self.run[k]) for k in BUDGET_FIELDS}

    @property
    def budgets(self) -> dict[str, float]:
        """The budgets charts draw: the trial ones where the sidebar sets them, else the marts'."""
        return {**self.mart_budgets, **self.trial_budgets}

    @property
    def is_preview(self) -> bool:
        return any(self.trial_budgets.get(k) != v for k, v in self.mart_budgets.items() if k in self.trial_budgets)


def escape_dollars(text: str) -> str:
    """Escape `$` outside code spans: st.markdown reads a pair of dollars as LaTeX math."""
    parts = str(text).split("`")
    return "`".join(part if i % 2 else part.replace("$", "\\$") for i, part in enumerate(parts))


def md(text: str) -> None:
    """st.markdown for text holding prices."""
    st.markdown(escape_dollars(text))


def run_name(run: pd.Series, runs: pd.DataFrame) -> str:
    """A run as people call it: its name, with its start time where another run of the warehouse shares it."""
    name = str(run["run_name"])
    if int((runs["run_name"].astype(str) == name).sum()) <= 1:
        return name
    started = run["started_at"]
    return f"{name} ({started.strftime('%Y-%m-%d %H:%M') if hasattr(started, 'strftime') else started})"


def set_context(ctx: AppContext) -> None:
    st.session_state[CONTEXT_KEY] = ctx


def context() -> AppContext:
    """The context the entry point stored; a page opened without it (never in the app) stops cleanly."""
    ctx = st.session_state.get(CONTEXT_KEY)
    if ctx is None:
        st.error("Open the app through `streamlit run streamlit_app/app.py`.")
        st.stop()
    return ctx


def show_unavailable(exc: queries.WarehouseUnavailable) -> None:
    """A missing, empty or locked warehouse: what happened and what to run, no traceback."""
    if isinstance(exc, queries.WarehouseLocked):
        st.warning(f"**Warehouse busy.** {exc.reason}\n\n{exc.hint}", icon="⏳")
    else:
        title = (
            "No results yet." if isinstance(exc, queries.WarehouseMissing | queries.WarehouseEmpty) else "Cannot read."
        )
        st.info(f"**{title}** {exc.reason}\n\n{exc.hint}", icon="ℹ️")
    st.stop()


def preview_banner(ctx: AppContext) -> None:
    if ctx.is_preview:
        b = ctx.budgets
        st.warning(
            escape_dollars(
                "**Preview budgets** from the sidebar: "
                + sentences.criteria(b)
                + ". Verdicts marked *preview* are not in the marts until the budgets go into the config's "
                "`report:` section and `python -m collector build --config PATH` (dbt build) is rerun."
            ),
            icon="🧪",
        )


def show_key_values(shown: tables.Table, where: Any = st) -> None:
    """A two-column Information | Value table in full (no scrolling), its notes under it."""
    frame = shown.frame
    where.table(frame.set_index(frame.columns[0]))
    for note in shown.notes:
        where.caption(note)


STATE_CSS = {
    tables.PASS: "color: green",
    tables.FAIL: "color: #d62728; font-weight: bold",
    tables.CAUTION: "color: #8a6d3b; font-style: italic",
}


def show_table(shown: tables.Table, key: str, where: Any = st, hidden: tuple[str, ...] = ()) -> None:
    """A Table as a sortable dataframe: figure cells stay numbers (sorted as numbers) and read by the one
    precision rule, a budget's cell green or bold red, a cautioned figure marked; the notes under it. `hidden`
    columns start hidden (the table's column menu shows them), so a wide table fits its page."""
    frame = shown.frame
    styler = frame.style.format(na_rep=figures.NO_VALUE)
    help_texts: dict[str, Any] = {}
    for column in frame.columns:
        write = figures.cell_text(str(column), frame[column])
        if write is None:
            continue
        styler = styler.format(write, subset=[column])
        cautioned = shown.states.index[shown.states[column] == tables.CAUTION]
        if len(cautioned):
            styler = styler.format(
                lambda v, write=write: f"{write(v)}{sentences.UNDERSAMPLED_MARK}", subset=(cautioned, [column])
            )
        fig = figures.BY_HEADER.get(str(column))
        if fig is not None and fig.help:
            help_texts[str(column)] = st.column_config.Column(help=fig.help)
    styler = styler.apply(lambda _: shown.states.replace(STATE_CSS), axis=None)
    for column in hidden:
        if column in frame.columns:
            help_texts[column] = None
    where.dataframe(styler, hide_index=True, key=key, column_config=help_texts)
    for note in shown.notes:
        where.caption(note)


def chart(spec: charts.AnyChart, key: str, where: Any = st) -> None:
    """An Altair chart as wide as the column it is drawn in (`where`), with its tooltips; a chart with nothing
    to draw shows why instead (charts.empty_reason)."""
    if reason := charts.empty_reason(spec):
        where.info(reason, icon="ℹ️")
        return
    where.altair_chart(charts.fit_container(spec), key=key, width="stretch")


def bucket_choice(buckets: list[str], default: str | None, key: str, label: str = "Payload bucket") -> str | None:
    """A bucket selectbox bound to the URL, defaulting to the run's dataset of interest."""
    if not buckets:
        return None
    index = buckets.index(default) if default in buckets else 0
    return st.selectbox(label, buckets, index=index, key=key, bind="query-params")
