"""The DuckDB warehouse file: `raw.*` views over the landed run files and the `config` settings table.

The collector opens the warehouse only for short moments (before and after a sweep, never during
one), so readers such as the app or an analyst's shell can query it while a sweep runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from collector.errors import UserError
from collector.landing import MANIFEST_FILE, raw_root, read_json_sql, sql_file_list
from collector.schema import RAW_TABLES, columns

WAREHOUSE_FILE = "tokenbench.duckdb"
LOCK_WAIT_S = 30.0

# Budgets per run_name, written from a config by `collector run` and `collector build --config`.
# dbt prefers these to the budgets recorded in the run manifest, so an edited budget is one build away.
RUN_SETTINGS_DDL = """
create table if not exists config.run_settings (
    run_name varchar primary key,
    latency_budget_s double not null,
    cost_per_10k_txn_budget_usd double not null,
    error_rate_budget double not null,
    dataset_of_interest varchar not null,
    config_path varchar,
    updated_at timestamptz not null
)
"""


def warehouse_path(results_dir: Path) -> Path:
    return results_dir / WAREHOUSE_FILE


@contextmanager
def connect(path: Path, read_only: bool = False, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse, waiting up to `wait_s` while another process holds its lock."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise UserError(f"cannot open warehouse {path}: {exc}".splitlines()[0]) from exc
            time.sleep(0.2)
    try:
        yield con
    finally:
        con.close()


def _ensure_config(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists config")
    con.execute(RUN_SETTINGS_DDL)


def _empty_select(table: str) -> str:
    cols = ", ".join(f"null::{t} as {n}" for n, t in columns(RAW_TABLES[table]).items())
    return f"select {cols} where false"


def raw_view_sql(table: str, results_dir: Path) -> str:
    """SELECT over every landed file of a raw table; a run's Parquet wins over its JSONL."""
    root = raw_root(results_dir).resolve()
    run_dirs = sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []
    if table == "runs":
        files = [d / MANIFEST_FILE for d in run_dirs if (d / MANIFEST_FILE).exists()]
        return read_json_sql(table, files) if files else _empty_select(table)
    parquet = [d / f"{table}.parquet" for d in run_dirs if (d / f"{table}.parquet").exists()]
    jsonl = [
        d / f"{table}.jsonl"
        for d in run_dirs
        if (d / f"{table}.jsonl").exists() and not (d / f"{table}.parquet").exists()
    ]
    parts = []
    if parquet:
        names = ", ".join(columns(RAW_TABLES[table]))
        parts.append(f"select {names} from read_parquet({sql_file_list(parquet)})")
    if jsonl:
        parts.append(read_json_sql(table, jsonl))
    return " union all ".join(parts) if parts else _empty_select(table)


def refresh(results_dir: Path, path: Path | None = None) -> Path:
    """Create the warehouse if needed and point `raw.*` at the files landed so far."""
    path = path or warehouse_path(results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as con:
        con.execute("create schema if not exists raw")
        _ensure_config(con)
        for table in RAW_TABLES:
            con.execute(f"create or replace view raw.{table} as {raw_view_sql(table, results_dir)}")
    return path


def upsert_run_settings(
    path: Path,
    run_name: str,
    latency_budget_s: float,
    cost_per_10k_txn_budget_usd: float,
    error_rate_budget: float,
    dataset_of_interest: str,
    config_path: str,
) -> None:
    """Record the budgets a config gives its run_name; the next dbt build applies them."""
    with connect(path) as con:
        _ensure_config(con)
        con.execute(
            "insert or replace into config.run_settings values (?, ?, ?, ?, ?, ?, now())",
            [
                run_name,
                latency_budget_s,
                cost_per_10k_txn_budget_usd,
                error_rate_budget,
                dataset_of_interest,
                config_path,
            ],
        )
