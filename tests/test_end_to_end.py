"""End to end: the real CLI against the simulator on 127.0.0.1, then the raw tables and the marts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import fetch, quantile_cont

pytestmark = pytest.mark.slow


def _query(e2e: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    return fetch(e2e["warehouse"], sql)


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
    # The last line says how to open the app on this run's warehouse.
    assert e2e_run["stdout"].splitlines()[-1] == f"explore: python -m collector app --warehouse {e2e_run['warehouse']}"
    assert "concurrency 4" in e2e_run["stderr"] and "9/9 requests, 0 errors" in e2e_run["stderr"]


def test_cli_run_logs_one_line_per_level_in_sweep_order_with_the_runs_eta(e2e_run: dict[str, Any]) -> None:
    lines = [line for line in e2e_run["stderr"].splitlines() if line.startswith("level ")]
    pattern = re.compile(r"level (\d+) of (\d+) \| (\S+) \| (\S+) \| concurrency (\d+) \| 9/9 requests, 0 errors \| ")
    got = [m.groups() if (m := pattern.match(line)) else line for line in lines]
    order = [  # experiments in order; concurrency outer, bucket inner
        (exp, bucket, concurrency)
        for exp in ("llama8b-g5-stackA", "llama8b-g5-stackB")
        for concurrency in (1, 4)
        for bucket in ("short", "en_500-1000")
    ]
    assert got == [(str(i), "8", exp, bucket, str(c)) for i, (exp, bucket, c) in enumerate(order, 1)]
    assert "\r" not in e2e_run["stderr"]  # not a terminal: no line is redrawn
    assert all(" | p50 " in line for line in lines)
    assert all(" | ETA " in line for line in lines[:-1]) and " | ETA " not in lines[-1]
    assert lines[-1].endswith(" | run 72/72 requests")


def _recomputed_levels(e2e: dict[str, Any]) -> dict[tuple, tuple]:
    """Each level's figures recomputed in Python from raw.requests, in the order the metrics test compares them:
    requests, errors, latency p50/p95/p99, TTFT p95, TPOT p50, transactions per minute, completion tokens/s,
    mean prompt tokens, price per transaction, per token, cost per 10k transactions."""
    raw = _query(
        e2e,
        "select experiment_name, payload_file, concurrency, status, start_offset_ns, e2e_ns, first_content_ns, "
        "prompt_tokens, completion_tokens from raw.requests where not is_warmup",
    )
    levels: dict[tuple, list[tuple]] = {}
    for r in raw:
        levels.setdefault(r[:3], []).append(r)
    expected = {}
    for key, rows in levels.items():
        ok = [r for r in rows if r[3] == "success"]
        lat = [r[5] / 1e9 for r in ok]
        ttft = [r[6] / 1e9 for r in ok]
        tpot = [(r[5] - r[6]) / 1e9 / (r[8] - 1) for r in ok if r[8] >= 2]
        # Steady state: the requests that ended by the first end after the level's last start ran with
        # `concurrency` in flight; by Little's law, concurrency x their successes / their summed latency, given
        # one per slot at least; else the level's whole span.
        last_start = max(r[4] for r in rows)
        ramp_down = min(r[4] + r[5] for r in rows if r[4] + r[5] > last_start)
        steady = [r for r in rows if r[4] + r[5] <= ramp_down]
        concurrency = key[2]
        if len(steady) >= concurrency:
            slot_s = sum(r[5] for r in steady) / 1e9
            tpm = concurrency * sum(r[3] == "success" for r in steady) * 60 / slot_s
            completion_rate = concurrency * sum(r[8] for r in steady if r[3] == "success") / slot_s
        else:
            span_s = (max(r[4] + r[5] for r in rows) - min(r[4] for r in rows)) / 1e9
            tpm = len(ok) * 60 / span_s
            completion_rate = sum(r[8] for r in ok) / span_s
        prompt_mean = sum(r[7] for r in ok) / len(ok)
        completion_mean = sum(r[8] for r in ok) / len(ok)
        price = 1.624 * 1 / 60 / tpm  # g5.4xlarge, one instance
        expected[key] = (
            len(rows),
            len(rows) - len(ok),
            quantile_cont(lat, 0.5),
            quantile_cont(lat, 0.95),
            quantile_cont(lat, 0.99),
            quantile_cont(ttft, 0.95),
            quantile_cont(tpot, 0.5),
            tpm,
            completion_rate,
            prompt_mean,
            price,
            price / (prompt_mean + completion_mean),
            price * 10_000,
        )
    return expected


def _meets_all_budgets(level: tuple) -> bool:
    """The run's budgets (e2e_config): p95 latency within 0.3 s, cost per 10k within $20, no errors."""
    return level[3] <= 0.3 and level[12] <= 20 and level[1] == 0


def test_concurrency_metrics_equal_a_python_recomputation_from_raw_rows(e2e_run: dict[str, Any]) -> None:
    levels = _recomputed_levels(e2e_run)
    marts = {
        r[:3]: r[3:]
        for r in _query(
            e2e_run,
            "select experiment_name, payload_file, concurrency, request_count, error_count, latency_p50, latency_p95, "
            "latency_p99, ttft_p95, tpot_p50, transactions_per_minute, completion_token_throughput, "
            "prompt_token_count_mean, price_per_txn, price_per_token, cost_per_10k_txn, meets_latency_budget, "
            "meets_all_budgets from marts.fct_concurrency_metrics",
        )
    }
    assert set(marts) == set(levels)
    for key, expected in levels.items():
        got = marts[key]
        assert got[:2] == expected[:2], key
        assert got[2:13] == pytest.approx(expected[2:], rel=1e-9), key
        assert got[13] == (expected[3] <= 0.3) and got[14] == (got[13] and expected[12] <= 20), key


def test_recommendations_keep_each_serving_stack_apart(e2e_run: dict[str, Any]) -> None:
    recs = _query(
        e2e_run,
        "select payload_file, experiment_name, instance_type, concurrency_level_count, passing_level_count, "
        "has_recommendation, concurrency, latency_p95, transactions_per_minute "
        "from marts.fct_recommendations order by payload_file, experiment_name",
    )
    assert [r[:2] for r in recs] == [
        ("en_500-1000", "llama8b-g5-stackA"),
        ("en_500-1000", "llama8b-g5-stackB"),
        ("short", "llama8b-g5-stackA"),
        ("short", "llama8b-g5-stackB"),
    ]
    # Each stack's recommendation is chosen from its own levels alone, recomputed from the raw rows: the highest
    # concurrency meeting every budget, with that level's own figures.
    levels = _recomputed_levels(e2e_run)
    for bucket, experiment, instance_type, level_count, passing_count, has_rec, concurrency, p95, tpm in recs:
        own = {c: figures for (exp, b, c), figures in levels.items() if (exp, b) == (experiment, bucket)}
        passing = sorted(c for c, figures in own.items() if _meets_all_budgets(figures))
        where = (bucket, experiment)
        assert (instance_type, level_count, passing_count) == ("g5.4xlarge", 2, len(passing)), where
        assert has_rec == bool(passing), where
        if passing:
            best = own[passing[-1]]
            assert concurrency == passing[-1], where
            assert (p95, tpm) == pytest.approx((best[3], best[7]), rel=1e-9), where
        else:
            assert (concurrency, p95, tpm) == (None, None, None), where
