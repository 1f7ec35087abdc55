"""Landing on S3 (moto's server on 127.0.0.1): numbered immutable segments, one claim per run id, a manifest, one
Parquet per table at the end; the raw views read it all through DuckDB; faults fail in one line."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from collector.landing import LandingError, LocalStore, RunLanding, process_identity, raw_store
from collector.landing_s3 import S3Store
from collector.warehouse import connect, refresh, warehouse_path
from tests.collector.s3 import allow_writes, body, bucket, deny_writes, keys, manifest, moto_url, s3_env
from tests.dbt.builders import manifest as spec_manifest
from tests.dbt.builders import request_rows, run_a, telemetry_rows

__all__ = ["bucket", "moto_url", "s3_env"]  # fixtures


def _store(bucket: str) -> S3Store:
    store = raw_store(f"s3://{bucket}/team/bench/")
    assert isinstance(store, S3Store)
    return store


def _lines(data: bytes) -> list[dict[str, object]]:
    return [json.loads(line) for line in data.decode().splitlines()]


def test_rows_land_as_numbered_segments_then_one_parquet_per_table(bucket: str) -> None:
    store = _store(bucket)
    spec = run_a()
    rows = request_rows(spec)
    landing = store.open_run(spec.run_id)
    landing.write_manifest(spec_manifest(spec))
    for row in rows[:3]:
        landing.append("requests", row)
    landing.flush()
    for row in rows[3:5]:
        landing.append("requests", row)
    landing.flush()
    landing.flush()  # nothing queued: no empty segment
    run = f"team/bench/raw/{spec.run_id}/"
    assert keys(bucket, run) == [run + ".claim.json", run + "requests-000001.jsonl", run + "requests-000002.jsonl",
                                 run + "run.json"]  # fmt: skip
    assert [r["request_id"] for r in _lines(body(bucket, run + "requests-000002.jsonl"))] == [
        rows[3].request_id,
        rows[4].request_id,
    ]
    assert landing.rows_written["requests"] == 5 and landing.rows_pending() == 0
    assert manifest(bucket, run + "run.json")["run_id"] == spec.run_id
    landing.close()
    landing.compact()
    segments = [run + "requests-000001.jsonl", run + "requests-000002.jsonl"]
    # the segments outlive the Parquet by SEGMENT_GRACE_S, for queries that listed them before it was put
    assert keys(bucket, run) == [run + ".claim.json", *segments, run + "requests.parquet", run + "run.json"]
    S3Store(f"s3://{bucket}/team/bench", segment_grace_s=0).reconcile()  # a refresh after the grace
    assert keys(bucket, run) == [run + ".claim.json", run + "requests.parquet", run + "run.json"]
    con = duckdb.connect()
    store.attach(con)
    got = con.execute(f"select request_id from read_parquet('s3://{bucket}/{run}requests.parquet')").fetchall()
    assert [r[0] for r in got] == [r.request_id for r in rows[:5]]


def test_the_raw_views_read_a_running_runs_segments_and_a_finished_runs_parquet(bucket: str, tmp_path: Path) -> None:
    """A run in flight (its collector is this process) is read from its segments; compacted, from its Parquet."""
    store, local = _store(bucket), tmp_path / "local"
    spec = run_a()
    host, pid, started = process_identity()
    finished = spec_manifest(spec)
    landing = store.open_run(spec.run_id)
    landing.write_manifest(replace(finished, status="running", hostname=host, pid=pid, process_started_at=started))
    for row in request_rows(spec):
        landing.append("requests", row)
    for sample in telemetry_rows(spec):
        landing.append("telemetry_samples", sample)
    landing.flush()
    requests, samples = len(request_rows(spec)), len(telemetry_rows(spec))
    warehouse = refresh(local, warehouse_path(local), store)  # leaves a live run alone
    query = "select (select count(*) from raw.requests), (select count(*) from raw.telemetry_samples), " \
            "(select list(status) from raw.runs)"  # fmt: skip
    with connect(warehouse, read_only=True) as con:
        assert con.execute(query).fetchone() == (requests, samples, ["running"])
    assert keys(bucket, f"team/bench/raw/{spec.run_id}/requests-") == [
        f"team/bench/raw/{spec.run_id}/requests-000001.jsonl"
    ]
    landing.close()
    landing.write_manifest(finished, final=True)
    landing.compact()
    with connect(warehouse, read_only=True) as con:  # no refresh: the views are globs; Parquet and segments
        assert con.execute(query).fetchone() == (requests, samples, ["completed"])  # never count a row twice
    assert len([k for k in keys(bucket) if k.endswith(".jsonl") and "/_schema" not in k]) == 2
    refresh(local, warehouse, S3Store(f"s3://{bucket}/team/bench", segment_grace_s=0))  # after the grace
    with connect(warehouse, read_only=True) as con:
        assert con.execute(query).fetchone() == (requests, samples, ["completed"])
    assert [k for k in keys(bucket) if k.endswith(".jsonl") and "/_schema" not in k] == []


def test_a_second_collector_given_the_same_run_id_is_refused_in_one_line(bucket: str, tmp_path: Path) -> None:
    store = _store(bucket)
    first = store.open_run("20261126T120000Z-abcdef")
    first.append("requests", {"run_id": "20261126T120000Z-abcdef"})
    with pytest.raises(LandingError) as refused:
        _store(bucket).open_run("20261126T120000Z-abcdef")
    message = str(refused.value)
    assert message.startswith(f"s3://{bucket}/team/bench/raw/20261126T120000Z-abcdef/: run id ")
    assert "already taken by process" in message and "\n" not in message
    first.flush()  # the first keeps its run
    assert len(keys(bucket, "team/bench/raw/20261126T120000Z-abcdef/requests-")) == 1
    local = LocalStore(tmp_path / "results")
    local.open_run("r1")
    with pytest.raises(LandingError, match="a run with id r1 already exists; run ids are never reused"):
        local.open_run("r1")


def test_a_missing_bucket_fails_the_preflight_in_one_line(s3_env: dict[str, str]) -> None:
    with pytest.raises(LandingError) as missing:
        raw_store("s3://tb-no-such-bucket/x").preflight(100)
    assert str(missing.value) == "s3://tb-no-such-bucket/x/raw: bucket tb-no-such-bucket does not exist"


def test_a_bucket_that_denies_writes_fails_the_preflight_in_one_line(bucket: str) -> None:
    _store(bucket).preflight(100)  # the schema files are there now: the next preflight's puts change nothing
    deny_writes(bucket)
    with pytest.raises(LandingError) as denied:
        _store(bucket).preflight(100)
    assert str(denied.value) == f"s3://{bucket}/team/bench/raw: writing to bucket {bucket} denied (403)"


def test_a_refused_segment_stays_queued_and_lands_whole_once_writes_are_allowed(bucket: str) -> None:
    landing = _store(bucket).open_run("r-retry")
    for i in range(4):
        landing.append("requests", {"run_id": "r-retry", "i": i})
    deny_writes(bucket)
    assert not landing.flush_with_retry((0.01,))
    assert landing.failed.is_set() and landing.rows_pending() == 4
    assert landing.error == (
        f"cannot write raw rows to s3://{bucket}/team/bench/raw/r-retry/requests-*.jsonl: "
        f"put s3://{bucket}/team/bench/raw/r-retry/requests-000001.jsonl: 403: Forbidden; "
        "0 request rows landed there, 4 could not be written"
    )
    allow_writes(bucket)
    landing.append("requests", {"run_id": "r-retry", "i": 4})
    landing.flush()  # the refused segment first, with its number, then the new row's
    assert [r["i"] for r in _lines(body(bucket, "team/bench/raw/r-retry/requests-000001.jsonl"))] == [0, 1, 2, 3]
    assert [r["i"] for r in _lines(body(bucket, "team/bench/raw/r-retry/requests-000002.jsonl"))] == [4]
    assert landing.rows_written["requests"] == 5 and landing.rows_pending() == 0


@pytest.mark.parametrize(("beat_age_s", "lost"), [(30, False), (600, True)])
def test_a_run_from_another_host_is_lost_once_its_heartbeat_is_stale(bucket: str, beat_age_s: int, lost: bool) -> None:
    """Another host's process cannot be asked: a heartbeat older than LOST_AFTER_S (120 s) decides."""
    from datetime import UTC, datetime, timedelta

    store = _store(bucket)
    spec = run_a()
    landing = store.open_run(spec.run_id)
    beat = (datetime.now(UTC) - timedelta(seconds=beat_age_s)).isoformat()
    running = replace(spec_manifest(spec), status="running", ended_at=None, hostname="elsewhere", heartbeat_at=beat)
    landing.write_manifest(running)
    landing.append("requests", request_rows(spec)[0])
    landing.flush()
    assert store.reconcile() == ([spec.run_id] if lost else [])
    after = manifest(bucket, f"team/bench/raw/{spec.run_id}/run.json")
    assert after["status"] == ("lost" if lost else "running")
    compacted = any(k.endswith("requests.parquet") for k in keys(bucket, f"team/bench/raw/{spec.run_id}/"))
    assert compacted is lost  # a lost run is over: compacted; a live one is left alone
    if lost:
        assert after["ended_at"] == beat and "ended without finishing the run" in after["error_message"]


def test_a_local_results_dir_keeps_its_layout(tmp_path: Path) -> None:
    """The local store is the folder it always was: raw/<run_id>/requests.jsonl, compacted to Parquet."""
    store = raw_store(tmp_path / "results")
    landing = store.open_run("r-local")
    assert isinstance(landing, RunLanding) and landing.where == str(tmp_path / "results" / "raw" / "r-local")
    landing.append("requests", {"run_id": "r-local"})
    landing.close()
    assert (landing.dir / "requests.jsonl").read_text() == '{"run_id":"r-local"}\n'
    assert store.glob("run.json") == f"{(tmp_path / 'results' / 'raw').resolve()}/*/run.json"


def test_a_glob_star_stays_within_one_folder_as_duckdbs_own_globs_do() -> None:
    from collector.duckdb_s3 import _glob_regex

    star = _glob_regex("p/raw/*/requests-*.jsonl")
    assert star.fullmatch("p/raw/r1/requests-000001.jsonl")
    assert not star.fullmatch("p/raw/r1/old/requests-000001.jsonl")
    assert not star.fullmatch("p/raw/r1/requests.parquet")
    assert _glob_regex("p/raw/**/run.json").fullmatch("p/raw/r1/old/run.json")
    assert _glob_regex("p/raw/r[!2]/run.json").fullmatch("p/raw/r1/run.json")
    assert not _glob_regex("p/raw/r[!2]/run.json").fullmatch("p/raw/r2/run.json")
    assert not _glob_regex("p/raw/r?/run.json").fullmatch("p/raw/r/1/run.json")


def test_a_build_without_write_access_leaves_a_dead_run_as_it_is_and_reads_its_segments(
    bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An analyst allowed only to read can still build: the lost-marking and compaction are skipped, with a warning."""
    from datetime import UTC, datetime, timedelta

    store = _store(bucket)
    spec = run_a()
    landing = store.open_run(spec.run_id)
    beat = (datetime.now(UTC) - timedelta(seconds=600)).isoformat()
    landing.write_manifest(replace(spec_manifest(spec), status="running", hostname="elsewhere", heartbeat_at=beat))
    for row in request_rows(spec)[:3]:
        landing.append("requests", row)
    landing.flush()
    store.write_schema_files()
    deny_writes(bucket)
    warehouse = refresh(tmp_path / "local", None, store)
    with connect(warehouse, read_only=True) as con:
        assert con.execute("select (select count(*) from raw.requests), (select status from raw.runs)").fetchone() == (
            3,
            "running",
        )
    assert f"run {spec.run_id} left as it is: put s3://{bucket}/team/bench/raw/{spec.run_id}/run.json: 403" in (
        caplog.text
    )


def test_host_shards_parts_compact_each_to_its_own_parquet_and_the_raw_views_read_them_once(
    bucket: str, tmp_path: Path
) -> None:
    """Shard 1 and shard 2 (and shard 2's client process 1) put their own segments; each shard compacts its own
    group; the views read every row once, from segments or Parquet, whichever a group has."""
    store = _store(bucket)
    spec = run_a()
    rows = request_rows(spec)
    writers = {
        "s1": store.open_run(spec.run_id, "s1", join=True, manifest="run.json"),
        "s2": store.open_run(spec.run_id, "s2", join=True, manifest="run.s2.json"),
        "s2.w1": store.open_run(spec.run_id, "s2.w1", join=True, manifest=None),
    }
    for i, row in enumerate(rows):
        writers[["s1", "s2", "s2.w1"][i % 3]].append("requests", row)
    for sample in telemetry_rows(spec):
        writers["s1"].append("telemetry_samples", sample)
    for landing in writers.values():
        landing.close()
    run = f"team/bench/raw/{spec.run_id}/"
    assert [k.removeprefix(run) for k in keys(bucket, run)] == [
        "requests.s1-000001.jsonl",
        "requests.s2-000001.jsonl",
        "requests.s2.w1-000001.jsonl",
        "telemetry_samples.s1-000001.jsonl",
    ]
    writers["s1"].write_manifest(spec_manifest(spec))
    writers["s2"].write_manifest(spec_manifest(spec))
    writers["s1"].compact()  # shard 1's group only: shard 2 may still be sending
    assert "requests.s2.parquet" not in {k.removeprefix(run) for k in keys(bucket, run)}
    local = tmp_path / "local"
    refresh(local, warehouse_path(local), store)  # reads shard 2's segments beside shard 1's Parquet
    with connect(warehouse_path(local), read_only=True) as con:
        store.attach(con)
        got = con.execute("select request_id from raw.requests order by request_id").fetchall()
        samples = con.execute("select count(*) from raw.telemetry_samples").fetchone()
    assert [r[0] for r in got] == sorted(r.request_id for r in rows)
    assert samples == (len(telemetry_rows(spec)),)
    S3Store(f"s3://{bucket}/team/bench", segment_grace_s=0).reconcile()  # both manifests are over: compact, tidy
    assert [k.removeprefix(run) for k in keys(bucket, run)] == [
        "requests.s1.parquet",
        "requests.s2.parquet",
        "run.json",
        "run.s2.json",
        "telemetry_samples.s1.parquet",
    ]
    # Local Spark reads a mirror: each shard's Parquet, the run's manifest, and the zero-row schema files.
    raw = store.mirror(tmp_path / "mirror")
    assert {str(p.relative_to(raw)) for p in raw.rglob("*.parquet")} == {
        "_schema/requests.parquet",
        "_schema/runs.parquet",
        "_schema/telemetry_samples.parquet",
        f"{spec.run_id}/requests.s1.parquet",
        f"{spec.run_id}/requests.s2.parquet",
        f"{spec.run_id}/telemetry_samples.s1.parquet",
    }
    assert json.loads((raw / spec.run_id / "run.json").read_text())["run_id"] == spec.run_id
    con = duckdb.connect()
    mirrored = con.execute(f"select count(*) from read_parquet('{raw}/*/requests*.parquet')").fetchone()
    assert mirrored == (len(rows),)
    # Again, after a run is gone from S3: the mirror follows (and keeps what did not change).
    store.delete([k for k in keys(bucket, run) if k.endswith("requests.s2.parquet")])
    store.mirror(tmp_path / "mirror")
    assert not (raw / spec.run_id / "requests.s2.parquet").exists()
    assert (raw / spec.run_id / "requests.s1.parquet").exists()
