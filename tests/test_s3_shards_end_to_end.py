"""End to end, at scale-out shape: two collectors (two processes standing for two hosts, each with its own local
folder) send two host shards of one run into one S3 prefix (moto's server on loopback), then `collector build`
over that prefix on DuckDB and `collector build --target spark` over the same prefix give the same marts."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from moto.server import ThreadedMotoServer

from collector.landing import raw_store
from collector.landing_s3 import S3Store
from tests.aws.loopback import FAKE_CREDENTIALS
from tests.conftest import config_dict, fetch, run_cli, sim_experiment, write_config
from tests.dbt.parity import MARTS, NEEDS_SPARK, assert_same_mart
from tests.shards import shard_config, simulator, start_shard

__all__ = ["simulator"]  # a fixture

pytestmark = pytest.mark.slow

RUN_ID = "sharded-s3"
BUCKET = "team-bench"


@pytest.fixture(scope="module")
def s3_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """moto on 127.0.0.1 with one bucket, and the environment that points every collector's boto3 at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    nowhere = tmp_path_factory.mktemp("no-aws-config")
    env = {
        **FAKE_CREDENTIALS,
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_SHARED_CREDENTIALS_FILE": str(nowhere / "credentials"),
        "AWS_CONFIG_FILE": str(nowhere / "config"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_credentials()).create_bucket(Bucket=BUCKET)
    yield env
    server.stop()


def _credentials() -> dict[str, str]:
    return {
        "region_name": FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        "aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def _keys(env: dict[str, str], prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_credentials())
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(scope="module")
def s3_shards(tmp_path_factory: pytest.TempPathFactory, simulator: str, s3_env: dict[str, str]) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("s3-shards")
    cfg = shard_config(work / "shards.yml", simulator)
    prefix = f"s3://{BUCKET}/bench"
    # Each "host" keeps its logs in its own local folder; the rows go to the one prefix.
    second = start_shard(cfg, prefix, "2/2", RUN_ID, "--local-dir", str(work / "host-b"), env=s3_env)
    first = start_shard(cfg, prefix, "1/2", RUN_ID, "--local-dir", str(work / "host-a"), env=s3_env)
    out = {k: p.communicate(timeout=300) for k, p in (("1", first), ("2", second))}
    assert first.returncode == 0, out["1"][1][-3000:]
    assert second.returncode == 0, out["2"][1][-3000:]
    return {"work": work, "prefix": prefix, "env": s3_env, "stderr": {k: v[1] for k, v in out.items()}}


def test_two_host_shards_land_their_own_objects_under_one_s3_prefix(s3_shards: dict[str, Any]) -> None:
    landed = [k.removeprefix(f"bench/raw/{RUN_ID}/") for k in _keys(s3_shards["env"], f"bench/raw/{RUN_ID}/")]
    # Each shard's Parquet, manifest and claim; the run's claim says it is sharded; the segments wait out their
    # grace period before a later refresh deletes them.
    parquet = [k for k in landed if k.endswith(".parquet")]
    assert parquet == [
        "requests.s1.parquet",
        "requests.s2.parquet",
        "telemetry_samples.s1.parquet",
        "telemetry_samples.s2.parquet",
    ]
    assert {"run.json", "run.s2.json", "shards/claim.1.json", "shards/claim.2.json", ".claim.json"} <= set(landed)
    assert any(re.fullmatch(r"requests\.s2-0+1\.jsonl", k) for k in landed)
    assert "shard 2/2 done; shard 1/2 builds the marts" in s3_shards["stderr"]["2"]
    for shard in ("1", "2"):
        assert "| concurrency 4 |" in s3_shards["stderr"][shard]


@pytest.fixture(scope="module")
def duckdb_build(s3_shards: dict[str, Any]) -> Path:
    local = s3_shards["work"] / "analyst"
    done = run_cli("build", "--results-dir", s3_shards["prefix"], "--local-dir", str(local), env=s3_shards["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    return local


def test_collector_build_over_the_prefix_reads_both_shards_as_one_run_and_one_level(
    duckdb_build: Path, s3_shards: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_shards["env"].items():
        monkeypatch.setenv(name, value)
    store = raw_store(s3_shards["prefix"])
    warehouse = duckdb_build / "tokenbench.duckdb"
    rows = fetch(
        warehouse,
        "select shard_index, shard_count, count(*), count(distinct request_id), "
        f"bool_and(starts_with(request_id, '{RUN_ID}:' || (shard_index + 1) || '.')) "
        "from raw.requests group by all order by all",
        store,
    )
    assert rows == [(0, 2, 9, 9, True), (1, 2, 8, 8, True)]  # 2 workers each; the warm-up from shard 1
    assert fetch(warehouse, "select run_id, status from raw.runs", store) == [(RUN_ID, "completed")]
    levels = fetch(
        warehouse, "select run_id, payload_file, concurrency, request_count from marts.fct_concurrency_metrics", store
    )
    assert levels == [(RUN_ID, "short", 4, 16)]
    manifest = fetch(warehouse, "select shards_json from raw.runs", store)[0][0]
    shards = manifest if isinstance(manifest, list) else json.loads(manifest)
    assert [(s["shard"], s["status"]) for s in shards] == [("1/2", "completed"), ("2/2", "completed")]
    assert shards[0]["clock"]["epoch_wall_ns"] == shards[1]["clock"]["epoch_wall_ns"]


@pytest.mark.parametrize("mart", sorted(MARTS))
def test_spark_over_the_same_prefix_gives_duckdbs_marts(spark_build: Path, mart: str) -> None:
    assert_same_mart(spark_build, mart)


@pytest.fixture(scope="module")
def spark_build(duckdb_build: Path, s3_shards: dict[str, Any]) -> Path:
    for mark in NEEDS_SPARK:
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])
    done = run_cli(
        "build",
        "--results-dir",
        s3_shards["prefix"],
        "--local-dir",
        str(duckdb_build),
        "--target",
        "spark",
        timeout=1200,
        env={**s3_shards["env"], "TOKENBENCH_SPARK_CATALOG": "in-memory"},
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert f"mirrored the compacted runs of s3://{BUCKET}/bench/raw into " in done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith(f"built target spark from s3://{BUCKET}/bench/raw: ")
    mirror = duckdb_build / "spark" / "landing" / "raw" / RUN_ID
    assert sorted(p.name for p in mirror.iterdir()) == [
        "requests.s1.parquet",
        "requests.s2.parquet",
        "run.json",
        "telemetry_samples.s1.parquet",
        "telemetry_samples.s2.parquet",
    ]
    return duckdb_build


# -- hostile: a shard killed mid-run; client processes -------------------------------------------------------


def _s3_lines(env: dict[str, str], prefix: str, part: str) -> int:
    """Rows put so far in the request segments of `part` ('s2') under `prefix`."""
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], **_credentials())
    keys = [k for k in _keys(env, prefix) if re.search(rf"/requests\.{re.escape(part)}-\d+\.jsonl$", k)]
    return sum(client.get_object(Bucket=BUCKET, Key=k)["Body"].read().count(b"\n") for k in keys)


def test_a_host_shard_killed_on_s3_stops_the_other_in_one_line_and_its_rows_are_kept(
    tmp_path: Path, simulator: str, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = shard_config(tmp_path / "kill.yml", simulator, requests_per_level=400)
    prefix, run = f"s3://{BUCKET}/killed", "killed-run"
    second = start_shard(cfg, prefix, "2/2", run, "--local-dir", str(tmp_path / "b"), env=s3_env)
    first = start_shard(cfg, prefix, "1/2", run, "--local-dir", str(tmp_path / "a"), env=s3_env)
    try:
        deadline = time.monotonic() + 120
        while _s3_lines(s3_env, f"killed/raw/{run}/", "s2") < 10:
            assert time.monotonic() < deadline and second.poll() is None, "no rows from shard 2"
            time.sleep(0.2)
        second.kill()
        second.wait(30)
        landed = _s3_lines(s3_env, f"killed/raw/{run}/", "s2")
        _, stderr = first.communicate(timeout=120)
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
    last = stderr.strip().splitlines()[-1]
    assert first.returncode == 1
    assert re.fullmatch(rf"error: shard 2/2 \(pid {second.pid} on \S+\) is gone without finishing \(killed\?\)", last)
    for name, value in s3_env.items():
        monkeypatch.setenv(name, value)
    store = raw_store(prefix)
    assert isinstance(store, S3Store)
    manifest = json.loads(store.get(store.key(run, "run.json"))[0])  # type: ignore[index]
    assert manifest["status"] == "failed" and manifest["error_message"] == last.removeprefix("error: ")
    # Shard 1's last refresh marked shard 2 lost and compacted the segments it had put: every row is still there.
    assert json.loads(store.get(store.key(run, "run.s2.json"))[0])["status"] == "lost"  # type: ignore[index]
    con = duckdb.connect()
    store.attach(con)
    ((kept,),) = con.execute(f"select count(*) from read_parquet('{prefix}/raw/{run}/requests.s2.parquet')").fetchall()
    assert kept == landed >= 10


def test_client_processes_land_their_own_segments_into_the_prefix_and_every_request_once(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    sim = {"type": "simulated", "speedup": 10, "mean_output_tokens": 20}
    exp = sim_experiment(endpoint=sim, client_processes=2, concurrency_levels=[2, 4], requests_per_level=16)
    cfg = write_config(tmp_path / "p2.yml", config_dict([exp]))
    prefix = f"s3://{BUCKET}/processes"
    local = tmp_path / "l"
    done = run_cli("run", "--config", str(cfg), "--results-dir", prefix, "--local-dir", str(local), env=s3_env)
    assert done.returncode == 0, done.stderr[-3000:]
    names = {k.rsplit("/", 1)[1] for k in _keys(s3_env, "processes/raw/") if "/_schema" not in k}
    # Each client process put its own segments (w0, w1); the run compacted them into one Parquet per table.
    assert {n.split("-")[0] for n in names if n.endswith(".jsonl")} >= {"requests.w0", "requests.w1"}
    assert {"requests.parquet", "telemetry_samples.parquet", "run.json"} <= names
    con = duckdb.connect(str(local / "tokenbench.duckdb"), read_only=True)
    levels = con.execute(
        "select concurrency, request_count from marts.fct_concurrency_metrics order by concurrency"
    ).fetchall()
    requests = con.execute(
        "select count(*) filter (where not is_warmup), count(*), count(distinct request_id) from marts.fct_requests"
    ).fetchone()
    assert levels == [(2, 16), (4, 16)]
    assert requests == (32, 34, 34)  # each request once: 16 measured and one warm-up per level
