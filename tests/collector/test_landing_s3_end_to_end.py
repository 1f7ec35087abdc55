"""Landing on S3 end to end (moto's server on 127.0.0.1): the real CLI in subprocesses, `collector build` over the
bucket, two collectors landing into one prefix at once, kill -9 mid-run, a missing bucket.

Each test counts what landed against what the loopback server served, or holds the marts built over S3 equal to
the marts of the same runs landed on disk."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from collector.landing import raw_store
from collector.landing_s3 import SCHEMA_FOLDER, S3Store
from collector.warehouse import connect, refresh, warehouse_path
from tests.collector.faults import CollectorProcess, counting_server, openai_config
from tests.collector.s3 import body, bucket, keys, moto_url, s3_env
from tests.dbt.builders import PRICING_DIR, build_warehouse, land_into, run_a, run_b

__all__ = ["bucket", "moto_url", "s3_env"]  # fixtures

pytestmark = pytest.mark.slow

# Whole marts compared between the two warehouses, each in a fixed order.
MARTS = {
    "dim_runs": "run_id",
    "fct_concurrency_metrics": "all",
    "fct_experiment_costs": "all",
    "fct_recommendations": "all",
}


def _run_args(cfg: Path, url: str, local: Path) -> list[str]:
    """`collector run --no-build` landing into an S3 prefix, its warehouse and logs in `local`."""
    return ["run", "--config", str(cfg), "--results-dir", url, "--local-dir", str(local), "--no-build"]


def _mart(warehouse: Path, name: str, order: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"select * from marts.{name} order by {order}").fetchall()
    finally:
        con.close()


def test_collector_build_over_s3_gives_the_marts_of_the_same_runs_landed_on_disk(bucket: str, tmp_path: Path) -> None:
    specs = [run_a(), run_b()]
    store = raw_store(f"s3://{bucket}/bench")
    for spec in specs:
        land_into(store.open_run(spec.run_id), spec)
    on_disk = build_warehouse(tmp_path / "disk", specs)
    build = CollectorProcess(
        "build",
        "--results-dir",
        f"s3://{bucket}/bench",
        "--local-dir",
        str(tmp_path / "analyst"),
        "--pricing-dir",
        str(PRICING_DIR),
    )
    assert build.wait(600) == 0, build.stderr[-3000:]
    over_s3 = tmp_path / "analyst" / "tokenbench.duckdb"
    assert "built " in "".join(build.out) and "2 run(s)" in "".join(build.out)
    for name, order in MARTS.items():
        rows = _mart(over_s3, name, order)
        assert rows, name
        assert rows == _mart(on_disk, name, order), name
    runs = _mart(over_s3, "dim_runs", "run_id")
    assert [r[0] for r in runs] == sorted(s.run_id for s in specs)


def test_two_collectors_land_into_one_prefix_at_once_and_one_build_reads_both(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/fleet"
    with counting_server(delay_s=0.02) as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, concurrency=4, requests=400)
        runs = [CollectorProcess(*_run_args(cfg, url, tmp_path / f"host{i}")) for i in (1, 2)]
        codes = [run.wait(240) for run in runs]
        served = server.served
    assert codes == [0, 0], [run.stderr[-2000:] for run in runs]
    # each collector wrote only under its own run id: a claim, a manifest, its segments, one Parquet per table
    run_ids = sorted({k.split("/")[2] for k in keys(bucket, "fleet/raw/")} - {SCHEMA_FOLDER})
    assert len(run_ids) == 2
    for run_id in run_ids:
        names = {k.rsplit("/", 1)[1] for k in keys(bucket, f"fleet/raw/{run_id}/")}
        whole = {".claim.json", "requests.parquet", "run.json", "telemetry_samples.parquet"}
        assert whole <= names and {n.split("-")[0] for n in names - whole} == {"requests", "telemetry_samples"}
    manifests = [json.loads(body(bucket, f"fleet/raw/{run_id}/run.json")) for run_id in run_ids]
    first, second = sorted(manifests, key=lambda m: m["started_at"])
    assert datetime.fromisoformat(second["started_at"]) < datetime.fromisoformat(first["ended_at"])  # at once
    build = CollectorProcess("build", "--results-dir", url, "--local-dir", str(tmp_path / "analyst"))
    assert build.wait(600) == 0, build.stderr[-3000:]
    con = duckdb.connect(str(tmp_path / "analyst" / "tokenbench.duckdb"), read_only=True)
    try:
        per_run = con.execute(
            "select d.run_id, d.status, count(r.request_id) from marts.dim_runs d left join marts.fct_requests r "
            "on r.run_id = d.run_id group by all order by d.run_id"
        ).fetchall()
    finally:
        con.close()
    assert per_run == [(run_ids[0], "completed", 400), (run_ids[1], "completed", 400)]
    assert served == 800


def _request_segments(bucket: str, prefix: str) -> list[str]:
    """Keys of the request segments of runs (not the schema folder's empty one)."""
    return [k for k in keys(bucket, prefix) if k.rsplit("/", 1)[1].startswith("requests-") and "/_schema" not in k]


def test_kill_9_mid_run_leaves_readable_segments_and_the_next_refresh_marks_the_run_lost(
    bucket: str, tmp_path: Path
) -> None:
    url, local = f"s3://{bucket}/killed", tmp_path / "local"
    with counting_server(delay_s=0.005) as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, concurrency=4, requests=100_000)
        run = CollectorProcess(*_run_args(cfg, url, local))
        run.wait_for_stderr("landing raw rows in")
        deadline = time.monotonic() + 60
        while len(_request_segments(bucket, "killed/raw/")) < 3:
            assert time.monotonic() < deadline, run.stderr[-2000:]
            time.sleep(0.1)
        time.sleep(1.0)
        killed_at = time.time()
        run.proc.send_signal(signal.SIGKILL)
        run.wait(10)
    segments = _request_segments(bucket, "killed/raw/")
    landed = [json.loads(line) for key in segments for line in body(bucket, key).decode().splitlines()]
    assert len(segments) >= 3 and len({row["request_id"] for row in landed}) == len(landed) > 0
    store = raw_store(url)
    warehouse = refresh(local, warehouse_path(local), store)  # what the next run or `collector build` does first
    with connect(warehouse, read_only=True) as con:
        count, last_end = con.execute(
            "select count(*), max(epoch(started_at) + e2e_ns / 1e9) from raw.requests"
        ).fetchone()  # type: ignore[misc]
        status, error = con.execute("select status, error_message from raw.runs").fetchone()  # type: ignore[misc]
    assert count == len(landed)
    assert killed_at - last_end < 2.0  # one flush interval (0.5 s) plus the requests in flight
    assert status == "lost" and "ended without finishing the run" in error
    (run_id,) = {k.split("/")[2] for k in segments}
    assert keys(bucket, f"killed/raw/{run_id}/requests.parquet")  # compacted; the segments stay for the grace
    refresh(local, warehouse, S3Store(url, segment_grace_s=0))  # a refresh once the grace is over
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from raw.requests").fetchone() == (len(landed),)
    names = sorted(k.rsplit("/", 1)[1] for k in keys(bucket, f"killed/raw/{run_id}/"))
    assert names == [".claim.json", "requests.parquet", "run.json", "telemetry_samples.parquet"]


def test_a_missing_bucket_fails_the_run_in_one_line_before_any_request(s3_env: dict[str, str], tmp_path: Path) -> None:
    with counting_server() as server:
        cfg = openai_config(tmp_path / "c.yml", server.base_url, requests=10)
        run = CollectorProcess(
            "run", "--config", str(cfg), "--results-dir", "s3://tb-no-such-bucket/x", "--local-dir", str(tmp_path)
        )
        code = run.wait(120)
    assert code == 2 and run.err == ["error: s3://tb-no-such-bucket/x/raw: bucket tb-no-such-bucket does not exist\n"]
    assert server.served == 0 and not (tmp_path / "tokenbench.duckdb").exists()
