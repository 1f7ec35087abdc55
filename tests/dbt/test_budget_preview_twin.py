"""The sidebar's budget preview (collector/outputs/queries.py) restates the verdict and recommendation rules
of fct_concurrency_metrics and fct_recommendations for trial budgets. This twin test holds the two equal: for
each budget set, the marts rebuilt under it and the preview given it agree on every level and every bucket.

Run A's own budgets put one level exactly on the latency budget (vllm-g5 c2 on en_500-1000 has p95 = 2.0 s)
and give vllm-g5 two passing levels there (c1 and c2), so a preview judging `<` instead of `<=`, or picking the
lowest passing level instead of the highest, disagrees with the marts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from collector.outputs import queries
from collector.warehouse import refresh
from tests.dbt.builders import LARGE, RUN_A, build_warehouse, query, run_a, set_budgets

VERDICTS = ("meets_latency_budget", "meets_cost_budget", "meets_error_budget", "meets_all_budgets")
SLO = {"slo_ttft_s": None, "slo_tpot_s": None, "slo_e2e_s": 1.5, "slo_attainment": 0.75}
BUDGET_SETS: dict[str, tuple[float, float, float, dict | None]] = {
    "run A's own (p95 on the 2 s budget)": (2.0, 20.0, 0.0, None),
    "loose (every level with a success passes)": (10.0, 1e6, 1.0, None),
    "tight latency, loose errors": (1.25, 10.0, 0.5, None),
    # The SLO is not on trial: its verdict and the ranking by cost per good request come from the marts.
    "loose budgets, an SLO of e2e <= 1.5 s for 75%": (10.0, 1e6, 1.0, SLO),
}


def _flag(value: object) -> bool | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)) else bool(value)


@pytest.fixture(scope="module")
def results(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("twin") / "results"
    shutil.copytree(built.parent, results, ignore=shutil.ignore_patterns(".dbt"))
    refresh(results)
    return results


@pytest.mark.parametrize("budgets", BUDGET_SETS.values(), ids=BUDGET_SETS.keys())
def test_preview_under_a_budget_set_equals_the_marts_rebuilt_under_it(
    results: Path, budgets: tuple[float, float, float, dict | None]
) -> None:
    latency, cost, error_rate, slo = budgets
    warehouse = results / "tokenbench.duckdb"
    set_budgets(
        warehouse,
        run_a(),
        latency_budget_s=latency,
        cost_per_10k_txn_budget_usd=cost,
        error_rate_budget=error_rate,
        slo=slo,
    )
    build_warehouse(results)

    marts = {
        (r["experiment_name"], r["payload_file"], r["concurrency"]): r
        for r in query(warehouse, "select * from marts.fct_concurrency_metrics where run_id = ?", [RUN_A])
    }
    preview = queries.preview_levels(warehouse, RUN_A, latency, cost, error_rate)
    assert len(preview) == len(marts) == 8
    for _, p in preview.iterrows():
        level = marts[(p["experiment_name"], p["payload_file"], p["concurrency"])]
        for verdict in VERDICTS:
            assert _flag(p[f"preview_{verdict}"]) == level[verdict], (p["experiment_name"], p["concurrency"], verdict)

    official = {
        (r["experiment_name"], r["payload_file"]): r
        for r in query(warehouse, "select * from marts.fct_recommendations where run_id = ?", [RUN_A])
    }
    recs = queries.preview_recommendations(warehouse, RUN_A, latency, cost, error_rate)
    assert len(recs) == len(official)
    for _, p in recs.iterrows():
        rec = official[(p["experiment_name"], p["payload_file"])]
        got = (bool(p["has_recommendation"]), None if pd.isna(p["concurrency"]) else int(p["concurrency"]))
        assert got == (rec["has_recommendation"], rec["concurrency"]), (p["experiment_name"], p["payload_file"])
        assert bool(p["is_best_price_performance"]) == rec["is_best_price_performance"], p["experiment_name"]


def test_the_boundary_cases_are_in_the_scenario(built: Path) -> None:
    """Without these, the twin above could not tell `<=` from `<`, nor the highest passing level from the lowest."""
    rows = query(
        built,
        "select concurrency, latency_p95, meets_all_budgets from marts.fct_concurrency_metrics "
        "where run_id = ? and experiment_name = 'vllm-g5' and payload_file = ? order by concurrency",
        [RUN_A, LARGE],
    )
    assert [(r["concurrency"], r["meets_all_budgets"]) for r in rows] == [(1, True), (2, True), (4, False)]
    assert rows[1]["latency_p95"] == 2.0
