"""Sharded runs without the network: the config's and the command line's one-line errors, the landing of several
writers into one run folder read back as one table, and the host shards' claims, barriers and peer checks."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.clock import RunClock
from collector.errors import UserError
from collector.host_shards import HostShard, ShardError, ShardGroup, fold, parse_shard, with_clock_offsets
from collector.landing import LandingError, RawStore, RunLanding, compact_run, part_name, raw_store, write_manifest
from collector.runner import collect
from collector.shard_boards import shard_board
from collector.warehouse import refresh, warehouse_path
from tests.collector.s3 import bucket, moto_url, s3_env
from tests.conftest import config_dict, config_error, sim_experiment, write_config
from tests.dbt.builders import Experiment, Req, RunSpec, manifest, request_rows

__all__ = ["bucket", "moto_url", "s3_env"]  # fixtures

# -- config -------------------------------------------------------------------------------------------------


def test_zero_client_processes_is_one_line_naming_the_field(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(client_processes=0))
    assert "experiments[0].client_processes" in msg and "greater than or equal to 1" in msg


def test_more_client_processes_than_the_smallest_concurrency_is_one_line(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(client_processes=3, concurrency_levels=[2, 8]))
    assert "client_processes: 3 is more than the smallest concurrency level (2)" in msg


def test_more_client_processes_than_an_open_loops_max_in_flight_is_one_line(tmp_path: Path) -> None:
    load = {"model": "rate", "rates_per_s": [5], "max_in_flight": 2}
    msg = config_error(
        tmp_path, lambda c: c["experiments"][0].update(client_processes=3, concurrency_levels=[], load=load)
    )
    assert "client_processes: 3 is more than the max_in_flight (2)" in msg


def test_client_processes_past_the_cap_is_one_line(tmp_path: Path) -> None:
    msg = config_error(tmp_path, lambda c: c["experiments"][0].update(client_processes=257, concurrency_levels=[1000]))
    assert "experiments[0].client_processes" in msg and "less than or equal to 256" in msg


# -- command line ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2", "give it as i/n"),
        ("3/2", "i must be between 1 and n (2)"),
        ("0/2", "i must be between 1 and n (2)"),
        ("1/0", "n must be between 1 and 1024"),
    ],
)
def test_a_malformed_shard_is_one_line(text: str, expected: str) -> None:
    with pytest.raises(UserError) as info:
        parse_shard(text)
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert parse_shard(" 2 / 3 ") == HostShard(2, 3)


def _collect_error(tmp_path: Path, cfg: dict[str, Any], **kwargs: Any) -> str:
    path = write_config(tmp_path / "cfg.yml", cfg)
    with pytest.raises(UserError) as info:
        collect(path, tmp_path / "results", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert not (tmp_path / "results").exists()  # refused before anything was made
    return message


OPENAI = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "served_model_name": "m"}


def test_a_shard_needs_a_shared_run_id(tmp_path: Path) -> None:
    cfg = config_dict([sim_experiment(endpoint=OPENAI)])
    msg = _collect_error(tmp_path, cfg, shard=HostShard(1, 2))
    assert msg.startswith("--shard 1/2: give every shard the same --run-id")


def test_a_shard_refuses_an_endpoint_each_collector_would_start_itself(tmp_path: Path) -> None:
    msg = _collect_error(tmp_path, config_dict([sim_experiment()]), shard=HostShard(2, 2), run_id="r1")
    assert "experiments[0] (sim) starts its own endpoint (type simulated)" in msg and "collector sim" in msg


def test_a_shard_refuses_a_sweep_whose_rates_one_collector_measures(tmp_path: Path) -> None:
    cfg = config_dict([sim_experiment(endpoint=OPENAI, load={"model": "sweep"})])
    msg = _collect_error(tmp_path, cfg, shard=HostShard(1, 2), run_id="r1")
    assert "load model sweep" in msg


def test_a_run_id_that_is_not_a_safe_name_is_refused(tmp_path: Path) -> None:
    msg = _collect_error(tmp_path, config_dict([sim_experiment()]), run_id="../elsewhere")
    assert msg.startswith("--run-id '../elsewhere':")


# -- several writers, one run ---------------------------------------------------------------------------------


def _spec(run_id: str, n: int) -> RunSpec:
    return RunSpec(
        run_id,
        "parts",
        [Experiment("e")],
        [Req("e", "short", 2, start_s=i * 0.1, e2e_s=0.5, ttft_s=0.1, worker_index=i % 2) for i in range(n)],
    )


def _land(results: Path, run_id: str, part: str, rows: list[Any], join: bool = True) -> RunLanding:
    landing = RunLanding(results, run_id, part, join=join, manifest=None)
    for row in rows:
        landing.append("requests", row)
    landing.close()
    return landing


def _raw_ids(results: Path) -> list[str]:
    path = refresh(results, warehouse_path(results))
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("select request_id from raw.requests").fetchall())
    finally:
        con.close()


def test_every_writers_part_is_read_once_whether_jsonl_or_compacted(tmp_path: Path) -> None:
    results = tmp_path / "results"
    spec = _spec("20261201T000000Z-parts", 12)
    rows = [replace(r, request_id=f"{spec.run_id}:{i}") for i, r in enumerate(request_rows(spec))]
    run_dir = RunLanding(results, spec.run_id).dir  # the collector's own files (its manifest written below)
    write_manifest(run_dir, manifest(spec))
    # This host's two client processes, and host shard 2 with its own process: four writers, four files.
    _land(results, spec.run_id, part_name("", "w0"), rows[0:3])
    _land(results, spec.run_id, part_name("", "w1"), rows[3:6])
    _land(results, spec.run_id, part_name("s2"), rows[6:9])
    _land(results, spec.run_id, part_name("s2", "w0"), rows[9:12])
    names = sorted(p.name for p in run_dir.glob("requests*.jsonl"))
    assert names == [
        "requests.jsonl",
        "requests.s2.jsonl",
        "requests.s2.w0.jsonl",
        "requests.w0.jsonl",
        "requests.w1.jsonl",
    ]
    everything = sorted(r.request_id for r in rows)
    assert _raw_ids(results) == everything
    # The run's own group compacted into one file: shard 2's parts still read as JSONL, nothing twice.
    compact_run(run_dir, [""])
    assert sorted(p.name for p in run_dir.glob("requests*")) == [
        "requests.parquet",
        "requests.s2.jsonl",
        "requests.s2.w0.jsonl",
    ]
    assert _raw_ids(results) == everything
    # A kill between the rename and the unlinks leaves a part beside its group's Parquet: the Parquet wins.
    _land(results, spec.run_id, part_name("", "w1"), rows[3:6])
    assert _raw_ids(results) == everything
    # A refresh finishes the run's compaction: shard 2's group becomes its own file once its manifest is final.
    write_manifest(run_dir, manifest(spec), "run.s2.json")
    _raw_ids(results)
    assert sorted(p.name for p in run_dir.glob("requests*")) == ["requests.parquet", "requests.s2.parquet"]
    assert _raw_ids(results) == everything


def test_a_run_id_is_never_reused_by_an_unsharded_run(tmp_path: Path) -> None:
    RunLanding(tmp_path, "taken").close()
    with pytest.raises(UserError) as info:
        RunLanding(tmp_path, "taken")
    assert str(info.value).endswith("a run with id taken already exists; run ids are never reused")


# -- host shards: claims, barriers, the others' state, on a folder's board and on S3's ------------------------


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RawStore:
    """Where the shards' run lands: a local folder, or an S3 prefix in moto on loopback."""
    if request.param == "folder":
        return raw_store(tmp_path / "results")
    return raw_store(f"s3://{request.getfixturevalue('bucket')}/team")


def _group(store: RawStore, index: int, count: int, digest: str = "digest", run_id: str = "r") -> ShardGroup:
    return ShardGroup(shard_board(store, run_id), HostShard(index, count), digest)


def test_a_second_collector_given_the_same_run_and_shard_is_refused(store: RawStore) -> None:
    _group(store, 2, 2).claim()
    with pytest.raises(ShardError) as info:
        _group(store, 2, 2).claim()
    assert str(info.value) == (
        f"run r: shard 2/2 is already taken by pid {os.getpid()} on {socket.gethostname()}; "
        "give each collector its own --shard"
    )
    _group(store, 1, 2).claim()  # another shard joins


def test_a_shard_cannot_join_an_unsharded_run_nor_an_unsharded_run_a_sharded_one(store: RawStore) -> None:
    store.open_run("r").write_manifest(manifest(_spec("r", 1)))
    with pytest.raises(ShardError) as info:
        _group(store, 1, 2).claim()
    assert str(info.value) == "run r already exists and is not sharded; give a new --run-id"
    _group(store, 1, 2, run_id="q").claim()
    with pytest.raises(LandingError) as landing_info:
        store.open_run("q")
    assert str(landing_info.value) in (
        f"{store.run_location('q')}: a run with id q already exists; run ids are never reused",
        f"{store.run_location('q')}: run id q is already taken by a sharded run (collector run --shard); runs never "
        "share one",
    )


def test_shards_with_another_count_or_config_are_refused_at_the_start(store: RawStore) -> None:
    _group(store, 1, 3).claim()
    group = _group(store, 2, 2)
    group.claim()
    with pytest.raises(ShardError, match=r"shard 1/3 was started as one of 3 shards, this one as one of 2"):
        asyncio.run(group.start(asyncio.Event(), say=lambda line: None))
    _group(store, 1, 2, "digest-a", run_id="q").claim()
    group = _group(store, 2, 2, "digest-b", run_id="q")
    group.claim()
    with pytest.raises(ShardError, match="shard 1/2 runs a different config than shard 2/2"):
        asyncio.run(group.start(asyncio.Event(), say=lambda line: None))


def test_every_shard_leaves_a_barrier_at_the_same_instant_on_one_clock(store: RawStore) -> None:
    groups = [_group(store, i, 3, "d") for i in (1, 2, 3)]
    for group in groups:
        group.claim()

    async def meet() -> tuple[list[RunClock | None], list[int | None]]:
        stop = asyncio.Event()
        clocks = await asyncio.gather(*(g.start(stop, say=lambda line: None) for g in groups))
        instants = await asyncio.gather(*(g.barrier("0.start", stop) for g in groups))
        return list(clocks), list(instants)

    clocks, instants = asyncio.run(meet())
    assert len({g.epoch_wall_ns for g in groups}) == 1
    bases = [c.base_perf_ns for c in clocks if c is not None]
    assert max(bases) - min(bases) < 1_000_000  # one host: the same epoch read through one monotonic clock
    # The same wall-clock instant, each shard reading it through its own wall/perf pair: microseconds apart.
    starts = [i for i in instants if i is not None]
    assert len(starts) == 3 and max(starts) - min(starts) < 100_000
    # Each left after the last arrival plus the board's lead: none saw the barrier complete late by a poll.
    assert all(len(g.late_ns) == 2 for g in groups)


def test_a_stopped_collector_leaves_a_barrier_without_an_instant(store: RawStore) -> None:
    group = _group(store, 1, 2, "d")
    group.claim()
    stop = asyncio.Event()
    stop.set()
    assert asyncio.run(group.barrier("0.start", stop)) is None


def _peer(store: RawStore, **fields: Any) -> ShardGroup:
    group = _group(store, 1, 2, "d")
    group.claim()
    landing = store.open_run("r", "s2", join=True, manifest="run.s2.json")
    landing.write_manifest(replace(manifest(_spec("r", 1)), **fields))
    return group


def _peer_error(group: ShardGroup) -> str:
    with pytest.raises(ShardError) as info:
        asyncio.run(group.barrier("3.start", asyncio.Event()))
    return str(info.value)


def test_a_shard_that_ended_stops_the_others_with_its_reason(store: RawStore) -> None:
    group = _peer(store, status="failed", error_message="endpoint down", pid=7, hostname="hostb")
    assert _peer_error(group) == "shard 2/2 (pid 7 on hostb) ended failed: endpoint down"


def test_a_shard_killed_on_this_host_is_told_at_once(store: RawStore) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    group = _peer(
        store,
        status="running",
        pid=dead.pid,
        hostname=socket.gethostname(),
        process_started_at="2020-01-01T00:00:00+00:00",
    )
    assert _peer_error(group) == f"shard 2/2 (pid {dead.pid} on {socket.gethostname()}) is gone without finishing " + (
        "(killed?)"
    )


def test_a_shard_on_another_host_without_heartbeats_is_told(store: RawStore) -> None:
    group = _peer(store, status="running", pid=7, hostname="hostb", heartbeat_at="2020-01-01T00:00:00+00:00")
    message = _peer_error(group)
    assert message.startswith("shard 2/2 (pid 7 on hostb) has written no heartbeat for ") and message.endswith(" s")


def test_the_runs_status_is_shard_1s_unless_it_completed_and_another_did_not() -> None:
    done = {"index": 2, "manifest": {"status": "completed"}}
    failed = {"index": 3, "manifest": {"status": "failed", "error_message": "boom"}}
    assert fold("completed", None, [done], 3) == ("completed", None)
    assert fold("completed", None, [done, failed], 3) == ("failed", "shard 3/3 failed: boom")
    assert fold("interrupted", "stopped by signal", [failed], 3) == ("interrupted", "stopped by signal")
    assert fold("completed", None, [{"index": 2, "manifest": None}], 2) == ("failed", "shard 2/2 never started")
    running = {"index": 2, "manifest": {"status": "running"}}
    assert fold("completed", None, [running], 2) == (
        "failed",
        "shard 2/2 was still running when shard 1/2 finished",
    )
    lost = {"index": 2, "manifest": {"status": "lost", "error_message": "killed?"}}
    assert fold("completed", None, [lost], 2) == ("failed", "shard 2/2 lost: killed?")


def test_a_shards_clock_offset_is_given_only_where_it_shares_shard_1s_host() -> None:
    records = with_clock_offsets(
        [
            {"shard": "1/3", "hostname": "a", "clock": {"base_perf_ns": 1_000}},
            {"shard": "2/3", "hostname": "a", "clock": {"base_perf_ns": 1_250}},
            {"shard": "3/3", "hostname": "b", "clock": {"base_perf_ns": 99}},
        ]
    )
    assert [r["clock"]["offset_to_shard_1_ns"] for r in records] == [0, 250, None]


def test_a_shard_that_never_joins_fails_the_start_with_one_line(store: RawStore, monkeypatch: Any) -> None:
    monkeypatch.setenv("TOKENBENCH_SHARD_JOIN_WAIT_S", "0.5")
    group = _group(store, 1, 2, "d")
    group.claim()
    said: list[str] = []
    with pytest.raises(ShardError) as info:
        asyncio.run(group.start(asyncio.Event(), say=said.append))
    assert str(info.value) == (
        "run r: shard 2/2 did not join within 0.5 s (start it with the same --run-id, or raise "
        "$TOKENBENCH_SHARD_JOIN_WAIT_S)"
    )
    assert said == ["run r: shard 1/2 waiting for shard(s) 2/2 to join"]
