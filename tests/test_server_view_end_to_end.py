"""End to end: the real CLI against the simulator (which serves vLLM's /metrics) scrapes the engine's own view, and
the marts hold the server's token totals equal to the client's, level by level, exactly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import fetch

pytestmark = pytest.mark.slow


def _query(e2e: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    return fetch(e2e["warehouse"], sql)


def test_each_level_has_its_two_edge_scrapes_with_nothing_in_flight(e2e_run: dict[str, Any]) -> None:
    rows = _query(
        e2e_run,
        "select experiment_name, level_boundary, count(*), max(server_requests_running), "
        "max(server_requests_waiting) from raw.telemetry_samples where source = 'server:vllm' "
        "and level_boundary is not null group by all order by all",
    )
    assert rows == [
        (exp, edge, 4, 0.0, 0.0)  # 2 levels x 2 buckets, idle at every edge
        for exp in ("llama8b-g5-stackA", "llama8b-g5-stackB")
        for edge in ("measured_end", "measured_start")
    ]
    assert "experiment llama8b-g5-stackA: scraping vllm metrics at http://127.0.0.1:" in e2e_run["stderr"]


def test_server_token_totals_equal_the_clients_exactly_on_every_level(e2e_run: dict[str, Any]) -> None:
    client = _query(
        e2e_run,
        "select experiment_name, payload_file, concurrency, sum(prompt_tokens), sum(completion_tokens), count(*) "
        "from raw.requests where not is_warmup group by all order by all",
    )
    server = _query(
        e2e_run,
        "select experiment_name, payload_file, concurrency, server_prompt_tokens, server_generation_tokens, "
        "server_finished_requests from marts.fct_level_server_view order by all",
    )
    assert len(client) == 8
    assert server == client
    flags = _query(
        e2e_run,
        "select bool_and(is_token_total_matching), bool_or(is_token_total_mismatch), "
        "max(abs(prompt_tokens_difference)), max(abs(completion_tokens_difference)), bool_and(has_window_edges), "
        "min(engine), max(engine) from marts.fct_level_server_view",
    )
    assert flags == [(True, False, 0, 0, True, "vllm", "vllm")]


def test_server_latency_is_inside_the_clients_and_the_gap_is_what_is_left(e2e_run: dict[str, Any]) -> None:
    rows = _query(
        e2e_run,
        "select v.client_mean_e2e_s, m.latency_mean, v.server_mean_e2e_s, v.e2e_gap_s, v.server_mean_ttft_s, "
        "v.client_mean_ttft_s, v.server_mean_queue_time_s from marts.fct_level_server_view as v "
        "join marts.fct_concurrency_metrics as m using (run_id, experiment_name, payload_file, concurrency)",
    )
    assert len(rows) == 8
    for client, mart_mean, server, gap, server_ttft, client_ttft, queue in rows:
        assert client == pytest.approx(mart_mean)  # the same requests as the level's metrics
        assert 0 < server < client and gap == pytest.approx(client - server)
        assert 0 < server_ttft < client_ttft and 0 <= queue < server_ttft


def test_queue_depth_and_running_batch_stay_within_the_levels_concurrency(e2e_run: dict[str, Any]) -> None:
    rows = _query(
        e2e_run,
        "select concurrency, max_requests_running, max_requests_waiting, max_kv_cache_usage from "
        "marts.fct_level_server_view where gauge_sample_count > 0",
    )
    for concurrency, running, waiting, kv in rows:
        assert running + waiting <= concurrency and 0 <= kv <= 1


def test_the_report_shows_the_servers_view(e2e_run: dict[str, Any]) -> None:
    report = (e2e_run["results"] / "reports" / e2e_run["run_id"] / "report.md").read_text()
    section = report.split("### Server's view")[1].split("### Configuration")[0]
    assert "| Token totals |" in section and section.count("| match |") == 8
    assert "differ" not in section
