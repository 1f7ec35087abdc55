"""DuckDB's marts against Spark's: the same rows, column for column, after `collector build` on both engines."""

from __future__ import annotations

import importlib.util
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

# The marks of a test that builds on Spark: it needs the [spark] extra and Java.
NEEDS_SPARK = [
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


def assert_same_mart(results: Path, mart: str) -> None:
    """The mart in the DuckDB warehouse of `results` equals, row for row, the one Spark wrote beside it."""
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
