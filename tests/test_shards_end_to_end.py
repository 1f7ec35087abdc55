"""End to end, sharded load: the real CLI with two client processes against the simulator, two host shards (two
collectors on this host standing for two hosts) landing into one run, and a client process or a host shard killed
mid-level; each checked on the raw rows, the marts and the run manifest."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pytest

from tests.conftest import config_dict, fetch, run_cli, sim_experiment, start_cli, write_config
from tests.shards import shard_config, simulator, start_shard

__all__ = ["simulator"]  # a fixture

pytestmark = pytest.mark.slow

SIM = {"type": "simulated", "speedup": 10, "mean_output_tokens": 20}


def _most_in_flight(intervals: list[tuple[int, int]]) -> int:
    """The most requests in flight at once, from their [start, end) intervals."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return most


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("two-processes")
    exp = sim_experiment(endpoint=SIM, client_processes=2, concurrency_levels=[2, 4], requests_per_level=16)
    cfg = write_config(work / "p2.yml", config_dict([exp]))
    results = work / "results"
    proc = run_cli("run", "--config", str(cfg), "--results-dir", str(results), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = [p for p in (results / "raw").iterdir() if not p.name.startswith("_")]
    return {"results": results, "warehouse": results / "tokenbench.duckdb", "run_dir": run_dir, "stderr": proc.stderr}


def test_two_client_processes_land_every_request_once_and_both_send(two_process_run: dict[str, Any]) -> None:
    warehouse = two_process_run["warehouse"]
    ((count, ids),) = fetch(warehouse, "select count(*), count(distinct request_id) from raw.requests")
    assert (count, ids) == (34, 34)  # two levels of 16 measured and 1 warm-up request
    per_shard = fetch(
        warehouse,
        "select concurrency, shard_index, shard_count, count(*) filter (where not is_warmup), "
        "count(*) filter (where is_warmup), list(distinct worker_index order by worker_index) "
        "from raw.requests group by all order by all",
    )
    # Concurrency 2: one worker each; 4: two each (0-1 and 2-3), 8 requests each; the warm-up from the first.
    assert per_shard == [
        (2, 0, 2, 8, 1, [0]),
        (2, 1, 2, 8, 0, [1]),
        (4, 0, 2, 8, 1, [0, 1]),
        (4, 1, 2, 8, 0, [2, 3]),
    ]
    assert sorted(p.name for p in two_process_run["run_dir"].glob("requests*")) == ["requests.parquet"]
    # The live progress merged both processes' requests.
    assert "| sim | short | concurrency 4 | 17/17 requests, 0 errors" in two_process_run["stderr"]


def test_the_marts_give_one_level_per_bucket_and_concurrency(two_process_run: dict[str, Any]) -> None:
    levels = fetch(
        two_process_run["warehouse"],
        "select payload_file, concurrency, request_count, success_count from marts.fct_concurrency_metrics "
        "order by concurrency",
    )
    assert levels == [("short", 2, 16, 16), ("short", 4, 16, 16)]


def test_concurrency_4_split_2_plus_2_keeps_4_in_flight_at_the_server(two_process_run: dict[str, Any]) -> None:
    rows = fetch(
        two_process_run["warehouse"],
        "select shard_index, start_offset_ns, start_offset_ns + e2e_ns from raw.requests "
        "where concurrency = 4 and not is_warmup",
    )
    assert _most_in_flight([(s, e) for _, s, e in rows]) == 4  # both processes' requests overlap: one clock
    for shard in (0, 1):
        assert _most_in_flight([(s, e) for k, s, e in rows if k == shard]) == 2


def test_the_manifest_records_each_client_processs_clock_offset(two_process_run: dict[str, Any]) -> None:
    manifest = json.loads((two_process_run["run_dir"] / "run.json").read_text())
    assert manifest["schema_version"] == 10 and manifest["status"] == "completed"
    (shard,) = manifest["shards_json"]
    assert shard["shard"] == "1/1" and shard["pid"] == manifest["pid"]
    processes = shard["processes"]
    assert [p["shard_index"] for p in processes] == [0, 1]
    for p in processes:
        # One CLOCK_MONOTONIC for every process: the measured offset lies within its own bound.
        assert p["clock_shared"] is True
        assert abs(p["clock_offset_ns"]) <= p["clock_offset_bound_ns"] < 50_000_000
    # Each process sampled its own event loop.
    ((lag_rows,),) = fetch(
        two_process_run["warehouse"], "select count(*) from raw.telemetry_samples where source = 'client'"
    )
    assert lag_rows > 0


# -- two host shards ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_shard_run(tmp_path_factory: pytest.TempPathFactory, simulator: str) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("two-shards")
    cfg = shard_config(work / "shards.yml", simulator)
    results = work / "results"
    second = start_shard(cfg, results, "2/2", "sharded-run")
    first = start_shard(cfg, results, "1/2", "sharded-run")
    out = {k: p.communicate(timeout=300) for k, p in (("1", first), ("2", second))}
    assert first.returncode == 0, out["1"][1][-3000:]
    assert second.returncode == 0, out["2"][1][-3000:]
    build = run_cli("build", "--results-dir", str(results), timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    return {
        "warehouse": results / "tokenbench.duckdb",
        "run_dir": results / "raw" / "sharded-run",
        "stderr": {k: v[1] for k, v in out.items()},
    }


def test_two_host_shards_land_into_one_run_and_build_one_level(two_shard_run: dict[str, Any]) -> None:
    warehouse = two_shard_run["warehouse"]
    rows = fetch(
        warehouse,
        "select shard_index, shard_count, count(*), count(distinct request_id), "
        "bool_and(starts_with(request_id, 'sharded-run:' || (shard_index + 1) || '.')) "
        "from raw.requests group by all order by all",
    )
    assert rows == [(0, 2, 9, 9, True), (1, 2, 8, 8, True)]  # 2 workers each; the warm-up from shard 1
    assert fetch(warehouse, "select run_id, status from raw.runs") == [("sharded-run", "completed")]
    levels = fetch(
        warehouse, "select run_id, payload_file, concurrency, request_count from marts.fct_concurrency_metrics"
    )
    assert levels == [("sharded-run", "short", 4, 16)]
    assert sorted(p.name for p in two_shard_run["run_dir"].glob("requests*")) == [
        "requests.s1.parquet",
        "requests.s2.parquet",
    ]
    assert "shard 2/2 done; shard 1/2 builds the marts" in two_shard_run["stderr"]["2"]
    # Each shard's progress counts its own share: 2 of the 4 workers.
    assert "| concurrency 4 | 9/9 requests" in two_shard_run["stderr"]["1"]
    assert "| concurrency 4 | 8/8 requests" in two_shard_run["stderr"]["2"]


def test_host_shards_count_offsets_from_one_epoch_and_start_together(two_shard_run: dict[str, Any]) -> None:
    manifest = json.loads((two_shard_run["run_dir"] / "run.json").read_text())
    shards = manifest["shards_json"]
    assert [s["shard"] for s in shards] == ["1/2", "2/2"]
    assert [s["status"] for s in shards] == ["completed", "completed"]
    assert shards[0]["clock"]["epoch_wall_ns"] == shards[1]["clock"]["epoch_wall_ns"]
    # One host: both read the epoch through the same monotonic clock, microseconds apart at most.
    assert shards[0]["clock"]["offset_to_shard_1_ns"] == 0
    assert abs(shards[1]["clock"]["offset_to_shard_1_ns"]) < 1_000_000
    firsts = fetch(
        two_shard_run["warehouse"],
        "select min(start_offset_ns) from raw.requests where not is_warmup group by shard_index",
    )
    # The measured phase starts at one instant on both; a shard that saw the barrier late would start late.
    assert abs(firsts[0][0] - firsts[1][0]) < 200_000_000


# -- killed mid-level -----------------------------------------------------------------------------------------


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


def _wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _writer_of(parent: int, path: Path) -> int | None:
    """The descendant of `parent` that holds `path` open (the client process landing that file)."""
    for child in psutil.Process(parent).children(recursive=True):
        try:
            if any(f.path == str(path) for f in child.open_files()):
                return child.pid
        except psutil.Error:
            continue
    return None


def test_a_client_process_killed_mid_level_fails_the_run_in_one_line_and_keeps_its_rows(tmp_path: Path) -> None:
    exp = sim_experiment(endpoint=SIM, client_processes=2, concurrency_levels=[2], requests_per_level=3000)
    cfg = write_config(tmp_path / "kill.yml", config_dict([exp]))
    results = tmp_path / "results"
    proc = start_cli("run", "--config", str(cfg), "--results-dir", str(results), "--no-build")
    try:
        run_dir = _wait_for(lambda: next((p for p in (results / "raw").glob("2*")), None), 120, "the run folder")
        part = run_dir / "requests.w1.jsonl"
        _wait_for(lambda: _lines(part) >= 20, 120, "rows from client process 2")
        victim = _wait_for(lambda: _writer_of(proc.pid, part), 30, "the process writing requests.w1.jsonl")
        landed = _lines(part)
        os.kill(victim, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    line = (
        f"client process 2 of 2 (pid {victim}) died (killed by SIGKILL); the rows it had landed are kept in {run_dir}"
    )
    assert proc.returncode == 1
    assert stderr.strip().splitlines()[-1] == f"error: {line}"
    manifest = json.loads((run_dir / "run.json").read_text())
    assert (manifest["status"], manifest["error_message"]) == ("failed", line)
    by_shard = dict(
        duckdb.sql(
            f"select shard_index, count(*) from read_parquet('{run_dir}/requests.parquet') group by all"
        ).fetchall()
    )
    assert by_shard[1] >= landed  # every row it had landed before the kill is still there
    assert by_shard[0] > 0  # and the other process's, which stopped cleanly
    assert by_shard[0] + by_shard[1] < 3001  # the run stopped: not every request was sent


def test_a_host_shard_killed_mid_run_stops_the_other_with_one_line(tmp_path: Path, simulator: str) -> None:
    cfg = shard_config(tmp_path / "kill.yml", simulator, requests_per_level=400)
    results = tmp_path / "results"
    second = start_shard(cfg, results, "2/2", "killed-run")
    first = start_shard(cfg, results, "1/2", "killed-run")
    try:
        part = results / "raw" / "killed-run" / "requests.s2.jsonl"
        _wait_for(lambda: _lines(part) >= 10, 120, "rows from shard 2")
        second.kill()
        second.wait(30)
        landed = _lines(part)
        _, stderr = first.communicate(timeout=120)
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
    last = stderr.strip().splitlines()[-1]
    assert first.returncode == 1
    assert re.fullmatch(
        rf"error: shard 2/2 \(pid {second.pid} on \S+\) is gone without finishing \(killed\?\)", last
    ), last
    manifest = json.loads((results / "raw" / "killed-run" / "run.json").read_text())
    assert manifest["status"] == "failed" and manifest["error_message"] == last.removeprefix("error: ")
    # Shard 1's last refresh marked shard 2 lost and compacted what it had landed: every row is still there.
    run_dir = results / "raw" / "killed-run"
    assert json.loads((run_dir / "run.s2.json").read_text())["status"] == "lost"
    ((kept,),) = duckdb.sql(f"select count(*) from read_parquet('{run_dir}/requests.s2.parquet')").fetchall()
    assert kept == landed >= 10


def _run_dir(results: Path) -> Path:
    return next(p for p in (results / "raw").iterdir() if not p.name.startswith("_"))


def test_an_open_loop_split_across_processes_keeps_one_schedule(tmp_path: Path) -> None:
    load = {"model": "rate", "rates_per_s": [40], "arrival": "constant", "max_in_flight": 4}
    exp = sim_experiment(endpoint=SIM, client_processes=2, concurrency_levels=[], load=load, requests_per_level=20)
    cfg = write_config(tmp_path / "rate.yml", config_dict([exp]))
    proc = run_cli("run", "--config", str(cfg), "--results-dir", str(tmp_path / "results"), "--no-build")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = duckdb.sql(
        "select worker_index, shard_index, intended_offset_ns, start_offset_ns "
        f"from read_parquet('{_run_dir(tmp_path / 'results')}/requests.parquet') where not is_warmup order by 1"
    ).fetchall()
    # Dealt round-robin: schedule positions 0, 2, ... from the first process, 1, 3, ... from the second.
    assert [(position, shard) for position, shard, _, _ in rows] == [(i, i % 2) for i in range(20)]
    # One schedule on one clock: 25 ms apart whichever process sent them, and none sent early.
    first = rows[0][2]
    assert [intended - first for _, _, intended, _ in rows] == [i * 25_000_000 for i in range(20)]
    assert all(start >= intended for _, _, intended, start in rows)


def test_sigterm_mid_level_stops_every_client_process_and_ends_interrupted(tmp_path: Path) -> None:
    exp = sim_experiment(endpoint=SIM, client_processes=2, concurrency_levels=[2], requests_per_level=3000)
    cfg = write_config(tmp_path / "term.yml", config_dict([exp]))
    results = tmp_path / "results"
    proc = start_cli("run", "--config", str(cfg), "--results-dir", str(results), "--no-build")
    try:
        run_dir = _wait_for(lambda: next((p for p in (results / "raw").glob("2*")), None), 120, "the run folder")
        for k in (0, 1):
            _wait_for(lambda k=k: _lines(run_dir / f"requests.w{k}.jsonl") >= 5, 120, f"rows of process {k + 1}")
        clients = [
            p for p in psutil.Process(proc.pid).children(recursive=True) if "spawn_main" in " ".join(p.cmdline())
        ]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert len(clients) == 2 and not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in clients)
    manifest = json.loads((run_dir / "run.json").read_text())
    assert (manifest["status"], manifest["error_message"]) == (
        "interrupted",
        "stopped by signal; requests in flight were completed",
    )
    statuses = dict(
        duckdb.sql(f"select status, count(*) from read_parquet('{run_dir}/requests.parquet') group by all").fetchall()
    )
    assert set(statuses) == {"success"} and statuses["success"] < 3001  # in flight finished, no more sent
