"""Rebuilding re-derives the marts from unchanged raw rows: new budgets and prices change verdicts and prices,
`recorded` applies the manifest's prices, the CLI records config budgets, and a failed build names its node."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from collector import dbt_runner
from collector.cli import main as cli_main
from collector.errors import UserError
from collector.warehouse import refresh
from tests.dbt.builders import LARGE, PRICING_DIR, RUN_A, build_warehouse, copy_pricing, query, run_a, set_budgets

approx = pytest.approx


@pytest.fixture
def results_copy(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built scenario (raw files and warehouse) that a test may rebuild."""
    results = tmp_path / "results"
    shutil.copytree(built.parent, results, ignore=shutil.ignore_patterns(".dbt"))
    refresh(results)  # point raw.* at this copy's files
    return results


def _raw_digest(results: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((results / "raw").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _verdicts(warehouse: Path) -> dict[tuple[str, str, int], bool]:
    rows = query(
        warehouse,
        "select experiment_name, payload_file, concurrency, meets_all_budgets from marts.fct_concurrency_metrics "
        "where run_id = ?",
        [RUN_A],
    )
    return {(r["experiment_name"], r["payload_file"], r["concurrency"]): r["meets_all_budgets"] for r in rows}


def test_new_budget_and_price_rejudge_a_past_run_without_touching_raw_rows(results_copy: Path) -> None:
    warehouse = results_copy / "tokenbench.duckdb"
    raw_before = _raw_digest(results_copy)
    requests_before = query(warehouse, "select * from raw.requests order by request_id")
    assert _verdicts(warehouse)[("vllm-g5", LARGE, 2)] is True

    set_budgets(warehouse, run_a(), latency_budget_s=1.0)
    pricing = copy_pricing(results_copy.parent / "pricing")
    prices = (pricing / "token_prices.csv").read_text()
    (pricing / "token_prices.csv").write_text(
        prices.replace(
            "meta.llama3-1-8b-instruct-v1:0,us-east-1,0.22,0.22", "meta.llama3-1-8b-instruct-v1:0,us-east-1,5,5"
        )
    )
    dbt_runner.build(warehouse, pricing_dir=pricing)

    verdicts = _verdicts(warehouse)
    assert verdicts[("vllm-g5", LARGE, 2)] is False  # p95 2.0 s > the new 1.0 s budget
    assert verdicts[("vllm-g5", LARGE, 1)] is False  # p95 1.45 s
    assert verdicts[("tgi-g5", LARGE, 1)] is True  # p95 1.0 s = the budget
    (api,) = query(
        warehouse,
        "select price_per_txn, meets_cost_budget from marts.fct_concurrency_metrics "
        "where experiment_name = 'bedrock-llama'",
    )
    assert api["price_per_txn"] == approx((900 + 75) * 5e-6)  # $48.75 per 10k > $20
    assert api["meets_cost_budget"] is False
    (best,) = query(
        warehouse,
        "select experiment_name from marts.fct_recommendations where run_id = ? and is_best_price_performance",
        [RUN_A],
    )
    assert best["experiment_name"] == "tgi-g5"
    (run,) = query(warehouse, "select budget_source, latency_budget_s from marts.dim_runs where run_id = ?", [RUN_A])
    assert run == {"budget_source": "run_settings", "latency_budget_s": 1.0}
    assert _raw_digest(results_copy) == raw_before
    assert query(warehouse, "select * from raw.requests order by request_id") == requests_before


def test_recorded_price_source_applies_the_manifest_prices(results_copy: Path) -> None:
    warehouse = results_copy / "tokenbench.duckdb"
    dbt_runner.build(warehouse, pricing_dir=PRICING_DIR, vars={"price_source": "recorded"})
    rows = {
        r["experiment_name"]: r
        for r in query(
            warehouse,
            "select experiment_name, price_source, price_per_txn from marts.fct_concurrency_metrics "
            "where run_id = ? and payload_file = ? and concurrency = 1",
            [RUN_A, LARGE],
        )
    }
    assert {r["price_source"] for r in rows.values()} == {"recorded"}
    assert rows["vllm-g5"]["price_per_txn"] == approx(1.5 / 60 / 50)  # recorded $1.50/h, not $1.624
    assert rows["bedrock-llama"]["price_per_txn"] == approx(900 * 0.30e-6 + 75 * 0.60e-6)
    (cost,) = query(warehouse, "select cost_usd from marts.fct_experiment_costs where experiment_name = 'tgi-g5'")
    assert cost["cost_usd"] == approx(1.624 * 4.5 / 3600)
    (run,) = query(warehouse, "select price_source from marts.dim_runs where run_id = ?", [RUN_A])
    assert run["price_source"] == "recorded"


def test_cli_build_stores_config_budgets_and_prints_one_line(
    results_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "run_name": "llama-g5",
        "payloads": [{"name": LARGE, "synthetic": {"min_tokens": 500, "max_tokens": 1000, "count": 2}}],
        "experiments": [
            {
                "name": "vllm-g5",
                "model_id": "meta-llama/Llama-3.1-8B-Instruct",
                "endpoint": {"type": "simulated"},
                "instance_type": "g5.4xlarge",
                "concurrency_levels": [1],
                "requests_per_level": 1,
                "payloads": [LARGE],
            }
        ],
        "report": {
            "latency_budget_s": 1.5,
            "cost_per_10k_txn_budget_usd": 6,
            "error_rate_budget": 0,
            "dataset_of_interest": LARGE,
        },
        "pricing_dir": str(PRICING_DIR),
    }
    path = tmp_path / "llama-g5.yml"
    path.write_text(yaml.safe_dump(config))
    code = cli_main(["build", "--results-dir", str(results_copy), "--config", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1 and "2 run(s) (1 with config budgets)" in out
    warehouse = results_copy / "tokenbench.duckdb"
    (run,) = query(
        warehouse,
        "select budget_source, latency_budget_s, cost_per_10k_txn_budget_usd from marts.dim_runs where run_id = ?",
        [RUN_A],
    )
    assert run == {"budget_source": "run_settings", "latency_budget_s": 1.5, "cost_per_10k_txn_budget_usd": 6.0}
    verdicts = _verdicts(warehouse)
    assert verdicts[("vllm-g5", LARGE, 1)] is True  # p95 1.45 s <= 1.5 s, $5.41 per 10k <= $6
    assert verdicts[("vllm-g5", LARGE, 2)] is False  # p95 2.0 s > 1.5 s


def test_failed_build_raises_one_line_naming_the_failing_node(tmp_path: Path) -> None:
    pricing = copy_pricing(tmp_path / "pricing")
    with (pricing / "instance_prices.csv").open("a") as fh:
        fh.write("g5.4xlarge,eu-west-1,1.9,2026-11-26,a second region for the same instance type\n")
    with pytest.raises(UserError) as err:
        build_warehouse(tmp_path / "results", [run_a()], pricing_dir=pricing)
    message = str(err.value)
    assert "\n" not in message
    assert "unique_stg_pricing__instance_prices_instance_type" in message
