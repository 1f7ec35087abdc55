"""Crash safety: kill -9 keeps all but the last moments of rows; Ctrl-C finishes in-flight requests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import duckdb
import psutil

from collector.landing import run_dirs
from collector.warehouse import refresh
from tests.conftest import config_dict, sim_experiment, start_cli, write_config


def _start(tmp_path: Path, speedup: float) -> tuple[subprocess.Popen[str], Path]:
    exp = sim_experiment(
        endpoint={"type": "simulated", "speedup": speedup, "mean_output_tokens": 20},
        concurrency_levels=[4],
        requests_per_level=5000,
    )
    cfg = write_config(tmp_path / "long.yml", config_dict([exp]))
    results = tmp_path / "results"
    proc = start_cli("run", "--config", str(cfg), "--results-dir", str(results), "--no-build")
    return proc, results


def _landed_lines(results: Path) -> int:
    files = list((results / "raw").glob("*/requests.jsonl"))
    return sum(1 for f in files for line in f.read_text().splitlines() if line) if files else 0


def _wait_for_rows(results: Path, n: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while _landed_lines(results) < n:
        assert time.monotonic() < deadline, "no rows landed in time"
        time.sleep(0.1)


def test_kill_9_loses_at_most_the_last_two_seconds(tmp_path: Path) -> None:
    proc, results = _start(tmp_path, speedup=20)
    try:
        _wait_for_rows(results, 30)
        time.sleep(2.5)
        simulators = psutil.Process(proc.pid).children(recursive=True)
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    # the simulator the run started goes with it rather than lingering on its port
    _gone, alive = psutil.wait_procs(simulators, timeout=10)
    assert simulators and not alive
    refresh(results)  # what a later run or `collector build` does first
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    count, last_end, statuses = con.execute(
        "select count(*), max(epoch(started_at) + e2e_ns / 1e9), list(distinct status) from raw.requests"
    ).fetchone()
    run_status, run_error = con.execute("select status, error_message from raw.runs").fetchone()
    con.close()
    assert count >= 30 and statuses == ["success"]
    # requests finish many times a second here, so the newest landed one shows how much was lost
    assert killed_at - last_end < 2.0
    # the next refresh sees the collector's process is gone: lost at once, not after a minute of heartbeat age,
    # and the run's rows are compacted by that refresh
    assert run_status == "lost" and f"collector process {proc.pid}" in run_error
    run_dir = run_dirs(results)[0]
    assert (run_dir / "requests.parquet").exists() and not (run_dir / "requests.jsonl").exists()


def test_ctrl_c_finishes_in_flight_requests_and_marks_the_run_interrupted(tmp_path: Path) -> None:
    proc, results = _start(tmp_path, speedup=4)
    try:
        _wait_for_rows(results, 8)
        # mid-sweep, the warehouse is free to read and its raw views already show the landed rows
        con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
        live = con.execute("select count(*) from raw.requests").fetchone()[0]
        live_status = con.execute("select status from raw.runs").fetchone()[0]
        con.close()
        assert live >= 8 and live_status == "running"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted: finishing the requests in flight" in err
    run_dir = run_dirs(results)[0]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["ended_at"]
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    rows = con.execute("select status, count(*) from raw.requests group by all").fetchall()
    con.close()
    assert rows and rows[0][0] == "success" and len(rows) == 1  # in-flight requests completed, none cut
    assert datetime.fromisoformat(manifest["ended_at"]) >= datetime.fromisoformat(manifest["started_at"])
    assert (run_dir / "requests.parquet").exists() and not (run_dir / "requests.jsonl").exists()


def test_a_later_run_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    from collector.runner import collect

    cfg = write_config(tmp_path / "c.yml", config_dict([sim_experiment(concurrency_levels=[2], requests_per_level=3)]))
    first = collect(cfg, tmp_path / "results")
    second = collect(cfg, tmp_path / "results")
    assert first.run_id != second.run_id
    con = duckdb.connect(str(tmp_path / "results" / "tokenbench.duckdb"), read_only=True)
    per_run = con.execute("select run_id, count(*) from raw.requests group by all order by 1").fetchall()
    runs = con.execute("select run_id, status from raw.runs order by 1").fetchall()
    con.close()
    assert per_run == [(first.run_id, 4), (second.run_id, 4)]
    assert runs == [(first.run_id, "completed"), (second.run_id, "completed")]
    os.sync()


def test_sigterm_mid_sweep_finishes_in_flight_requests_like_ctrl_c(tmp_path: Path) -> None:
    proc, results = _start(tmp_path, speedup=4)
    try:
        _wait_for_rows(results, 8)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    manifest = json.loads((run_dirs(results)[0] / "run.json").read_text())
    assert manifest["status"] == "interrupted"


def test_sigterm_while_waiting_for_the_endpoint_ends_the_run_interrupted_at_once(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exp = sim_experiment(
        endpoint={"type": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "served_model_name": "m",
                  "startup_timeout_s": 120},
    )  # fmt: skip
    cfg = write_config(tmp_path / "down.yml", config_dict([exp]))
    results = tmp_path / "results"
    proc = start_cli("run", "--config", str(cfg), "--results-dir", str(results))
    try:
        deadline = time.monotonic() + 60
        while not run_dirs(results) or not (run_dirs(results)[0] / "run.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # into the health wait
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert took < 10  # not the 120 s health timeout
    manifest = json.loads((run_dirs(results)[0] / "run.json").read_text())
    assert manifest["status"] == "interrupted"
