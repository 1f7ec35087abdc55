"""Append-only, crash-safe landing of raw rows, one folder (or S3 prefix) per run: the landing interface, and its
local implementation (collector/landing_s3.py is the S3 one).

Rows are buffered in memory and written as whole lines every FLUSH_INTERVAL_S by a background
thread, so `kill -9` loses at most that much; a failed write is retried, and if the disk stays
full the landing reports it (the sweep then stops) instead of dropping rows. The manifest is
rewritten atomically by a heartbeat thread of its own. At the end of a run the JSONL files are
compacted to Parquet, resumably. Nothing here opens the warehouse.

`RawStore` is where runs land (`raw_store()` picks a local folder or an S3 prefix from the results location) and
`Landing` what one run lands through; the runner and the warehouse use only these two.

A sharded run (collector/shards.py, collector/host_shards.py) has several writers in one run folder, and no two
write the same file: each client process lands its own part, `requests.w<k>.jsonl`, and a host shard i of n
prefixes its parts and its manifest with `s<i>` (`requests.s2.jsonl`, `requests.s2.w1.jsonl`, `run.s2.json`;
shard 1's manifest is the run's `run.json`). A collector compacts its own group of parts (its main file and its
processes') into one Parquet file, `requests.parquet` or `requests.s<i>.parquet`, once all of them are closed.
Sharded runs land only in a local (or shared) folder, not on S3 (the runner refuses them there).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psutil

from collector.errors import UserError
from collector.schema import RAW_TABLES, RunManifest, columns

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
HEARTBEAT_INTERVAL_S = 5.0
# Waits between attempts of a failed write: about 15 s for a full disk to get space back before the sweep stops.
WRITE_RETRY_WAITS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
CLOSE_RETRY_WAITS_S = (0.5, 1.0, 2.0)  # a stopping run tries a few more times, briefly
RESERVE_BYTES = 256 * 1024
STREAM_TABLES = ("requests", "telemetry_samples")
MANIFEST_FILE = "run.json"
# Zero-row files of every raw table, so the warehouse's glob views always match at least one file.
SCHEMA_DIR = "_schema"
MIN_FREE_ENV = "TOKENBENCH_MIN_FREE_MB"
MIN_FREE_MB = 64
BYTES_PER_ROW_ESTIMATE = 2048  # a request row is ~1 KiB of JSON, and its Parquet copy exists for a moment too
# A landing part's file: <table>[.s<i>][.w<k>].jsonl; its group (<table>[.s<i>]) compacts to one Parquet file.
# A writer's part of a table's file name (part_name): requests, requests.w1, requests.s2, requests.s2.w1.
PART_PATTERN = r"(?P<table>[a-z_]+?)(?:\.(?P<shard>s[0-9]+))?(?:\.(?P<process>w[0-9]+))?"
PART_RE = re.compile(rf"^{PART_PATTERN}\.jsonl$")


class LandingError(UserError):
    """Raw rows could not be written (a full or read-only disk)."""


def raw_root(results_dir: Path) -> Path:
    """Folder holding one sub-folder of landed files per run."""
    return results_dir / "raw"


def run_dirs(results_dir: Path) -> list[Path]:
    """The run folders under raw/, oldest first (run ids start with their UTC start time)."""
    root = raw_root(results_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def _dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False, default=str)


def check_free_space(results_dir: Path, expected_rows: int) -> None:
    """Fail before a run starts when its folder's disk cannot hold what the run is expected to land."""
    override = os.environ.get(MIN_FREE_ENV)
    need_mb = float(override) if override else max(MIN_FREE_MB, expected_rows * BYTES_PER_ROW_ESTIMATE / 2**20)
    free_mb = shutil.disk_usage(results_dir).free / 2**20
    if free_mb < need_mb:
        raise LandingError(
            f"{results_dir}: {free_mb:.0f} MiB free, the run needs about {need_mb:.0f} MiB "
            f"(free some space, or set ${MIN_FREE_ENV} to the MiB to require)"
        )


def part_name(shard: str = "", process: str = "") -> str:
    """The part of a run's files one writer owns: '' (an unsharded collector), 'w1' (its client process 1),
    's2' (host shard 2), 's2.w1'."""
    return ".".join(p for p in (shard, process) if p)


def part_file(table: str, part: str, suffix: str = ".jsonl") -> str:
    return f"{table}.{part}{suffix}" if part else f"{table}{suffix}"


def shard_manifest_file(shard: str) -> str:
    """The manifest of host shard `shard` ('s2'): shard 1 and an unsharded run write the run's own run.json."""
    return MANIFEST_FILE if shard in ("", "s1") else f"run.{shard}.json"


class Landing(ABC):
    """What one run lands through, wherever it lands: rows queued by append() and written by a flusher thread
    every FLUSH_INTERVAL_S (retried, then `failed`), the manifest rewritten by a heartbeat thread of its own."""

    where: str  # the run's folder or prefix, as shown to the user

    def __init__(self) -> None:
        self._buffers: dict[str, list[str]] = {t: [] for t in STREAM_TABLES}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.rows_written = dict.fromkeys(STREAM_TABLES, 0)
        self._failure: OSError | None = None  # set once rows could not be written even after retries
        self.failed = threading.Event()

    # -- what each store does its own way ---------------------------------------------------
    @abstractmethod
    def flush(self) -> None:
        """Write queued rows, whole rows only; raise OSError on failure, keeping what was not written queued."""

    @abstractmethod
    def rows_pending(self, table: str = "requests") -> int:
        """Rows queued or part-written but not yet whole in the store."""

    @abstractmethod
    def write_manifest(self, manifest: RunManifest, *, final: bool = False) -> None:
        """Replace this run's manifest whole (a reader never sees half of one)."""

    @abstractmethod
    def stream_location(self, table: str) -> str:
        """Where a table's rows land, for messages."""

    @abstractmethod
    def compact(self) -> None:
        """Rewrite the finished run's streamed rows as Parquet (resumable; the next refresh redoes a killed one)."""

    def _close_files(self) -> None:  # noqa: B027 - a hook: only a local folder holds files open
        """Release what the store held open for the run (after the last flush)."""

    def release_reserve(self) -> None:  # noqa: B027 - a hook: only a local disk holds space back
        """Drop space held back for the final manifest once it is written (a local disk's)."""

    # -- rows ---------------------------------------------------------------------------
    def append(self, table: str, row: Any) -> None:
        """Queue one row (a schema dataclass or a plain dict) for the next flush."""
        data = row if isinstance(row, dict) else row.__dict__
        line = _dumps(data) + "\n"
        with self._lock:
            self._buffers[table].append(line)

    def append_line(self, table: str, line: str) -> None:
        """Queue one row already serialised as a JSON line (ending in a newline)."""
        with self._lock:
            self._buffers[table].append(line)

    def flush_with_retry(self, waits: tuple[float, ...] = WRITE_RETRY_WAITS_S, *, interruptible: bool = True) -> bool:
        """Flush, retrying a failed write after each wait; on the last failure record `error` and set `failed`.

        An interruptible retry gives up quietly when the landing is closing: close() then retries on its own.
        """
        if self.failed.is_set():
            return False
        for attempt, wait in enumerate((*waits, None), start=1):
            try:
                self.flush()
                return True
            except OSError as exc:
                if wait is None:
                    self._fail(exc)
                    return False
                log.warning("writing raw rows failed (%s); retry %d in %.1f s", exc, attempt, wait)
                if not interruptible:
                    time.sleep(wait)
                elif self._stop.wait(wait):
                    return False
        return False  # pragma: no cover - the loop always returns

    def _fail(self, exc: OSError) -> None:
        self._failure = exc
        self.failed.set()

    @property
    def error(self) -> str | None:
        """One line once rows could not be written even after retries: how many landed, where, and how many not
        (final after close(): rows of requests still in flight when the sweep stopped are counted too)."""
        if self._failure is None:
            return None
        return (
            f"cannot write raw rows to {self.stream_location('requests')}: "
            f"{self._failure.strerror or self._failure}; "
            f"{self.rows_written['requests']} request rows landed there, {self.rows_pending('requests')} could not "
            "be written"
        )

    # -- background threads ---------------------------------------------------------------
    def start(self, heartbeat: Callable[[], None] | None = None) -> None:
        """Flush every FLUSH_INTERVAL_S; call `heartbeat()` every HEARTBEAT_INTERVAL_S from a thread of its own,
        so a stuck or failed writer never stops the heartbeat, nor a failed heartbeat the writer."""

        def flusher() -> None:
            while not self._stop.wait(FLUSH_INTERVAL_S):
                if not self.flush_with_retry():
                    return

        def beater() -> None:
            assert heartbeat is not None
            while not self._stop.wait(HEARTBEAT_INTERVAL_S):
                try:
                    heartbeat()
                except OSError as exc:  # a full disk: the rows matter more; the next beat tries again
                    log.warning("heartbeat not written: %s", exc)

        self._threads = [threading.Thread(target=flusher, name="tokenbench-landing", daemon=True)]
        if heartbeat is not None:
            self._threads.append(threading.Thread(target=beater, name="tokenbench-heartbeat", daemon=True))
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop the threads, write what is left (with retries) and close the files."""
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.flush_with_retry(CLOSE_RETRY_WAITS_S, interruptible=False)
        self._close_files()


class RunLanding(Landing):
    """Lands the rows of one run under `<results_dir>/raw/<run_id>/`; never touches other runs.

    `part` names this writer's files in a sharded run (part_name); `join` joins a run folder that another
    writer of the same run may have made (a client process, a host shard); only the run's first writer makes
    it otherwise, since a run id is never reused. `manifest` is the manifest file this writer owns, if any.
    """

    def __init__(
        self,
        results_dir: Path,
        run_id: str,
        part: str = "",
        *,
        join: bool = False,
        manifest: str | None = MANIFEST_FILE,
    ) -> None:
        super().__init__()
        self.dir = raw_root(results_dir) / run_id
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.dir.mkdir(exist_ok=join)  # a run id is never reused, but a run's writers share its folder
        except FileExistsError:
            raise LandingError(f"{self.dir}: a run with id {run_id} already exists; run ids are never reused") from None
        self.where = str(self.dir)
        self.part = part
        self.manifest_file = manifest
        # Bytes of a write that failed part-way: written first next time, so a torn line is completed.
        self._carry: dict[str, bytes] = dict.fromkeys(STREAM_TABLES, b"")
        self._fds = {
            t: os.open(self.dir / part_file(t, part), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            for t in STREAM_TABLES
        }
        # Space held back so that the final manifest (status failed, and why) can be written on a full disk.
        self._reserve = self.dir / reserve_file(part)
        if manifest is not None:
            self._reserve.write_bytes(b"\0" * RESERVE_BYTES)

    def rows_pending(self, table: str = "requests") -> int:
        with self._lock:
            return len(self._buffers[table]) + self._carry[table].count(b"\n")

    def stream_location(self, table: str) -> str:
        return str(self.dir / part_file(table, self.part))

    def flush(self) -> None:
        """Write queued rows as whole lines (one write call per table, so no torn rows); raise OSError on failure.

        Whatever could not be written stays queued, in order, for the next attempt.
        """
        with self._write_lock:
            for table in STREAM_TABLES:
                with self._lock:
                    lines, self._buffers[table] = self._buffers[table], []
                    data = self._carry[table] + "".join(lines).encode()
                    self._carry[table] = b""
                if not data:
                    continue
                view = memoryview(data)
                try:
                    while view:
                        written = os.write(self._fds[table], view)
                        done = len(data) - len(view)
                        self.rows_written[table] += data.count(b"\n", done, done + written)
                        view = view[written:]
                finally:
                    if view:
                        with self._lock:
                            self._carry[table] = bytes(view) + self._carry[table]

    def write_manifest(self, manifest: RunManifest, *, final: bool = False) -> None:
        """Atomically replace this run's manifest. The final one (after close) may use the reserved space if the
        disk is full, so a run that failed on a full disk still says so."""
        assert self.manifest_file is not None, "this writer owns no manifest"
        try:
            write_manifest(self.dir, manifest, self.manifest_file)
        except OSError as exc:
            if not final or exc.errno != errno.ENOSPC or not self._reserve.exists():
                raise
            self._reserve.unlink()
            write_manifest(self.dir, manifest, self.manifest_file)

    def compact(self) -> None:
        compact_run(self.dir, [self.part])  # its own group of parts: other host shards may still write theirs

    def _close_files(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds = {}

    def release_reserve(self) -> None:
        self._reserve.unlink(missing_ok=True)


def reserve_file(part: str) -> str:
    return f".reserve.{part}" if part else ".reserve"


def write_manifest(run_dir: Path, manifest: RunManifest, name: str = MANIFEST_FILE) -> None:
    """Atomically replace a run's manifest (or a host shard's: `name`) (write to a temp file, then rename)."""
    tmp = run_dir / f".{name}.{socket.gethostname()}.{os.getpid()}.tmp"
    try:
        tmp.write_text(_dumps(asdict(manifest)) + "\n")
        os.replace(tmp, run_dir / name)
    finally:
        tmp.unlink(missing_ok=True)


def json_object(text: str | bytes) -> dict[str, Any] | None:
    """A JSON object (a manifest, a claim) as a dict, or None when the text is not one (torn, empty, a list)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_manifest(run_dir: Path, name: str = MANIFEST_FILE) -> dict[str, Any] | None:
    """A run's manifest (or a host shard's: `name`) as a dict, or None when it is missing or unreadable."""
    try:
        text = (run_dir / name).read_text()
    except (OSError, ValueError):  # missing, or not UTF-8
        return None
    return json_object(text)


# -- who is running -------------------------------------------------------------------------


def process_identity() -> tuple[str, int, str]:
    """(hostname, pid, process start time) of this process: with all three a reused pid is told apart."""
    started = datetime.fromtimestamp(psutil.Process().create_time(), UTC).isoformat()
    return socket.gethostname(), os.getpid(), started


def collector_alive(manifest: dict[str, Any]) -> bool | None:
    """Whether the collector of a `running` manifest still runs: None when it cannot be told from here."""
    pid, started = manifest.get("pid"), manifest.get("process_started_at")
    if manifest.get("hostname") != socket.gethostname() or not isinstance(pid, int) or not started:
        return None  # another host (a shared folder), or a manifest from before pids were recorded
    try:
        proc_started = datetime.fromtimestamp(psutil.Process(pid).create_time(), UTC)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:
        return None
    try:
        recorded = datetime.fromisoformat(str(started))
    except ValueError:
        return None
    return abs((proc_started - recorded).total_seconds()) < 1.0  # another process reusing the pid: gone


def collector_gone(manifest: dict[str, Any], stale_after_s: float | None = None) -> bool:
    """Whether the collector of a `running` manifest is gone: its process, when it ran on this host; elsewhere, a
    heartbeat older than `stale_after_s` (None: never judged from here)."""
    alive = collector_alive(manifest)
    if alive is not None:
        return not alive
    if stale_after_s is None:
        return False
    try:
        beat = datetime.fromisoformat(str(manifest.get("heartbeat_at")))
    except ValueError:
        return False
    if beat.tzinfo is None:
        beat = beat.replace(tzinfo=UTC)
    return (datetime.now(UTC) - beat).total_seconds() > stale_after_s


def lost_manifest(manifest: dict[str, Any]) -> RunManifest:
    """The manifest of a run whose collector ended without finishing it: status lost, ended at its last beat."""
    pid, host = manifest.get("pid"), manifest.get("hostname")
    fields = set(columns(RunManifest))
    data = {k: v for k, v in manifest.items() if k in fields}
    data.update(
        status="lost",
        ended_at=manifest.get("heartbeat_at"),
        error_message=f"collector process {pid} on {host} ended without finishing the run (killed?)",
    )
    return RunManifest(**data)


def reconcile_runs(results_dir: Path) -> list[str]:
    """Mark runs whose collector is gone as `lost`, and finish compacting runs that are over; returns lost ids.

    Safe to call at any moment and from several processes in turn (the caller holds the writer lock): a live run
    is never touched, and compaction resumes wherever a kill left it. In a sharded run each host shard's
    manifest is judged, and each shard's parts compacted, on their own.
    """
    lost = []
    for run_dir in run_dirs(results_dir):
        over = []
        for name in [MANIFEST_FILE, *sorted(p.name for p in run_dir.glob("run.s*.json"))]:
            manifest = read_manifest(run_dir, name)
            if manifest is None:
                continue
            if manifest.get("status") == "running":
                if not collector_gone(manifest):
                    continue
                write_manifest(run_dir, lost_manifest(manifest), name)
                if name == MANIFEST_FILE:
                    lost.append(run_dir.name)
            over.append(name)
        groups = [g for g in part_groups(run_dir) if shard_manifest_file(g) in over]
        if groups:
            compact_run(run_dir, groups)
    return lost


# -- compaction and reading -----------------------------------------------------------------


def part_groups(run_dir: Path) -> set[str]:
    """The groups of landing parts a run folder holds as JSONL: '' (an unsharded collector's), 's2' (host shard 2's)."""
    groups = set()
    for path in run_dir.glob("*.jsonl"):
        match = PART_RE.match(path.name)
        if match and match["table"] in STREAM_TABLES:
            groups.add(match["shard"] or "")
    return groups


def group_parts(run_dir: Path, table: str, group: str) -> list[Path]:
    """A group's JSONL parts of one table: its collector's own file and its client processes' files."""
    parts = []
    for path in run_dir.glob(f"{table}*.jsonl"):
        match = PART_RE.match(path.name)
        if match and match["table"] == table and (match["shard"] or "") == group:
            parts.append(path)
    return sorted(parts)


def compact_run(run_dir: Path, groups: list[str] | None = None) -> None:
    """Rewrite a finished run's JSONL files as Parquet (same columns), then drop the JSONL: each group of parts
    (`groups`, else all) as one file, `requests.parquet` or `requests.s<i>.parquet` (a host shard's).

    Resumable and idempotent: the Parquet is renamed into place only when complete, so when both exist the
    Parquet is whole and the JSONL is only removed; a temp file left by a kill is removed and redone. Only a group
    whose writers are all closed may be compacted: a part still appended to would lose its later rows.
    """
    for group in part_groups(run_dir) if groups is None else groups:
        # One compaction of a group at a time: its own collector and another's refresh may both try.
        fd = os.open(run_dir / f".compact{'.' + group if group else ''}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _compact_group(run_dir, group)
        finally:
            os.close(fd)


def _compact_group(run_dir: Path, group: str) -> None:
    # space held for the final manifest: that collector is done
    (run_dir / reserve_file(group)).unlink(missing_ok=True)
    for table in STREAM_TABLES:
        stem = part_file(table, group, "")
        for stale in run_dir.glob(f".{stem}.parquet.*tmp"):
            stale.unlink(missing_ok=True)
        sources, dst = group_parts(run_dir, table, group), run_dir / f"{stem}.parquet"
        if not sources:
            continue
        if not dst.exists():
            tmp = run_dir / f".{stem}.parquet.{os.getpid()}.tmp"
            con = duckdb.connect()
            try:
                select_json(con, table, [str(p) for p in sources]).write_parquet(str(tmp), compression="zstd")
                os.replace(tmp, dst)
            finally:
                con.close()
                tmp.unlink(missing_ok=True)
        for src in sources:
            src.unlink()


def struct_of(table: str) -> dict[str, str]:
    """Column name -> DuckDB type of a raw table, as read_json's `columns` wants it."""
    return columns(RAW_TABLES[table])


def select_json(con: duckdb.DuckDBPyConnection, table: str, path: str | list[str]) -> duckdb.DuckDBPyRelation:
    """A relation over landed JSONL of a raw table (path or paths bound, not pasted), typed by the schema, torn
    lines skipped."""
    return con.sql(
        "select * from read_json($path, format = 'newline_delimited', columns = $columns, ignore_errors = true) "
        "where run_id is not null",  # a torn line parses as all nulls
        params={"path": path, "columns": struct_of(table)},
    )


def write_schema_files(results_dir: Path) -> Path:
    """(Re)write the zero-row files of every raw table under raw/_schema/ (JSONL, Parquet, manifest).

    The manifest's own zero-row Parquet (runs.parquet) is read by no glob: it gives an engine that reads run.json
    with a declared schema (Spark, models_dbt/macros/spark_sources.sql) the manifest's column types.
    """
    schema_dir = raw_root(results_dir) / SCHEMA_DIR
    schema_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        for table in RAW_TABLES:
            if table == "runs":
                (schema_dir / MANIFEST_FILE).touch()
            else:
                (schema_dir / f"{table}.jsonl").touch()
            cols = ", ".join(f"null::{t} as {n}" for n, t in struct_of(table).items())
            tmp = schema_dir / f".{table}.parquet.{os.getpid()}.tmp"
            con.sql(f"select {cols} where false").write_parquet(str(tmp))
            os.replace(tmp, schema_dir / f"{table}.parquet")
    finally:
        con.close()
    return schema_dir


# -- where runs land ------------------------------------------------------------------------


class RawStore(ABC):
    """Where the runs of a results location land: a local folder or an S3 prefix (`raw_store()` picks).

    The runner lands through `preflight` and `open_run`; the warehouse reads through `glob` and `attach`, and
    keeps the runs straight (lost ones marked, finished ones compacted) through `reconcile`.
    """

    location: str  # the raw/ folder or prefix, as shown to the user
    spec: str  # what raw_store() is given to open this store again (in a client process)

    @abstractmethod
    def preflight(self, expected_rows: int) -> None:
        """Fail with one line (LandingError) before a run starts when it could not land here."""

    @abstractmethod
    def open_run(
        self, run_id: str, part: str = "", *, join: bool = False, manifest: str | None = MANIFEST_FILE
    ) -> Landing:
        """Claim `run_id` here (LandingError if another run has it) and return the run's landing. A sharded run's
        writers give their `part` (part_name) and `manifest` (the one it owns, or None), and `join` the run
        another writer claimed (a host shard claims its shard on the run's board instead)."""

    @abstractmethod
    def run_location(self, run_id: str) -> str:
        """Where a run's files are, as shown to the user."""

    @abstractmethod
    def has_runs(self) -> bool:
        """Whether anything has landed here yet."""

    @abstractmethod
    def reconcile(self) -> list[str]:
        """Mark runs whose collector is gone as `lost` and finish compacting runs that are over; the lost ids."""

    @abstractmethod
    def write_schema_files(self) -> None:
        """Make sure the zero-row files of every raw table exist, so every raw glob matches at least one file."""

    @abstractmethod
    def glob(self, file_name: str) -> str:
        """A glob (for DuckDB) over `file_name` in every run's folder (and the schema folder)."""

    @abstractmethod
    def jsonl_name(self, table: str) -> str:
        """The file name (a pattern) of a table's streamed rows inside a run's folder (every part of them)."""

    def attach(self, con: duckdb.DuckDBPyConnection) -> None:  # noqa: B027 - a hook: local files need nothing
        """Make a DuckDB connection able to read this store (nothing to do for a local folder)."""


def _glob_escape(path: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in path)


class LocalStore(RawStore):
    """Runs under `<results_dir>/raw/<run_id>/` on this machine's disk."""

    def __init__(self, results_dir: Path) -> None:
        self.results_dir = Path(results_dir)
        self.location = str(raw_root(self.results_dir))
        self.spec = str(self.results_dir)

    def preflight(self, expected_rows: int) -> None:
        self.results_dir.mkdir(parents=True, exist_ok=True)
        check_free_space(self.results_dir, expected_rows)

    def open_run(
        self, run_id: str, part: str = "", *, join: bool = False, manifest: str | None = MANIFEST_FILE
    ) -> RunLanding:
        return RunLanding(self.results_dir, run_id, part, join=join, manifest=manifest)

    def run_location(self, run_id: str) -> str:
        return str(raw_root(self.results_dir) / run_id)

    def has_runs(self) -> bool:
        return raw_root(self.results_dir).is_dir()

    def reconcile(self) -> list[str]:
        return reconcile_runs(self.results_dir)

    def write_schema_files(self) -> None:
        write_schema_files(self.results_dir)

    def glob(self, file_name: str) -> str:
        return _glob_escape(str(raw_root(self.results_dir).resolve())) + "/*/" + file_name

    def jsonl_name(self, table: str) -> str:
        return f"{table}*.jsonl"  # every writer's part: requests.jsonl, requests.w1.jsonl, requests.s2.jsonl, ...


S3_SCHEME = "s3://"


def is_s3_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(S3_SCHEME)


def raw_store(location: str | Path | RawStore) -> RawStore:
    """The store of a results location: `s3://bucket/prefix` lands on S3 (the [aws] extra), anything else is a
    local folder."""
    if isinstance(location, RawStore):
        return location
    if is_s3_url(location):
        from collector.landing_s3 import S3Store  # boto3 loads only when raw rows go to S3

        return S3Store(str(location))
    return LocalStore(Path(location))
