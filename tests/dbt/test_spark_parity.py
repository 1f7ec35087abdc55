"""The same dbt project on Spark: `collector build --target spark` (dbt-spark's session method on a local pyspark)
over a real run's Parquet landing zone passes every model, unit test and data test, and its marts equal DuckDB's
row for row."""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None,
        reason="the [spark] extra (dbt-spark, pyspark) is not installed",
    ),
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17+ (apt-get install default-jre)"),
]

# Mart -> the columns that order its rows (its grain).
MARTS = {
    "fct_concurrency_metrics": ["run_id", "experiment_name", "payload_file", "concurrency", "target_rate_rps"],
    "fct_recommendations": ["run_id", "experiment_name", "payload_file"],
    "fct_experiment_costs": ["run_id", "experiment_name"],
    "fct_requests": ["request_id"],
    "fct_endpoint_metrics": ["run_id", "experiment_name", "concurrency", "target_rate_rps"],
    "fct_telemetry_samples": ["run_id", "offset_ns"],
    "fct_failed_experiments": ["run_id", "experiment_name", "payload_file", "concurrency", "target_rate_rps"],
}


def _normal(value: Any) -> Any:
    """One spelling of a value across the engines: instants as naive UTC (DuckDB's timestamptz is aware)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return _normal(a) == _normal(b)


def _rows(con: duckdb.DuckDBPyConnection, relation: str, keys: list[str]) -> tuple[list[str], list[tuple]]:
    rel = con.sql(f"select * from {relation} order by {', '.join(f'{k} nulls first' for k in keys)}")
    return rel.columns, rel.fetchall()


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
    results: Path = both_engines["results"]
    con = duckdb.connect()
    con.execute(f"attach '{results / 'tokenbench.duckdb'}' as duck (read_only)")
    # Spark's tables are Parquet folders in its warehouse (<results>/spark/warehouse/<schema>.db/<table>).
    spark_table = f"read_parquet('{results / 'spark' / 'warehouse' / 'marts.db' / mart / '*.parquet'}')"
    duck_columns, duck_rows = _rows(con, f"duck.marts.{mart}", MARTS[mart])
    spark_columns, spark_rows = _rows(con, spark_table, MARTS[mart])
    assert spark_columns == duck_columns
    assert len(spark_rows) == len(duck_rows)
    for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
        differing = [
            (name, d, s) for name, d, s in zip(duck_columns, duck_row, spark_row, strict=True) if not _same(d, s)
        ]
        assert differing == [], dict(zip(duck_columns, duck_row, strict=True))


def test_the_compared_marts_hold_the_runs_levels(both_engines: dict[str, Any]) -> None:
    """The comparison is over real rows: 2 experiments x 2 buckets x 2 concurrencies, 9 requests each."""
    con = duckdb.connect()
    levels = f"{both_engines['results'] / 'spark' / 'warehouse' / 'marts.db' / 'fct_concurrency_metrics'}/*.parquet"
    assert con.execute(f"select count(*), sum(request_count) from read_parquet('{levels}')").fetchone() == (8, 64)
