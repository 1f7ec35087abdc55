"""The same dbt project on Spark: `collector build --target spark` (dbt-spark's session method on a local pyspark)
over a real run's Parquet landing zone passes every model, unit test and data test, and its marts equal DuckDB's
row for row."""

from __future__ import annotations

import re
import shutil
import time
from typing import Any

import duckdb
import pytest

from tests.conftest import run_cli
from tests.dbt.parity import MARTS, NEEDS_SPARK, assert_same_mart

pytestmark = [pytest.mark.slow, *NEEDS_SPARK]


@pytest.fixture(scope="module")
def both_engines(e2e_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The e2e run's landing zone copied, then built on DuckDB and on Spark with the same config budgets."""
    results = tmp_path_factory.mktemp("spark-parity") / "results"
    shutil.copytree(e2e_run["results"] / "raw", results / "raw")
    config = str(e2e_run["config"])
    duck = run_cli("build", "--results-dir", str(results), "--config", config, timeout=600)
    assert duck.returncode == 0, duck.stderr[-3000:]
    started = time.perf_counter()
    # The marts are read back from their Parquet files: no metastore needed (it takes a minute to create).
    spark = run_cli(
        "build",
        "--results-dir",
        str(results),
        "--config",
        config,
        "--target",
        "spark",
        timeout=1200,
        env={"TOKENBENCH_SPARK_CATALOG": "in-memory"},
    )
    assert spark.returncode == 0, (spark.stdout + spark.stderr)[-3000:]
    return {
        "results": results,
        "duckdb_stdout": duck.stdout,
        "spark_stdout": spark.stdout,
        "spark_s": time.perf_counter() - started,
    }


def test_spark_build_passes_every_model_unit_test_and_data_test(both_engines: dict[str, Any]) -> None:
    line = both_engines["spark_stdout"].strip().splitlines()[-1]
    assert line.startswith("built target spark from "), line
    # Every model, unit test, data test and hook that passes on DuckDB passes on Spark: the same count.
    (duck_nodes,) = re.findall(r" (\d+) dbt nodes passed in ", both_engines["duckdb_stdout"])
    assert re.findall(r" (\d+) dbt nodes passed in ", line) == [duck_nodes], (line, duck_nodes)
    assert int(duck_nodes) > 300
    print(f"spark build: {both_engines['spark_s']:.0f} s")


@pytest.mark.parametrize("mart", sorted(MARTS))
def test_spark_marts_equal_duckdbs_row_for_row(both_engines: dict[str, Any], mart: str) -> None:
    assert_same_mart(both_engines["results"], mart)


def test_the_compared_marts_hold_the_runs_levels(both_engines: dict[str, Any]) -> None:
    """The comparison is over real rows: 2 experiments x 2 buckets x 2 concurrencies, 9 requests each."""
    con = duckdb.connect()
    levels = f"{both_engines['results'] / 'spark' / 'warehouse' / 'marts.db' / 'fct_concurrency_metrics'}/*.parquet"
    assert con.execute(f"select count(*), sum(request_count) from read_parquet('{levels}')").fetchone() == (8, 64)
