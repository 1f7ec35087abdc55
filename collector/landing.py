"""Append-only, crash-safe landing of raw rows as JSONL files, one folder per run.

Rows are buffered in memory and written as whole lines every FLUSH_INTERVAL_S by a background
thread, so `kill -9` loses at most that much; the manifest is rewritten atomically. At the end of
a run the JSONL files are compacted to Parquet for fast scans. Nothing here opens the warehouse.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

from collector.schema import RAW_TABLES, RunManifest, columns

FLUSH_INTERVAL_S = 0.5
HEARTBEAT_INTERVAL_S = 5.0
STREAM_TABLES = ("requests", "telemetry_samples")
MANIFEST_FILE = "run.json"


def raw_root(results_dir: Path) -> Path:
    """Folder holding one sub-folder of landed files per run."""
    return results_dir / "raw"


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str)


class RunLanding:
    """Lands the rows of one run under `<results_dir>/raw/<run_id>/`; never touches other runs."""

    def __init__(self, results_dir: Path, run_id: str) -> None:
        self.dir = raw_root(results_dir) / run_id
        self.dir.mkdir(parents=True, exist_ok=False)  # a run id is never reused
        self._buffers: dict[str, list[str]] = {t: [] for t in STREAM_TABLES}
        self._fds = {
            t: os.open(self.dir / f"{t}.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for t in STREAM_TABLES
        }
        self._lock = threading.Lock()
        self._manifest: RunManifest | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows_written = dict.fromkeys(STREAM_TABLES, 0)

    # -- rows ---------------------------------------------------------------------------
    def append(self, table: str, row: Any) -> None:
        """Queue one row (a schema dataclass or a plain dict) for the next flush."""
        data = row if isinstance(row, dict) else row.__dict__
        line = _dumps(data) + "\n"
        with self._lock:
            self._buffers[table].append(line)

    def flush(self) -> None:
        """Write queued rows as whole lines (one write call per table, so no torn rows)."""
        with self._lock:
            pending = {t: b for t, b in self._buffers.items() if b}
            for t in pending:
                self._buffers[t] = []
        for table, lines in pending.items():
            data = "".join(lines).encode()
            view = memoryview(data)
            while view:
                written = os.write(self._fds[table], view)
                view = view[written:]
            self.rows_written[table] += len(lines)

    # -- manifest -------------------------------------------------------------------------
    def write_manifest(self, manifest: RunManifest) -> None:
        """Atomically replace this run's manifest (write to a temp file, then rename)."""
        self._manifest = manifest
        tmp = self.dir / f".{MANIFEST_FILE}.tmp"
        tmp.write_text(_dumps(asdict(manifest)) + "\n")
        os.replace(tmp, self.dir / MANIFEST_FILE)

    # -- background flushing ------------------------------------------------------------
    def start(self, heartbeat: Any = None) -> None:
        """Flush every FLUSH_INTERVAL_S; call `heartbeat()` every HEARTBEAT_INTERVAL_S."""

        def loop() -> None:
            since_beat = 0.0
            while not self._stop.wait(FLUSH_INTERVAL_S):
                self.flush()
                since_beat += FLUSH_INTERVAL_S
                if heartbeat is not None and since_beat >= HEARTBEAT_INTERVAL_S:
                    since_beat = 0.0
                    heartbeat()

        self._thread = threading.Thread(target=loop, name="tokenbench-landing", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the flusher, write what is left and close the files."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}


def compact_run(run_dir: Path) -> None:
    """Rewrite a finished run's JSONL files as Parquet (same columns), then drop the JSONL.

    The Parquet file is complete before the JSONL goes, so a crash in between leaves both, and
    the warehouse views read the Parquet in preference (see collector.warehouse).
    """
    con = duckdb.connect()
    try:
        for table in STREAM_TABLES:
            src = run_dir / f"{table}.jsonl"
            if not src.exists():
                continue
            dst = run_dir / f"{table}.parquet"
            tmp = run_dir / f".{table}.parquet.tmp"
            con.execute(
                f"copy ({read_json_sql(table, [src])}) to '{_sql_path(tmp)}' (format parquet, compression zstd)"
            )
            os.replace(tmp, dst)
            src.unlink()
    finally:
        con.close()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def sql_file_list(files: list[Path]) -> str:
    """A DuckDB list literal of file paths, quotes escaped."""
    return "[" + ", ".join(f"'{_sql_path(f)}'" for f in files) + "]"


def _struct(table: str) -> str:
    cols = ", ".join(f"'{name}': '{sql_type}'" for name, sql_type in columns(RAW_TABLES[table]).items())
    return "{" + cols + "}"


def read_json_sql(table: str, files: list[Path]) -> str:
    """SELECT over landed JSONL files of a raw table, typed by the schema; torn lines are skipped."""
    return (
        f"select * from read_json({sql_file_list(files)}, format='newline_delimited', columns={_struct(table)}, "
        "ignore_errors=true) where run_id is not null"  # a torn line parses as all nulls
    )
