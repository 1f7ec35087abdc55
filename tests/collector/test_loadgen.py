"""The closed loop against the simulator and against a server that misbehaves in every listed way."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import aiohttp
import duckdb
import pytest

from collector.clock import RunClock
from collector.config import InferenceParameters
from collector.loadgen import Level, Target, run_level
from collector.payloads import Prompt
from collector.runner import collect
from collector.tokens import DEFAULT_COUNTER
from tests.conftest import config_dict, sim_experiment, write_config
from tests.servers import misbehaving_server, server_stats


def _rows(results: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


EXPECTED = {
    # mode: (stream, status, error_type, http_status)
    "ok": (True, "success", None, 200),
    "http-500": (True, "error", "http_error", 500),
    "bad-json": (False, "error", "malformed_response", 200),
    "bad-sse": (True, "error", "malformed_response", 200),
    "error-event": (True, "error", "http_error", 200),
    "cut": (True, "error", "stream_cut", 200),
    "cut-clean": (True, "error", "stream_cut", 200),
    "reset": (True, "error", "connection_reset", None),
    "hang": (True, "error", "timeout", None),
    # a wrong shape mid-stream, and nesting too deep for json: once a traceback that ended the run
    "bad-delta-str": (True, "error", "malformed_response", 200),
    "deep": (False, "error", "malformed_response", 200),
}


def test_each_misbehaviour_lands_one_error_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    with misbehaving_server() as base_url:
        experiments = [
            {
                "name": mode,
                "model_id": "m",
                "endpoint": {"type": "openai", "base_url": base_url, "served_model_name": mode, "stream": stream},
                "instance_type": "g5.4xlarge",
                "concurrency_levels": [2],
                "requests_per_level": 3,
                "warmup_requests_per_level": 0,
                "payloads": ["short"],
                "request_timeout_s": 0.5,
            }
            for mode, (stream, *_rest) in EXPECTED.items()
        ]
        cfg = write_config(tmp_path / "bad.yml", config_dict(experiments))
        outcome = collect(cfg, tmp_path / "results")
    assert outcome.status == "completed"
    rows = _rows(
        tmp_path / "results",
        "select experiment_name, status, error_type, http_status, count(*), "
        "min(error_message is not null) from raw.requests group by all",
    )
    got = {r[0]: r[1:] for r in rows}
    for mode, (_stream, status, error_type, http_status) in EXPECTED.items():
        has_message = error_type is not None
        assert got[mode] == (status, error_type, http_status, 3, has_message), mode


def test_usage_from_server_and_client_counts_are_both_recorded(tmp_path: Path) -> None:
    with misbehaving_server() as base_url:
        exp = {
            "name": "ok",
            "model_id": "m",
            "endpoint": {"type": "openai", "base_url": base_url, "served_model_name": "ok"},
            "instance_type": "g5.4xlarge",
            "concurrency_levels": [1],
            "requests_per_level": 2,
            "warmup_requests_per_level": 0,
            "payloads": ["short"],
        }
        collect(write_config(tmp_path / "ok.yml", config_dict([exp])), tmp_path / "results")
    rows = _rows(
        tmp_path / "results",
        "select prompt_tokens, completion_tokens, token_count_source, client_completion_tokens, "
        "client_prompt_tokens > 0, chunk_count, content_chunk_count, finish_reason from raw.requests",
    )
    # the server says 7 prompt and 3 completion tokens; the client counts the 3 words it received
    assert rows == [(7, 3, "server", 3, True, 4, 3, "stop")] * 2


def test_refused_connection_becomes_connect_error_rows() -> None:
    async def go() -> list:
        rows: list = []
        target = Target(
            run_id="r",
            experiment_name="e",
            model_id="m",
            endpoint_type="openai",
            base_url="http://127.0.0.1:9/v1",  # discard port: nothing listens there
            api_style="chat",
            served_model_name="m",
            stream=True,
            headers={},
            instance_type=None,
            instance_count=1,
            params=InferenceParameters(),
            timeout=aiohttp.ClientTimeout(total=5),
            counter=DEFAULT_COUNTER,
        )
        level = Level("b", [Prompt(0, "hello there", None, 2)], concurrency=2, requests=4, warmup=0)
        async with aiohttp.ClientSession() as session:
            await run_level(session, target, level, RunClock(), rows.append, asyncio.Event())
        return rows

    rows = asyncio.run(go())
    assert [(r.status, r.error_type, r.http_status) for r in rows] == [("error", "connect_error", None)] * 4
    # the cause, as aiohttp words a refused connect, not only the address the test gave
    assert {r.error_message.partition(" [")[0] for r in rows} == {
        "ClientConnectorError: Cannot connect to host 127.0.0.1:9 ssl:default"
    }
    assert all(r.error_message.endswith("[Connect call failed ('127.0.0.1', 9)]") for r in rows)


@pytest.mark.parametrize("primed", [True, False])
def test_a_closed_level_opens_its_connections_before_it_is_measured(primed: bool) -> None:
    """With the health route to prime on, the level's 4 connections are open before its first measured request:
    none of its 12 POSTs pays a TCP connect (the run's first round would otherwise time it). Without one, each of
    the 4 workers opens its connection with its first request."""

    async def go(base_url: str) -> list:
        rows: list = []
        target = Target(
            run_id="r",
            experiment_name="e",
            model_id="m",
            endpoint_type="openai",
            base_url=base_url + "/v1",
            api_style="chat",
            served_model_name="slow",
            stream=True,
            headers={},
            instance_type=None,
            instance_count=1,
            params=InferenceParameters(),
            timeout=aiohttp.ClientTimeout(total=5),
            counter=DEFAULT_COUNTER,
            prime_url=base_url + "/health" if primed else None,
        )
        level = Level("b", [Prompt(0, "hello there", None, 2)], concurrency=4, requests=12, warmup=0)
        async with aiohttp.ClientSession() as session:
            await run_level(session, target, level, RunClock(), rows.append, asyncio.Event())
        return rows

    with misbehaving_server() as base_url:
        rows = asyncio.run(go(base_url))
        stats = server_stats(base_url)
    assert [r.status for r in rows] == ["success"] * 12
    assert (stats["gets"], stats["opening_posts"], stats["posts"]) == ((4, 0) if primed else (0, 4)) + ({"slow": 12},)


def test_closed_loop_keeps_exactly_concurrency_requests_in_flight(tmp_path: Path) -> None:
    exp = sim_experiment(concurrency_levels=[4], requests_per_level=24, warmup_requests_per_level=2)
    outcome = collect(write_config(tmp_path / "sim.yml", config_dict([exp])), tmp_path / "results")
    assert outcome.status == "completed"
    rows = _rows(
        tmp_path / "results",
        "select sequence_in_level, worker_index, is_warmup, start_offset_ns, start_offset_ns + e2e_ns, status, "
        "first_content_ns, e2e_ns, completion_tokens, client_completion_tokens, token_count_source "
        "from raw.requests order by start_offset_ns",
    )
    assert len(rows) == 26
    assert sorted(r[0] for r in rows) == list(range(26))
    assert {r[0] for r in rows if r[2]} == {0, 1}  # the first two handed out are the warm-up
    assert {r[1] for r in rows} == {0, 1, 2, 3}
    assert all(r[5] == "success" and 0 < r[6] < r[7] for r in rows)
    assert all(r[8] == r[9] and r[10] == "server" for r in rows)
    # the warm-up ends before the measured window opens: no warm-up holds a slot beside a measured request
    warmup, measured = [r for r in rows if r[2]], [r for r in rows if not r[2]]
    assert max(w[4] for w in warmup) <= min(m[3] for m in measured)
    # in flight at each measured start: never above 4, and 4 most of the time (a closed loop, no barriers)
    in_flight = [sum(1 for o in measured if o[3] <= r[3] < o[4]) for r in measured]
    assert max(in_flight) == 4
    assert sum(n == 4 for n in in_flight) >= 20
    # a worker sends its next request as soon as its last one finished: gaps are tiny
    by_worker: dict[int, list] = {}
    for r in measured:
        by_worker.setdefault(r[1], []).append(r)
    gaps = [b[3] - a[4] for w in by_worker.values() for a, b in itertools.pairwise(w)]
    assert max(gaps) < 50_000_000  # 50 ms


@pytest.mark.parametrize("stream", [True, False])
def test_simulator_completions_api_streaming_and_not(tmp_path: Path, stream: bool) -> None:
    exp = sim_experiment(
        endpoint={"type": "simulated", "api_style": "completions", "stream": stream, "speedup": 20},
        concurrency_levels=[2],
        requests_per_level=4,
    )
    collect(write_config(tmp_path / "c.yml", config_dict([exp])), tmp_path / "results")
    rows = _rows(
        tmp_path / "results",
        "select status, api_style, is_streaming, first_content_ns is not null, chunk_count > 0, "
        "completion_tokens = client_completion_tokens from raw.requests",
    )
    assert set(rows) == {("success", "completions", stream, stream, stream, True)}
