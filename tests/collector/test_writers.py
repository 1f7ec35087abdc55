"""Writers coordinate: two runs into one results folder, a build during a run, a reader holding the file open.

One writer at a time by a lock file; every write goes into a private copy swapped in atomically, so a reader
never waits for a build and never blocks one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import duckdb
import pytest

from collector.errors import UserError
from collector.warehouse import writer_lock, writing
from tests.collector.faults import CollectorProcess
from tests.conftest import config_dict, fetch, sim_experiment, write_config

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, name: str, requests: int = 6) -> Path:
    exp = sim_experiment(name=name, concurrency_levels=[1, 2], requests_per_level=requests)
    return write_config(tmp_path / f"{name}.yml", config_dict([exp], run_name=name))


def test_two_runs_into_one_results_folder_both_land_build_and_report(tmp_path: Path) -> None:
    results = tmp_path / "results"
    runs = [
        CollectorProcess("run", "--config", str(_config(tmp_path, name)), "--results-dir", str(results))
        for name in ("first", "second")
    ]
    codes = [run.wait(600) for run in runs]
    assert codes == [0, 0], [run.stderr[-2000:] for run in runs]
    for run in runs:
        assert "Traceback" not in run.stderr
        assert any(line.startswith("report: ") for line in run.out)
    rows = fetch(
        results / "tokenbench.duckdb",
        "select run_name, status, request_count from marts.dim_runs order by run_name",
    )
    # each run: 2 levels x (6 measured + 1 warm-up) requests
    assert rows == [("first", "completed", 14), ("second", "completed", 14)]


def test_a_reader_holding_the_file_open_blocks_nothing_and_never_sees_busy(tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = CollectorProcess("run", "--config", str(_config(tmp_path, "held")), "--results-dir", str(results))
    assert first.wait(600) == 0, first.stderr[-2000:]
    warehouse = results / "tokenbench.duckdb"
    held = duckdb.connect(str(warehouse), read_only=True)  # an analyst's shell, open throughout
    reads, failures = 0, []
    done = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                assert fetch(warehouse, "select count(*) from marts.fct_requests")[0][0] >= 14
                reads += 1
            except Exception as exc:  # any "busy" or lock error counts against the guarantee
                failures.append(repr(exc))
            time.sleep(0.05)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        second = CollectorProcess(
            "run", "--config", str(_config(tmp_path, "held")), "--results-dir", str(results), "--no-build"
        )
        assert second.wait(600) == 0, second.stderr[-2000:]
        build = CollectorProcess("build", "--results-dir", str(results))
        assert build.wait(600) == 0, build.stderr[-2000:]
    finally:
        done.set()
        thread.join()
    assert held.execute("select count(*) from marts.fct_requests").fetchone()[0] == 14  # its snapshot
    held.close()
    assert failures == [] and reads > 20
    assert fetch(warehouse, "select count(*) from marts.fct_requests")[0][0] == 28


def test_a_second_writer_waits_with_one_message_then_fails_with_one_line(tmp_path: Path) -> None:
    warehouse = tmp_path / "tokenbench.duckdb"
    (tmp_path / "raw").mkdir()
    with writing(warehouse):
        build = CollectorProcess("build", "--results-dir", str(tmp_path), env={"TOKENBENCH_WRITER_WAIT_S": "2"})
        code = build.wait(60)
    waiting = [line for line in build.err if line.startswith("waiting for ")]
    assert code != 0 and len(waiting) == 1 and len(build.error_lines()) == 1, build.stderr
    assert f"pid {os.getpid()}" in waiting[0]
    assert "is still writing the warehouse after 2 s" in build.error_lines()[0]
    assert "Traceback" not in build.stderr


def test_the_writer_lock_is_one_writer_per_warehouse_within_a_process_too(tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    with writer_lock(warehouse), pytest.raises(UserError, match="still writing"), writer_lock(warehouse, wait_s=0.3):
        pass
