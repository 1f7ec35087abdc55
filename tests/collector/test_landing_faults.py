"""A full disk, kills at awkward moments, and the states they leave: no row is lost silently, every state reads.

Each test counts what landed against what the server served, and checks what the CLI printed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from collector.landing import compact_run, run_dirs
from collector.warehouse import refresh
from tests.collector.faults import (
    CollectorProcess,
    counting_server,
    fill,
    landed_request_lines,
    openai_config,
    tmpfs,
)
from tests.dbt.builders import land_run, request_rows, run_a

pytestmark = pytest.mark.slow


def _raw_count(results: Path, sql: str = "select count(*) from raw.requests") -> int:
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _run_landing(cfg: Path, results: Path) -> tuple[CollectorProcess, Path]:
    """A `collector run --no-build` that has landed its first 50 rows (free-space check off)."""
    run = CollectorProcess(
        "run", "--config", str(cfg), "--results-dir", str(results), "--no-build", env={"TOKENBENCH_MIN_FREE_MB": "1"}
    )
    run.wait_for_stderr("landing raw rows in")
    run_dir = run_dirs(results)[0]
    deadline = time.monotonic() + 60
    while landed_request_lines(run_dir) < 50:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return run, run_dir


def test_a_disk_that_stays_full_stops_the_run_with_one_line_and_counts_every_row(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 24) as disk, counting_server() as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, concurrency=4, requests=100_000)
        results = disk / "results"
        run, run_dir = _run_landing(cfg, results)
        filler = fill(disk)
        started = time.monotonic()
        code = run.wait(120)
        stopped_after = time.monotonic() - started
        filler.unlink()
        manifest = json.loads((run_dir / "run.json").read_text())
        landed = landed_request_lines(run_dir)
    errors = run.error_lines()
    assert code == 1 and len(errors) == 1, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    line = errors[0]
    assert "No space left on device" in line and str(run_dir / "requests.jsonl") in line
    written, not_written = int(line.split("; ")[1].split()[0]), int(line.split(", ")[-1].split()[0])
    # every reply the server sent is either a whole landed row or counted as not written; none vanished
    assert written == landed and landed + not_written == server.served
    assert manifest["status"] == "failed" and manifest["error_message"] == line.removeprefix("error: ").strip()
    assert stopped_after < 60  # the retries (about 15 s) then a stop, not a sweep of 100,000 requests into nothing


def test_a_disk_that_frees_up_during_the_retries_loses_no_row(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", 24) as disk, counting_server(delay_s=0.01) as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, concurrency=4, requests=1500)
        results = disk / "results"
        run, run_dir = _run_landing(cfg, results)
        filler = fill(disk)
        run.wait_for_stderr("retry 2", timeout_s=30)
        filler.unlink()
        code = run.wait(120)
        count = _raw_count(results)
        status = json.loads((run_dir / "run.json").read_text())["status"]
    assert code == 0, run.stderr[-3000:]
    assert status == "completed" and count == server.served == 1500


def test_too_little_free_space_fails_before_a_run_folder_exists(tmp_path: Path) -> None:
    with counting_server() as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, requests=10)
        results = tmp_path / "results"
        run = CollectorProcess(
            "run", "--config", str(cfg), "--results-dir", str(results), env={"TOKENBENCH_MIN_FREE_MB": "100000000"}
        )
        code = run.wait(60)
    assert code == 2 and len(run.err) == 1 and run.error_lines(), run.stderr
    assert "MiB free, the run needs about" in run.err[0]
    assert run_dirs(results) == [] and server.served == 0


def _landed_run(results: Path) -> tuple[Path, int]:
    """A run folder as a collector leaves it before compaction (the dbt fixtures' run A); and its request count."""
    spec = run_a()
    return land_run(results, spec, compact=False), len(request_rows(spec))


def test_raw_views_read_a_run_compacted_after_the_last_refresh(tmp_path: Path) -> None:
    """kill -9 between compaction and the warehouse refresh used to leave raw.requests failing on a missing file."""
    results = tmp_path / "results"
    run_dir, n = _landed_run(results)
    refresh(results)
    assert _raw_count(results) == n
    compact_run(run_dir)  # and no refresh after it
    assert not (run_dir / "requests.jsonl").exists()
    assert _raw_count(results) == n


def test_a_run_killed_between_parquet_and_jsonl_removal_reads_once_and_finishes_compacting(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_dir, n = _landed_run(results)
    jsonl = (run_dir / "requests.jsonl").read_bytes()
    compact_run(run_dir)
    (run_dir / "requests.jsonl").write_bytes(jsonl)  # the state a kill after the rename, before the unlink, leaves
    (run_dir / ".requests.parquet.999.tmp").write_bytes(b"")  # and a kill during a copy: an empty temp file
    refresh(results)
    assert _raw_count(results) == n
    assert not (run_dir / "requests.jsonl").exists() and not list(run_dir.glob(".*tmp"))


def test_a_run_killed_during_compaction_is_compacted_by_the_next_refresh(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_dir, n = _landed_run(results)
    (run_dir / ".requests.parquet.999.tmp").write_bytes(b"PAR1 torn")
    refresh(results)
    assert (run_dir / "requests.parquet").exists() and not (run_dir / "requests.jsonl").exists()
    assert _raw_count(results) == n


def test_a_build_killed_mid_way_leaves_the_last_warehouse_readable_and_the_next_build_passes(
    tmp_path: Path,
) -> None:
    with counting_server() as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, concurrency=2, requests=20)
        results = tmp_path / "results"
        first = CollectorProcess("run", "--config", str(cfg), "--results-dir", str(results))
        assert first.wait(300) == 0, first.stderr[-2000:]
    before = _raw_count(results, "select count(*) from marts.fct_requests")
    build = CollectorProcess("build", "--results-dir", str(results))
    time.sleep(4)  # dbt is building into its private copy by now
    build.proc.send_signal(signal.SIGKILL)
    build.wait(30)
    assert _raw_count(results, "select count(*) from marts.fct_requests") == before == 20
    again = CollectorProcess("build", "--results-dir", str(results))
    assert again.wait(300) == 0, again.stderr[-2000:]
    assert not list(results.glob(".writing-*"))  # the killed build's copy is cleared by the next writer


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_run_and_build_on_a_full_or_read_only_disk_are_one_line_each(tmp_path: Path, fault: str) -> None:
    with tmpfs(tmp_path / "disk", 16) as disk, counting_server() as server:
        results = disk / "results"
        land_run(results, run_a())
        refresh(results)
        if fault == "full":
            fill(disk)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        cfg = openai_config(tmp_path / "c.yml", server.base_url, requests=10)
        build = CollectorProcess("build", "--results-dir", str(results), env={"TOKENBENCH_MIN_FREE_MB": "0"})
        run = CollectorProcess(
            "run", "--config", str(cfg), "--results-dir", str(results), env={"TOKENBENCH_MIN_FREE_MB": "0"}
        )
        codes = [build.wait(300), run.wait(300)]
        before = len(run_dirs(results))
    cause = "No space left on device" if fault == "full" else "Read-only file system"
    for proc, code in zip((build, run), codes, strict=True):
        assert code != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert [line for line in proc.err if line.strip()] == proc.error_lines(), proc.stderr
        assert len(proc.error_lines()) == 1 and cause in proc.error_lines()[0]
    assert before == 1 and server.served == 0  # no run folder, no request sent
