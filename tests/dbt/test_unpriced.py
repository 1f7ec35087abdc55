"""Experiments not priced by an instance: one with an hourly price given in the config, one benchmarked
unpriced on a remote openai endpoint, built with the real dbt on fixture raw rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from collector.outputs import sentences
from tests.dbt.builders import Experiment, Instant, Req, RunSpec, build_warehouse, query

approx = pytest.approx
RUN = "20261127T090000Z-cccccc"
BUCKET = "en_500-1000"

# Budgets: p95 <= 2 s, <= $20 per 10k transactions, error rate 0.
#   on-prem  (process endpoint, instance type unknown to pricing/, $3.20/h given in the config, 2 instances)
#     c1  4 x 1.0 s back to back from 0.0 -> span 4 s, 60 transactions/minute
#     c2  worker 0: 1.5, 1.5 s; worker 1: 1.5, 1.5 s from 5.0 -> span 3 s, 80 transactions/minute
#   laptop   (remote openai endpoint, no instance type, unpriced)
#     c1  4 x 1.0 s back to back from 10.0
#     c4  4 x 2.5 s at 15.0 (p95 2.5 s misses the latency budget)
# Telemetry at 0..20 s: host cpu_percent = 10.
SPEC = RunSpec(
    run_id=RUN,
    run_name="unpriced",
    experiments=[
        Experiment(
            "on-prem",
            instance_type="dgx-in-the-basement",
            instance_count=2,
            usd_per_hour=3.2,
            price_source="config",
            endpoint_type="process",
        ),
        Experiment("laptop", instance_type=None, unpriced=True, endpoint_type="openai"),
    ],
    requests=[
        *(Req("on-prem", BUCKET, 1, float(i), 1.0) for i in range(4)),
        *(Req("on-prem", BUCKET, 2, 5.0 + 1.5 * i, 1.5, worker_index=w) for w in (0, 1) for i in (0, 1)),
        *(Req("laptop", BUCKET, 1, 10.0 + i, 1.0) for i in range(4)),
        *(Req("laptop", BUCKET, 4, 15.0, 2.5, worker_index=w) for w in range(4)),
    ],
    instants=[Instant(float(t)) for t in range(21)],
    dataset_of_interest=BUCKET,
)


# A run with nothing priced at all: it passes its budgets, and no row can be the best price performance.
ONLY_UNPRICED = RunSpec(
    run_id="20261127T100000Z-dddddd",
    run_name="only-unpriced",
    experiments=[Experiment("laptop", instance_type=None, unpriced=True, endpoint_type="openai")],
    requests=[Req("laptop", BUCKET, 1, float(i), 1.0) for i in range(4)],
    instants=[Instant(float(t)) for t in range(5)],
    dataset_of_interest=BUCKET,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_warehouse(tmp_path_factory.mktemp("unpriced") / "results", [SPEC, ONLY_UNPRICED])


def test_a_run_with_nothing_priced_builds_with_a_recommendation_and_no_best_price_performance(built: Path) -> None:
    (rec,) = query(built, "select * from marts.fct_recommendations where run_id = ?", [ONLY_UNPRICED.run_id])
    assert (rec["has_recommendation"], rec["concurrency"], rec["is_best_price_performance"]) == (True, 1, False)


def _levels(warehouse: Path) -> dict[tuple[str, int], dict]:
    rows = query(warehouse, "select * from marts.fct_concurrency_metrics where run_id = ?", [RUN])
    return {(r["experiment_name"], r["concurrency"]): r for r in rows}


def test_inline_config_price_is_charged_by_hand_and_unknown_instance_type_needs_no_pricing_row(built: Path) -> None:
    levels = _levels(built)
    c1, c2 = levels[("on-prem", 1)], levels[("on-prem", 2)]
    assert (c1["pricing_kind"], c1["price_source"], c1["usd_per_hour"]) == ("instance", "config", 3.2)
    # c1: 4 requests over 4 s = 60/min; 3.20 x 2 / 60 / 60 = $0.0017778 per transaction, $17.78 per 10k (passes)
    assert c1["transactions_per_minute"] == approx(60.0)
    assert c1["price_per_txn"] == approx(3.2 * 2 / 60 / 60)
    assert c1["cost_per_10k_txn"] == approx(10_000 * 3.2 * 2 / 60 / 60)
    assert (c1["meets_cost_budget"], c1["meets_all_budgets"]) == (True, True)
    # c2: 4 requests over 3 s = 80/min; 3.20 x 2 / 60 / 80 = $0.0013333, $13.33 per 10k
    assert c2["cost_per_10k_txn"] == approx(10_000 * 3.2 * 2 / 60 / 80)
    (cost,) = query(built, "select * from marts.fct_experiment_costs where experiment_name = 'on-prem'")
    # from the first request start (0 s) to the last end (8 s): 3.20 x 2 x 8 / 3600
    assert cost["duration_s"] == approx(8.0)
    assert cost["cost_usd"] == approx(3.2 * 2 * 8 / 3600)
    assert cost["price_source"] == "config"


def test_unpriced_experiment_has_null_costs_and_cost_verdict_not_judged(built: Path) -> None:
    levels = _levels(built)
    c1, c4 = levels[("laptop", 1)], levels[("laptop", 4)]
    for m in (c1, c4):
        assert (m["pricing_kind"], m["price_source"]) == ("unpriced", "none")
        assert (m["price_per_txn"], m["price_per_token"], m["cost_per_10k_txn"]) == (None, None, None)
        assert m["meets_cost_budget"] is None  # not judged: neither a pass nor a fail
    assert (c1["meets_latency_budget"], c1["meets_error_budget"], c1["meets_all_budgets"]) == (True, True, True)
    assert (c4["meets_latency_budget"], c4["meets_all_budgets"]) == (False, False)
    (failed,) = query(
        built, "select * from marts.fct_failed_experiments where experiment_name = 'laptop' and run_id = ?", [RUN]
    )
    assert (failed["concurrency"], failed["missed_budgets"], failed["misses_cost_budget"]) == (4, "latency", None)
    (cost,) = query(
        built, "select * from marts.fct_experiment_costs where experiment_name = 'laptop' and run_id = ?", [RUN]
    )
    assert (cost["cost_usd"], cost["usd_per_hour"], cost["price_source"]) == (None, None, "none")


def test_unpriced_experiment_is_recommended_on_latency_and_errors_but_never_ranked_on_price(built: Path) -> None:
    recs = {
        r["experiment_name"]: r for r in query(built, "select * from marts.fct_recommendations where run_id = ?", [RUN])
    }
    laptop = recs["laptop"]
    assert (laptop["has_recommendation"], laptop["concurrency"]) == (True, 1)
    assert "unpriced, so cost is not judged" in sentences.recommendation(laptop)
    assert laptop["is_best_price_performance"] is False
    # The priced one (highest passing level c2, $13.33 per 10k) is the best price performance.
    on_prem = recs["on-prem"]
    assert (on_prem["concurrency"], on_prem["is_best_price_performance"]) == (2, True)
    assert "$13.33 per 10k" in sentences.best_price_performance(on_prem)


def test_endpoint_metrics_say_whose_host_the_telemetry_describes(built: Path) -> None:
    rows = query(
        built, "select experiment_name, telemetry_host from marts.fct_endpoint_metrics where run_id = ?", [RUN]
    )
    assert {r["experiment_name"]: r["telemetry_host"] for r in rows} == {"on-prem": "endpoint", "laptop": "collector"}


def test_report_says_which_experiment_is_unpriced_and_whose_host_the_telemetry_is(built: Path, tmp_path: Path) -> None:
    from collector.outputs.report import write_report

    text = write_report(built, RUN, tmp_path, results_dir=built.parent).read_text()
    assert "`laptop` was benchmarked unpriced" in text
    endpoint = text.split("### Endpoint metrics")[1].split("### Configuration")[0]
    assert "For `laptop` the endpoint is remote" in endpoint
    assert "| laptop | 1 | collector | Host CPU (%) |" in endpoint
    assert "| on-prem | 1 | endpoint | Host CPU (%) |" in endpoint
    costs = text.split("#### Model Benchmarking Cost")[1]
    assert "| `laptop` | unpriced endpoint | unpriced (none) |" in costs


def test_budget_preview_under_the_runs_own_budgets_equals_the_marts_for_unpriced_and_inline_prices(built: Path) -> None:
    from collector.outputs import queries

    preview = queries.preview_levels(built, RUN, 2.0, 20.0, 0.0)
    marts = _levels(built)
    assert len(preview) == len(marts) == 4
    for _, p in preview.iterrows():
        m = marts[(p["experiment_name"], p["concurrency"])]
        for verdict in ("meets_latency_budget", "meets_cost_budget", "meets_error_budget", "meets_all_budgets"):
            got = p[f"preview_{verdict}"]
            assert (None if got is None or got is pd.NA else bool(got)) == m[verdict], (p["experiment_name"], verdict)
    recs = queries.preview_recommendations(built, RUN, 2.0, 20.0, 0.0).set_index("experiment_name")
    assert bool(recs.loc["on-prem", "is_best_price_performance"]) is True
    assert bool(recs.loc["laptop", "is_best_price_performance"]) is False
    assert (bool(recs.loc["laptop", "has_recommendation"]), int(recs.loc["laptop", "concurrency"])) == (True, 1)
