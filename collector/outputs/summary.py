"""The terminal summary of one run, rendered from the marts only (the reference report's Summary,
Failed experiments, Experiment cost and Per instance results sections, as plain-text tables)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from collector.errors import UserError
from collector.warehouse import connect

# (label, column, format) of the best row's Information/Value table, in the reference report's order.
BEST_ROW_FIELDS: list[tuple[str, str | tuple[str, ...], str]] = [
    ("experiment_name", "experiment_name", "s"),
    ("payload_file", "payload_file", "s"),
    ("instance_type", "instance_type", "s"),
    ("instance_count", "instance_count", "d"),
    ("concurrency", "concurrency", "d"),
    ("error_rate", "error_rate", ".4f"),
    ("prompt_token_count_mean", "prompt_token_count_mean", ".0f"),
    ("prompt_token_throughput", "prompt_token_throughput", ".0f"),
    ("completion_token_count_mean", "completion_token_count_mean", ".0f"),
    ("completion_token_throughput", "completion_token_throughput", ".0f"),
    ("transactions_per_minute", "transactions_per_minute", ".0f"),
    ("price_per_txn", "price_per_txn", ".6f"),
    ("price_per_token", "price_per_token", ".8f"),
    ("latency p50, p95, p99 (s)", ("latency_p50", "latency_p95", "latency_p99"), ".2f"),
    ("TTFT p50, p95, p99 (s)", ("ttft_p50", "ttft_p95", "ttft_p99"), ".4f"),
    ("TPOT p50, p95, p99 (s)", ("tpot_p50", "tpot_p95", "tpot_p99"), ".4f"),
]


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "n/a"
    if spec == "s":
        return str(value)
    if spec == "d":
        return str(int(value))
    return format(value, spec) if spec else str(value)


def _budget(value: float) -> str:
    return format(value, "g")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with a header rule, columns padded to their widest cell."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _read(warehouse: Path, run_id: str) -> dict[str, Any]:
    if not Path(warehouse).exists():
        raise UserError(f"warehouse {warehouse} not found")
    with connect(Path(warehouse), read_only=True) as con:
        try:
            runs = _rows(con, "select * from marts.dim_runs where run_id = ?", [run_id])
            if not runs:
                raise UserError(f"run {run_id} is not in {warehouse} (rebuild with `python -m collector build`)")
            recs = _rows(
                con,
                "select * from marts.fct_recommendations where run_id = ? "
                "order by is_dataset_of_interest desc, payload_file, experiment_name",
                [run_id],
            )
            failed = _rows(
                con,
                "select * from marts.fct_failed_experiments where run_id = ? "
                "order by experiment_name, payload_file, concurrency",
                [run_id],
            )
            costs = _rows(
                con, "select * from marts.fct_experiment_costs where run_id = ? order by experiment_name", [run_id]
            )
        except duckdb.CatalogException as exc:
            raise UserError(f"{warehouse} has no marts yet (run `python -m collector build`): {exc}") from exc
    return {"run": runs[0], "recommendations": recs, "failed": failed, "costs": costs}


def summary_text(warehouse: Path, run_id: str) -> str:
    """The run's summary: best price performance, failed experiments, costs and per-experiment sentences."""
    data = _read(warehouse, run_id)
    run = data["run"]
    recs: list[dict[str, Any]] = data["recommendations"]
    criteria = (
        f"latency p95 <= {_budget(run['latency_budget_s'])} s, "
        f"cost per 10k transactions <= ${_budget(run['cost_per_10k_txn_budget_usd'])}, "
        f"error rate <= {_budget(run['error_rate_budget'])}"
    )
    out = [
        f"Results for run {run['run_id']} ({run['run_name']}, {run['status']})",
        f"Budgets ({run['budget_source']}): {criteria}. Prices: {run['price_source'] or 'none'}.",
        "",
        "== Summary",
        "",
    ]
    best = next((r for r in recs if r["is_best_price_performance"]), None)
    if best is None:
        out.append(
            f"No experiment met every budget for dataset {run['dataset_of_interest']}, so there is no best "
            "price performance."
        )
    else:
        out += [best["best_price_performance_sentence"], ""]
        info = []
        for label, column, spec in BEST_ROW_FIELDS:
            if isinstance(column, tuple):
                info.append([label, ", ".join(_fmt(best[c], spec) for c in column)])
            else:
                info.append([label, _fmt(best[column], spec)])
        out.append(table(["Information", "Value"], info))

    out += ["", "== Failed experiments", ""]
    failed: list[dict[str, Any]] = data["failed"]
    if not failed:
        out.append(f"All experiments satisfied the configured performance criteria: {criteria}.")
    else:
        out += [
            f"There were a total of {len(failed)} experiment run(s) that failed at least one configured "
            f"performance criterion: {criteria}.",
            "",
            table(
                [
                    "experiment_name",
                    "payload_file",
                    "concurrency",
                    "error_rate",
                    "latency_p95",
                    "cost_per_10k",
                    "missed",
                ],
                [
                    [
                        f["experiment_name"],
                        f["payload_file"],
                        _fmt(f["concurrency"], "d"),
                        _fmt(f["error_rate"], ".4f"),
                        _fmt(f["latency_p95"], ".2f"),
                        _fmt(f["cost_per_10k_txn"], ".2f"),
                        f["missed_budgets"],
                    ]
                    for f in failed
                ],
            ),
        ]

    costs: list[dict[str, Any]] = data["costs"]
    if costs:
        total = sum(c["cost_usd"] or 0 for c in costs)
        out += [
            "",
            "== Experiment cost",
            "",
            f"The cost to run each experiment is below (warm-up included). The total is ${total:.4f}.",
            "",
            table(
                ["experiment_name", "instance_type", "instance_count", "duration_s", "cost_usd", "price_source"],
                [
                    [
                        c["experiment_name"],
                        _fmt(c["instance_type"], "s"),
                        _fmt(c["instance_count"], "d"),
                        _fmt(c["duration_s"], ".2f"),
                        _fmt(c["cost_usd"], ".6f"),
                        c["price_source"],
                    ]
                    for c in costs
                ],
            ),
        ]

    out += ["", "== Per experiment results", ""]
    out += [f"- {r['recommendation_sentence']}" for r in recs] or ["No measured requests."]
    return "\n".join(out) + "\n"
