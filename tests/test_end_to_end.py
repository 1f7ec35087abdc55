"""End to end: the real CLI against the simulator on 127.0.0.1, then the raw tables and the marts."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

pytestmark = pytest.mark.slow


def _query(e2e: dict[str, Any], sql: str) -> list[tuple]:
    con = duckdb.connect(str(e2e["warehouse"]), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_cli_run_lands_one_row_per_request_with_complete_timings(e2e_run: dict[str, Any]) -> None:
    rows = _query(
        e2e_run,
        "select experiment_name, payload_file, concurrency, count(*), sum(is_warmup::int), "
        "count(distinct worker_index), bool_and(status = 'success') from raw.requests group by all order by all",
    )
    assert len(rows) == 8  # 2 experiments x 2 buckets x 2 levels
    for exp, bucket, conc, n, warm, workers, ok in rows:
        assert (n, warm, workers, ok) == (9, 1, conc, True), (exp, bucket, conc)
    bad = _query(
        e2e_run,
        "select count(*) from raw.requests where not (first_chunk_ns <= first_content_ns "
        "and first_content_ns <= last_content_ns and last_content_ns <= e2e_ns and chunk_count >= content_chunk_count "
        "and content_chunk_count = completion_tokens and prompt_tokens >= client_prompt_tokens)",
    )
    assert bad == [(0,)]


def test_cli_run_records_the_manifest_and_telemetry(e2e_run: dict[str, Any]) -> None:
    (run,) = _query(
        e2e_run,
        "select run_id, run_name, status, ended_at > started_at, latency_budget_s, dataset_of_interest, "
        "json_array_length(experiments_json), experiments_json->>'$[0].usd_per_hour', "
        "config_json->>'$.experiments[0].endpoint.type', package_versions_json->>'$.duckdb' is not null "
        "from raw.runs",
    )
    assert run == (e2e_run["run_id"], "e2e", "completed", True, 0.3, "en_500-1000", 2, "1.624", "simulated", True)
    (host,) = _query(
        e2e_run,
        "select count(*), min(cpu_percent) >= 0, max(cpu_percent) <= 100, min(memory_used_bytes) > 0 "
        "from raw.telemetry_samples where device = 'host'",
    )
    assert host[0] >= 5 and host[1:] == (True, True, True)


def test_cli_run_prints_where_the_results_are(e2e_run: dict[str, Any]) -> None:
    assert f"raw rows: {e2e_run['results'] / 'raw' / e2e_run['run_id']}" in e2e_run["stdout"]
    assert f"warehouse: {e2e_run['warehouse']}" in e2e_run["stdout"]
    assert "concurrency 4" in e2e_run["stderr"] and "9/9 requests, 0 errors" in e2e_run["stderr"]
