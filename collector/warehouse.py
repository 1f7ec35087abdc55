"""The DuckDB warehouse file: `raw.*` views over the landed run files and the `config` settings table.

One writer at a time, by design: every write (the views, the budgets, `dbt build`) happens under a lock file
beside the warehouse, into a private copy that is swapped in atomically when the write succeeds. So readers
(the app, the report, an analyst's shell) never wait for a build and never block one: they see the last
complete warehouse until the new one replaces it. The collector never holds the file during a sweep.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from collector.duckdb_s3 import register_if_needed
from collector.errors import UserError
from collector.landing import MANIFEST_FILE, STREAM_TABLES, RawStore, raw_store, struct_of
from collector.schema import RAW_TABLES
from collector.settings import WAREHOUSE_FILE

LOCK_WAIT_S = 30.0  # readers: only a legacy writer holding the file itself can make them wait
WRITER_WAIT_ENV = "TOKENBENCH_WRITER_WAIT_S"
WRITER_WAIT_S = 900.0  # a second writer waits this long for the first (a large build takes minutes)

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
# Columns added since the table was first made: a warehouse made before gets them on its next write.
RUN_SETTINGS_ADDED = ("slo_ttft_s", "slo_tpot_s", "slo_e2e_s", "slo_attainment")

_SESSIONS: dict[Path, Path] = {}  # warehouse -> its private copy, while this process writes it


def warehouse_path(results_dir: Path) -> Path:
    return results_dir / WAREHOUSE_FILE


class WarehouseBusy(UserError):
    """Another process held the warehouse's DuckDB lock for longer than the wait allowed."""


@contextmanager
def connect(
    path: str | Path, read_only: bool = False, wait_s: float = LOCK_WAIT_S
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open a warehouse file (the one connect of tokenbench), waiting up to `wait_s` while another process holds
    its DuckDB lock: WarehouseBusy after that, a UserError naming the file for any other failure.

    To change the warehouse, open the path `writing()` yields, not the warehouse itself.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            message = f"cannot open warehouse {path}: {first_line}"
            if "lock" not in first_line.lower():
                raise UserError(message) from exc
            if time.monotonic() > deadline:
                raise WarehouseBusy(message) from exc
            time.sleep(0.1)
    try:
        register_if_needed(con)  # raw views over S3 read through a filesystem registered per connection
        yield con
    finally:
        con.close()


# -- one writer at a time -------------------------------------------------------------------


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _holder(lock_file: Path) -> str:
    try:
        return lock_file.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def writer_lock(path: Path, wait_s: float | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lock (a lock file beside it); wait for another writer with one message."""
    wait_s = float(os.environ.get(WRITER_WAIT_ENV, WRITER_WAIT_S)) if wait_s is None else wait_s
    lock_file = _lock_path(path)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserError(
                        f"{path}: {_holder(lock_file)} is still writing the warehouse after {wait_s:g} s; "
                        f"try again when it is done (or raise ${WRITER_WAIT_ENV})"
                    ) from None
                if not told:
                    print(f"waiting for {_holder(lock_file)} to finish writing {path} ...", file=sys.stderr)
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} ({' '.join(sys.argv[:3])})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _settle_wal(path: Path) -> None:
    """A writer killed mid-write may leave a WAL beside the warehouse: replay it into the file before copying."""
    if path.with_name(path.name + ".wal").exists():
        with connect(path) as con:
            con.execute("checkpoint")


@contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Hold the writer lock and yield a private copy of the warehouse to change; swap it in if the block succeeds.

    The copy keeps the warehouse's file name (in a sibling folder), because DuckDB names the catalog after the
    file and dbt's views refer to it. Nested calls for the same warehouse share the outer copy.
    """
    path = Path(path).resolve()
    if path in _SESSIONS:
        yield _SESSIONS[path]
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with writer_lock(path):
        work = path.parent / f".writing-{path.name}-{os.getpid()}"
        for stale in path.parent.glob(f".writing-{path.name}-*"):  # left by a killed writer (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        work.mkdir()
        copy = work / path.name
        try:
            if path.exists():
                _settle_wal(path)
                shutil.copyfile(path, copy)
            _SESSIONS[path] = copy
            try:
                yield copy
            finally:
                del _SESSIONS[path]
            if copy.with_name(copy.name + ".wal").exists():  # a connection left open: checkpoint before the swap
                with connect(copy) as con:
                    con.execute("checkpoint")
            if copy.exists():
                with open(copy, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(copy, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)


# -- raw views --------------------------------------------------------------------------------


def sql_string(value: str) -> str:
    """A SQL string literal (for DDL, where parameters cannot be bound)."""
    return "'" + value.replace("'", "''") + "'"


def _pattern(raw: RawStore, file_name: str) -> str:
    """A quoted glob over one file name in every run folder (and the schema folder, so it always matches)."""
    return sql_string(raw.glob(file_name))


def _struct_literal(table: str) -> str:
    return "{" + ", ".join(f"{sql_string(n)}: {sql_string(t)}" for n, t in struct_of(table).items()) + "}"


def _read_json(table: str, pattern: str, filename: bool = False) -> str:
    return (
        f"select * from read_json({pattern}, format = 'newline_delimited', columns = {_struct_literal(table)}, "
        f"ignore_errors = true{', filename = true' if filename else ''}) "
        "where run_id is not null"  # a torn line parses as all nulls
    )


def raw_view_sql(table: str, raw: RawStore | Path) -> str:
    """SELECT over every run's files of a raw table (in a results folder or a store), whatever each run has now.

    Globs, not file lists: a run that starts, ends or is compacted after the view was made is still read, and so
    is every part of a sharded run (`requests.w1.jsonl`, `requests.s2.jsonl`, collector/landing.py). A group's
    Parquet wins over its JSONL parts or S3 segments (both exist for a while during compaction): a part is read
    only while the Parquet file its group compacts to does not exist.
    """
    raw = raw_store(raw)
    if table == "runs":
        return _read_json(table, _pattern(raw, MANIFEST_FILE))
    assert table in STREAM_TABLES
    typed = ", ".join(f"{n}::{t} as {n}" for n, t in struct_of(table).items())
    parquets = _pattern(raw, table + "*.parquet")
    parquet = f"select {typed} from read_parquet({parquets}, union_by_name = true)"
    jsonl = _read_json(table, _pattern(raw, raw.jsonl_name(table)), filename=True)
    return (
        f"with parquet as ({parquet}), jsonl as ({jsonl}) "
        "select * from parquet union all "
        "select * exclude (filename) from jsonl "
        # the file its group compacts to: requests.s2.w1.jsonl -> requests.s2.parquet on disk, a segment
        # requests-000001.jsonl -> requests.parquet and requests.s2.w1-000001.jsonl -> requests.s2.parquet on S3
        # (collector/landing_s3.py)
        r"where regexp_replace(filename, '(\.w[0-9]+)?(-[0-9]+)?\.jsonl$', '.parquet') "
        f"not in (select file from glob({parquets}))"
    )


def _ensure_config(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists config")
    con.execute(RUN_SETTINGS_DDL)
    for column in RUN_SETTINGS_ADDED:
        con.execute(f"alter table config.run_settings add column if not exists {column} double")


def refresh(results_dir: Path, path: Path | None = None, raw: RawStore | None = None) -> Path:
    """Create the warehouse if needed and point `raw.*` at the landed files; mark dead runs lost.

    The files are those under results_dir/raw/, or in `raw` when given (an S3 prefix; the warehouse stays in
    results_dir). Also finishes the compaction of any run that is over (a kill may have interrupted it).
    """
    path = path or warehouse_path(results_dir)
    store = raw or raw_store(results_dir)
    with writing(path) as target:
        store.reconcile()
        store.write_schema_files()
        with connect(target) as con:
            store.attach(con)
            con.execute("create schema if not exists raw")
            _ensure_config(con)
            for table in RAW_TABLES:
                con.execute(f"create or replace view raw.{table} as {raw_view_sql(table, store)}")
    return path


def upsert_run_settings(
    path: Path,
    run_name: str,
    latency_budget_s: float,
    cost_per_10k_txn_budget_usd: float,
    error_rate_budget: float,
    dataset_of_interest: str,
    config_path: str,
    slo: dict[str, float | None] | None = None,
) -> None:
    """Record the budgets (and SLOs: `slo_*` keys, none by default) a config gives its run_name; the next dbt
    build applies them."""
    slo = {column: (slo or {}).get(column) for column in RUN_SETTINGS_ADDED}
    with writing(path) as target, connect(target) as con:
        _ensure_config(con)
        con.execute(
            "insert or replace into config.run_settings (run_name, latency_budget_s, cost_per_10k_txn_budget_usd, "
            f"error_rate_budget, dataset_of_interest, config_path, updated_at, {', '.join(slo)}) "
            f"values (?, ?, ?, ?, ?, ?, now(), {', '.join('?' * len(slo))})",
            [
                run_name,
                latency_budget_s,
                cost_per_10k_txn_budget_usd,
                error_rate_budget,
                dataset_of_interest,
                config_path,
                *slo.values(),
            ],
        )


def run_settings_export_path(results_dir: Path) -> Path:
    """Where `export_run_settings` writes config.run_settings for an engine that cannot read the warehouse file."""
    return results_dir / "config" / "run_settings.parquet"


def export_run_settings(path: Path, results_dir: Path) -> Path:
    """Write the warehouse's config.run_settings as Parquet beside the landing zone (atomically), where the dbt
    project's Spark sources read it (models_dbt/macros/spark_sources.sql): budgets stay recorded in one place."""
    out = run_settings_export_path(results_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with writing(path) as target, connect(target) as con:
        _ensure_config(con)
        con.execute(
            f"copy (select * from config.run_settings order by run_name) to {sql_string(str(tmp))} (format parquet)"
        )
    os.replace(tmp, out)
    return out
