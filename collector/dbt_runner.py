"""Runs `dbt build` on the project in models_dbt/ through dbt's Python API, against one warehouse file.

The equivalent shell command, from the repo root, is
`dbt build --project-dir models_dbt --profiles-dir models_dbt` (see models_dbt/README.md).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.errors import UserError
from collector.settings import (
    DBT_PROJECT_DIR,
    DEFAULT_PRICING_DIR,
    PRICE_FILES,
    PRICING_ENV,
    RAW_DIR_ENV,
    RESULTS_ENV,
    SPARK_DIR_ENV,
    WAREHOUSE_ENV,
)
from collector.warehouse import writing

FAILED_STATUSES = {"error", "fail", "runtime error"}


@dataclass(frozen=True)
class BuildResult:
    """What one `dbt build` did."""

    warehouse: Path
    pricing_dir: Path
    vars: dict[str, Any]
    nodes: int
    warnings: int
    elapsed_s: float
    log_path: Path


def dbt_work_dir(warehouse: Path) -> Path:
    """Where dbt's target/ and logs/ go for this warehouse: beside it, so parallel builds never share one."""
    return warehouse.parent / ".dbt" / warehouse.stem


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (and keep the working directory: dbt changes it) for the duration."""
    saved = {k: os.environ.get(k) for k in values}
    cwd = os.getcwd()
    os.environ.update(values)
    try:
        yield
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _release_warehouse() -> None:
    """dbt-duckdb keeps its DuckDB instance in a class attribute; close it so the file's lock goes now."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a hard dependency
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        try:
            env.close()
        finally:
            DuckDBConnectionManager._ENV = None


def _failure_line(result: Any, log_path: Path) -> str:
    """One line naming the first failing node and why."""
    if result.exception is not None:
        first = str(result.exception).strip().splitlines() or [type(result.exception).__name__]
        return f"dbt build failed: {first[0]} (log: {log_path})"
    for node_result in getattr(result.result, "results", None) or []:
        if str(node_result.status) in FAILED_STATUSES:
            node = node_result.node.unique_id
            lines = [ln.strip() for ln in str(node_result.message or "").splitlines() if ln.strip()]
            why = lines[0] if lines else str(node_result.status)
            return f"dbt build failed at {node}: {why} (log: {log_path})"
    return f"dbt build failed (log: {log_path})"


DUCKDB_TARGET = "local"  # models_dbt/profiles.yml's default target: the DuckDB warehouse file
SPARK_TARGET = "spark"  # dbt-spark's session method on a local pyspark, over the Parquet landing zone


def spark_dir(results_dir: Path) -> Path:
    return Path(os.environ.get(SPARK_DIR_ENV) or results_dir / "spark")


def build(
    warehouse: Path,
    *,
    pricing_dir: Path | None = None,
    vars: dict[str, Any] | None = None,
    quiet: bool = True,
    target: str | None = None,
    results_dir: Path | None = None,
    raw_dir: Path | None = None,
) -> BuildResult:
    """Build every model, unit test and data test of models_dbt/ into `warehouse`.

    `pricing_dir` defaults to $TOKENBENCH_PRICING_DIR, else the repo's pricing/. `vars` go to dbt's --vars
    (e.g. {"price_source": "recorded"}). `target` is a profiles.yml target: the default (DuckDB, into
    `warehouse`), or "spark" (or another engine's target added to profiles.yml), which reads the Parquet landing
    zone of `results_dir` (its raw/, or `raw_dir`: a local mirror of an S3 landing zone), and the run settings
    `warehouse.export_run_settings` wrote there, and writes its marts to Spark's warehouse under spark_dir().
    Raises UserError naming the failing node when the build fails.
    """
    from dbt.cli.main import dbtRunner

    warehouse = Path(warehouse).resolve()
    prices = Path(pricing_dir or os.environ.get(PRICING_ENV) or DEFAULT_PRICING_DIR).resolve()
    for name in PRICE_FILES:
        if not (prices / name).is_file():
            raise UserError(f"pricing dir {prices}: {name} not found")
    spark = target not in (None, DUCKDB_TARGET)  # spark, or a production target a user added beside it
    if spark:
        if results_dir is None:
            raise UserError("the spark target needs the results folder (its raw/ is what Spark reads)")
        results_dir = Path(results_dir).resolve()
        work = spark_dir(results_dir).resolve()
    else:
        work = dbt_work_dir(warehouse)
    log_path = work / "logs"
    args = [
        "build",
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(log_path),
        "--vars",
        json.dumps(vars or {}),
    ]
    if target:
        args += ["--target", target]
    if quiet:
        args.append("--quiet")
    started = time.perf_counter()
    if spark:
        assert results_dir is not None
        env = {RESULTS_ENV: str(results_dir), PRICING_ENV: str(prices), SPARK_DIR_ENV: str(work)}
        if raw_dir is not None:
            env[RAW_DIR_ENV] = str(Path(raw_dir).resolve())
        with _environment(env):
            result = dbtRunner().invoke(args)
            _check(result, log_path)
    else:
        # Into a private copy, swapped in only when the build passes: readers keep the last good warehouse meanwhile.
        with writing(warehouse) as copy, _environment({WAREHOUSE_ENV: str(copy), PRICING_ENV: str(prices)}):
            if not copy.exists():
                raise UserError(f"warehouse {warehouse} not found (run `python -m collector run` or refresh it first)")
            try:
                result = dbtRunner().invoke(args)
            finally:
                _release_warehouse()
            _check(result, log_path)
    elapsed = time.perf_counter() - started
    node_results = getattr(result.result, "results", None) or []
    return BuildResult(
        warehouse=warehouse,
        pricing_dir=prices,
        vars=dict(vars or {}),
        nodes=len(node_results),
        warnings=sum(1 for r in node_results if str(r.status) == "warn"),
        elapsed_s=elapsed,
        log_path=log_path / "dbt.log",
    )


def _check(result: Any, log_path: Path) -> None:
    if isinstance(result.exception, KeyboardInterrupt):  # dbt's runner catches it with everything else
        raise KeyboardInterrupt from result.exception
    if not result.success:
        raise UserError(_failure_line(result, log_path / "dbt.log"))
