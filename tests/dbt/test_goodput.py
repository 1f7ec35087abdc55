"""Goodput and the price of a good request rank an expensive fast stack against a cheap slow one.

Run "slo" sets an SLO of e2e <= 1 s for 50% of requests. `fast` ($6/h) serves ten 0.5 s requests back to back
at concurrency 1: 120 a minute, all good: $6 / 60 / 120 = $0.000833 a transaction, $8.33 per 10k good requests.
`cheap` ($2/h) serves six 0.9 s and four 1.6 s requests: 10 in 11.8 s = 50.85 a minute, $0.000656 a transaction
($6.56 per 10k: cheaper), but only 6 are good (60%, which meets the 50%): its spend of $2/h buys 6 good
requests in 11.8 s, $2 / 3600 x 11.8 / 6 = $0.001093 each, $10.93 per 10k good. With the SLO, `fast` is the best
price performance; rebuilt without it (a budget change needs no new run), `cheap` is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.outputs import queries, sentences
from tests.dbt.builders import Experiment, RunSpec, _back_to_back, build_warehouse, query, set_budgets

pytestmark = pytest.mark.slow

SLO = {"slo_ttft_s": None, "slo_tpot_s": None, "slo_e2e_s": 1.0, "slo_attainment": 0.5}
SPEC = RunSpec(
    run_id="20261126T150000Z-slo",
    run_name="slo",
    experiments=[
        Experiment("fast", instance_type="x9.fast", usd_per_hour=6.0),
        Experiment("cheap", instance_type="x9.cheap", usd_per_hour=2.0),
    ],
    requests=_back_to_back("fast", "big", 1, 0.0, [0.5] * 10, ttft_s=0.1)
    + _back_to_back("cheap", "big", 1, 10.0, [0.9, 1.6] * 4 + [0.9, 0.9], ttft_s=0.1),
    dataset_of_interest="big",
    latency_budget_s=2.0,
    slo=SLO,
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("goodput") / "results"
    build_warehouse(results, [SPEC])
    return results


def _levels(warehouse: Path) -> dict[str, dict]:
    return {r["experiment_name"]: r for r in query(warehouse, "select * from marts.fct_concurrency_metrics")}


def test_goodput_and_the_price_of_a_good_request_by_hand(results: Path) -> None:
    levels = _levels(results / "tokenbench.duckdb")
    fast, cheap = levels["fast"], levels["cheap"]
    assert (fast["good_request_count"], fast["slo_attainment"], fast["meets_slo"]) == (10, 1.0, True)
    assert fast["goodput_rps"] == pytest.approx(2.0)
    assert fast["cost_per_10k_txn"] == pytest.approx(10_000 * 6 / 60 / 120)
    assert fast["cost_per_10k_good_requests"] == pytest.approx(10_000 * 6 / 60 / 120)
    assert (cheap["good_request_count"], cheap["slo_attainment"], cheap["meets_slo"]) == (6, 0.6, True)
    assert cheap["transactions_per_minute"] == pytest.approx(10 * 60 / 11.8)
    assert cheap["cost_per_10k_txn"] == pytest.approx(10_000 * 2 / 60 / (10 * 60 / 11.8))
    assert cheap["goodput_rps"] == pytest.approx(6 / 11.8)
    assert cheap["cost_per_10k_good_requests"] == pytest.approx(10_000 * 2 / 3600 * 11.8 / 6)


def test_with_slos_the_best_price_performance_is_the_cheapest_good_request(results: Path) -> None:
    warehouse = results / "tokenbench.duckdb"
    (best,) = query(warehouse, "select * from marts.fct_recommendations where is_best_price_performance")
    assert (best["experiment_name"], best["ranked_by"]) == ("fast", "cost_per_10k_good_requests")
    assert "$8.33 per 10k good requests ($8.33 per 10k transactions, 100% of them good)" in (
        sentences.best_price_performance(best)
    )
    (run,) = query(warehouse, "select * from marts.dim_runs")
    assert sentences.criteria(run).endswith(", SLOs latency ≤ 1 s for 50% of requests")


def test_the_preview_ranks_by_good_requests_too(results: Path) -> None:
    recs = queries.preview_recommendations(results / "tokenbench.duckdb", SPEC.run_id, 2.0, 20.0, 0.0)
    assert recs.loc[recs["is_best_price_performance"], "experiment_name"].tolist() == ["fast"]


def test_rebuilt_without_the_slo_the_cheaper_transaction_wins(results: Path) -> None:
    warehouse = results / "tokenbench.duckdb"
    set_budgets(warehouse, SPEC, slo=None)  # the config now sets no SLO; no new run
    build_warehouse(results)
    (best,) = query(warehouse, "select * from marts.fct_recommendations where is_best_price_performance")
    assert (best["experiment_name"], best["ranked_by"]) == ("cheap", "cost_per_10k_txn")
    assert _levels(warehouse)["cheap"]["goodput_rps"] is None
