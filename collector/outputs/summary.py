"""The terminal summary of one run: the report's Summary, unmeasured levels, failed levels with their errors,
experiment cost and per-experiment results, as plain-text tables from the same queries, tables and sentences
as the app and the report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from collector.errors import UserError
from collector.outputs import figures, queries, sentences, tables


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with a header rule, columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def render(shown: tables.Table) -> list[str]:
    """A Table as plain-text lines, its notes under it."""
    frame = tables.text(shown)
    lines = [table([str(c) for c in frame.columns], frame.astype(str).values.tolist())]
    return lines + [f"  {note}" for note in shown.notes]


def _run(warehouse: Path, run_id: str) -> pd.Series:
    runs = queries.runs(warehouse)
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        raise UserError(f"run {run_id} is not in {warehouse} (rebuild with `python -m collector build`)")
    return match.iloc[0]


def summary_text(warehouse: Path, run_id: str) -> str:
    """The run's summary: best price performance, unmeasured and failed levels, errors, costs, sentences."""
    run = _run(Path(warehouse), run_id)
    recs = queries.recommendations(warehouse, [run_id])
    failed = queries.failed_experiments(warehouse, run_id)
    costs = queries.experiment_costs(warehouse, run_id)
    errors = queries.level_errors(warehouse, [run_id])
    unmeasured = queries.unmeasured_levels(warehouse, run_id)
    label = tables.simulated(run)
    out = [
        f"Results for run {run['run_id']} ({run['run_name']}, {run['status']}{', ' + label if label else ''})",
        f"Budgets ({run['budget_source']}): {sentences.criteria(run)}. Prices: {run['price_source'] or 'none'}.",
        "",
        "== Summary",
        "",
    ]
    no_best, failed_line = sentences.verdict(run, recs, failed, unmeasured)
    best = recs[recs["is_best_price_performance"]]
    if no_best is not None:
        out.append(no_best)
    else:
        out += [sentences.best_price_performance(best.iloc[0]), ""]
        out += render(tables.information_table(best.iloc[0]))
    if note := sentences.unmeasured(run, unmeasured):
        out += ["", note]

    out += ["", "== Failed experiments", "", failed_line]
    if not failed.empty:
        out += ["", *render(tables.failed_table(failed))]
    if not errors.empty:
        out += ["", "== Errors", ""]
        out += sentences.errors_by_level(queries.level_metrics(warehouse, [run_id]), errors)
        out += ["", *render(tables.errors_table(errors))]

    if not costs.empty:
        total = tables.total_cost(costs)
        out += [
            "",
            "== Experiment cost",
            "",
            f"The cost to run each experiment is below (warm-up included). The total is "
            f"{figures.figure('cost_usd').text(total)}.",
            "",
            *render(tables.cost_table(costs)),
        ]

    out += ["", "== Per experiment results", ""]
    out += [f"- {sentences.recommendation(r)}" for _, r in recs.iterrows()] or ["No measured requests."]
    return "\n".join(out) + "\n"
