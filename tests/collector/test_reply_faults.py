"""Replies no endpoint should send and faults of the collector's own host: each request is still one row.

Runs the load path (client_session + run_level, as `collector run` does) against tests/servers.py on loopback,
and counts the rows against the server's own count of requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import duckdb
import pytest

from collector.clock import RunClock
from collector.config import InferenceParameters
from collector.fdlimit import raise_open_file_limit
from collector.loadgen import Level, Target, client_session, run_level
from collector.payloads import Prompt
from collector.runner import collect
from collector.schema import RequestRow
from collector.tokens import DEFAULT_COUNTER
from tests.conftest import REPO, config_dict, write_config
from tests.servers import BAD_SHAPES, misbehaving_server, server_stats


def _target(base_url: str, mode: str, stream: bool, **overrides: Any) -> Target:
    fields: dict[str, Any] = {
        "run_id": "r",
        "experiment_name": mode,
        "model_id": "m",
        "endpoint_type": "openai",
        "base_url": base_url,
        "api_style": "chat",
        "served_model_name": mode,
        "stream": stream,
        "headers": {},
        "instance_type": None,
        "instance_count": 1,
        "params": InferenceParameters(),
        "timeout": aiohttp.ClientTimeout(total=10),
        "counter": DEFAULT_COUNTER,
    }
    fields.update(overrides)
    return Target(**fields)


def _sweep(target: Target, concurrency: int, requests: int) -> list[RequestRow]:
    """One level through the run's own client; the rows it landed."""

    async def go() -> list[RequestRow]:
        rows: list[RequestRow] = []
        level = Level("b", [Prompt(0, "hello there", None, 2)], concurrency, requests, warmup=0)
        async with client_session(concurrency) as session:
            await run_level(session, target, level, RunClock(), rows.append, asyncio.Event())
        return rows

    return asyncio.run(go())


# What each wrong shape's row says (after "SSE event 2: " streamed, "response: " whole): (streamed, whole).
SHAPE_MESSAGES = {
    "bad-delta-str": ('delta/message is "oops", expected an object', 'delta/message is "oops", expected an object'),
    "bad-delta-int": ("delta/message is 5, expected an object", "delta/message is 5, expected an object"),
    "bad-usage-str": ('usage is "x", expected an object', 'usage is "x", expected an object'),
    "bad-finish-int": ("finish_reason is 5, expected a string", "finish_reason is 5, expected a string"),
    "bad-choices-str": ("malformed choices", "no choices"),
    "deep": ("JSON nested too deeply to parse", "JSON nested too deeply to parse"),
}


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
def test_each_malformed_reply_shape_is_one_malformed_response_row_and_the_level_goes_on(stream: bool) -> None:
    with misbehaving_server() as base_url:
        got = {mode: _sweep(_target(base_url, mode, stream), concurrency=2, requests=3) for mode in BAD_SHAPES}
        after = _sweep(_target(base_url, "ok", stream), concurrency=2, requests=3)
        served = server_stats(base_url)["posts"]
    for mode, rows in got.items():
        assert len(rows) == served[mode] == 3, mode
        assert {(r.status, r.error_type, r.http_status) for r in rows} == {("error", "malformed_response", 200)}, mode
        where, what = ("SSE event 2", SHAPE_MESSAGES[mode][0]) if stream else ("response", SHAPE_MESSAGES[mode][1])
        assert {(r.error_message or "").partition(" b'")[0] for r in rows} == {f"{where}: {what}"}, mode
    assert [r.status for r in after] == ["success"] * 3


def test_a_malformed_reply_mid_stream_keeps_the_events_before_it() -> None:
    with misbehaving_server() as base_url:
        (row,) = _sweep(_target(base_url, "bad-delta-str", True), concurrency=1, requests=1)
    assert (
        row.error_message
        == 'SSE event 2: delta/message is "oops", expected an object b\'{"choices": [{"index": 0, "delta": "oops"}]}\''
    )
    assert (row.chunk_count, row.content_chunk_count, row.client_completion_tokens) == (2, 1, 1)


@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
def test_a_100_mib_reply_without_newline_is_one_error_row_and_does_not_stall_the_others(stream: bool) -> None:
    with misbehaving_server() as base_url:
        started = time.perf_counter()
        rows = _sweep(_target(base_url, "huge-line-once", stream), concurrency=4, requests=40)
        elapsed = time.perf_counter() - started
        served = server_stats(base_url)["posts"]["huge-line-once"]
    errors = [r for r in rows if r.status != "success"]
    assert len(rows) == served == 40
    assert [(r.error_type, r.sequence_in_level) for r in errors] == [("malformed_response", 0)]
    assert "stopped reading" in (errors[0].error_message or "")
    assert elapsed < 5, f"the level took {elapsed:.1f} s"
    # the other requests were not held up while the huge one was read: a normal reply takes ~10 ms here
    others = sorted(r.e2e_ns for r in rows if r.status == "success")
    assert others[len(others) // 2] < 200_000_000


def test_a_reply_announcing_a_body_over_the_bound_is_not_read() -> None:
    with misbehaving_server() as base_url:
        rows = _sweep(_target(base_url, "huge-length", False), concurrency=1, requests=2)
    assert [(r.error_type, r.error_message) for r in rows] == [
        ("malformed_response", "response of 104857600 bytes exceeds 67108864; not read")
    ] * 2
    assert all(r.e2e_ns < 1_000_000_000 for r in rows)  # not the 10 s timeout


def test_an_api_key_echoed_in_an_error_body_is_stored_as_stars() -> None:
    short_key, long_key = "sk-test-0123456789abcdef", "sk-long-" + "0123456789" * 40  # the long one is cut at 300
    rows = []
    with misbehaving_server() as base_url:
        for key in (short_key, long_key):
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
            rows += [(key, r) for r in _sweep(_target(base_url, "echo-auth", True, headers=headers), 1, 1)]
    for key, row in rows:
        message = row.error_message or ""
        assert (row.error_type, row.http_status) == ("http_error", 401)
        if key == short_key:  # the gateway's whole body, the key in it starred (the long one is cut at 300)
            assert message == 'HTTP 401: {"error": {"message": "Incorrect API key provided: ***"}}'
        assert message.startswith("HTTP 401: ") and "***" in message
        assert not any(key[i : i + 8] in message for i in range(len(key) - 7)), message


def test_a_request_the_client_cannot_send_is_one_client_error_row() -> None:
    # e.g. an API key read from a file with its newline: aiohttp refuses the header before sending anything
    headers = {"Authorization": "Bearer sk-test-0123456789\n"}
    with misbehaving_server() as base_url:
        rows = _sweep(_target(base_url, "ok", True, headers=headers), concurrency=2, requests=4)
        served = server_stats(base_url)["posts"]
    assert [(r.status, r.error_type) for r in rows] == [("error", "client_error")] * 4
    assert served == {}
    assert all("not the endpoint" in (r.error_message or "") for r in rows)
    assert all("sk-test-0123456789" not in (r.error_message or "") for r in rows)


def _landed(results: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(results / "tokenbench.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _collect_modes(tmp_path: Path, modes: list[str]) -> tuple[Path, dict[str, Any]]:
    """`collector run` over one experiment per (mode, streamed or not); the results folder and the server's stats."""
    with misbehaving_server() as base_url:
        experiments = [
            {
                "name": f"{mode}-{'sse' if stream else 'json'}",
                "model_id": "m",
                "endpoint": {"type": "openai", "base_url": base_url, "served_model_name": mode, "stream": stream},
                "instance_type": "g5.4xlarge",
                "concurrency_levels": [1],
                "requests_per_level": 2,
                "warmup_requests_per_level": 0,
                "payloads": ["short"],
                "request_timeout_s": 5,
            }
            for mode in modes
            for stream in (True, False)
        ]
        outcome = collect(write_config(tmp_path / "c.yml", config_dict(experiments)), tmp_path / "results")
        stats = server_stats(base_url)
    assert outcome.status == "completed"
    return tmp_path / "results", stats


def test_gzip_and_deflate_replies_land_as_successes_with_their_token_counts(tmp_path: Path) -> None:
    results, stats = _collect_modes(tmp_path, ["gzip", "deflate"])
    rows = _landed(
        results,
        "select experiment_name, status, completion_tokens, token_count_source, client_completion_tokens, "
        "content_chunk_count, count(*) from raw.requests group by all order by 1",
    )
    assert rows == [
        ("deflate-json", "success", 3, "server", 3, 0, 2),
        ("deflate-sse", "success", 3, "server", 3, 3, 2),
        ("gzip-json", "success", 3, "server", 3, 0, 2),
        ("gzip-sse", "success", 3, "server", 3, 3, 2),
    ]
    # the client asks for no compression (these servers compress anyway)
    assert set(stats["accept_encodings"]) == {"identity"}
    assert stats["posts"] == {"gzip": 4, "deflate": 4}


def test_usage_counts_that_are_not_token_counts_give_way_to_client_counts_with_the_raw_value_recorded(
    tmp_path: Path,
) -> None:
    issues = {
        "usage-negative": "usage.completion_tokens=-5 out of range [0, 1e9]; client count used",
        "usage-3e9": "usage.completion_tokens=3000000000 out of range [0, 1e9]; client count used",
        "usage-1e30": "usage.completion_tokens=1e+30 is not an integer; client count used",
        "usage-bool": "usage.prompt_tokens=true is not an integer; client count used",
        "usage-string": 'usage.prompt_tokens="7" is not an integer; client count used',
        "ok": None,
    }
    results, _stats = _collect_modes(tmp_path, list(issues))
    rows = _landed(
        results,
        "select regexp_replace(experiment_name, '-(sse|json)$', ''), status, token_count_source, "
        "prompt_tokens = client_prompt_tokens, completion_tokens, data_issue, count(*) "
        "from raw.requests group by all",
    )
    got = {r[0]: r[1:] for r in rows}
    assert len(rows) == len(issues)  # streamed and not land alike
    for mode, issue in issues.items():
        if issue is None:
            assert got[mode] == ("success", "server", False, 3, None, 4), mode  # the server's 7 prompt tokens
        else:
            assert got[mode] == ("success", "client", True, 3, issue, 4), mode


def test_the_soft_open_file_limit_is_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"hard open-file limit {hard} leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        warning = raise_open_file_limit(1000)
        raised, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert warning is None
    assert raised == hard if hard != resource.RLIM_INFINITY else raised >= 1000 + 64


_FD_STARVED = textwrap.dedent("""
    import asyncio, dataclasses, json, resource, sys
    from tests.collector.test_reply_faults import _sweep, _target
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # after the imports: no file needs opening from here
    rows = _sweep(_target(sys.argv[1], "slow", True), concurrency=100, requests=300)
    for row in rows:
        print(json.dumps(dataclasses.asdict(row)))
""")


def test_running_out_of_file_descriptors_lands_client_error_rows_and_the_level_completes() -> None:
    # In a child process, so this one keeps its limits; the server runs here, outside the child's limit.
    with misbehaving_server() as base_url:
        child = subprocess.run(
            [sys.executable, "-c", _FD_STARVED, base_url],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        served = server_stats(base_url)["posts"].get("slow", 0)
    assert child.returncode == 0, child.stderr[-2000:]
    rows = [json.loads(line) for line in child.stdout.splitlines()]
    assert len(rows) == 300
    assert len({r["request_id"] for r in rows}) == 300
    outcomes = {(r["status"], r["error_type"]) for r in rows}
    assert outcomes == {("success", None), ("error", "client_error")}
    assert sum(r["status"] == "success" for r in rows) == served
    failed = next(r for r in rows if r["error_type"] == "client_error")
    assert "ran out of file descriptors" in failed["error_message"] and "EMFILE" in failed["error_message"]
    # one warning line about the limit, and no traceback
    assert child.stderr.strip().splitlines() == [child.stderr.strip()]
    assert child.stderr.startswith("warning: concurrency 100 needs about 164 open files but this process may open 64")


def test_json_nesting_is_measured_outside_strings_and_absurd_nesting_is_refused_before_parsing() -> None:
    import json as _json

    from collector.apis.common import MAX_NESTING, decode, nesting_exceeds

    # brackets inside strings, escaped quotes and escaped backslashes do not count
    text = _json.dumps({"text": "[" * 5000 + '\\"{{' + "\\", "usage": [[1]]})
    assert not nesting_exceeds(text, 3) and decode(text)["usage"] == [[1]]
    assert nesting_exceeds("[" * 4 + "]" * 4, 3)
    deep = '{"choices": ' + "[" * (MAX_NESTING + 300) + "]" * (MAX_NESTING + 300) + "}"  # long enough to be measured
    with pytest.raises(RecursionError, match="nested deeper than"):  # every caller reports it as malformed
        decode(deep)
