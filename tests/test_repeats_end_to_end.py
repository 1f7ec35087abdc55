"""End to end, repeats: a level run three times through the real CLI, then the raw rows, the pooled figures and
the spread across repeats checked against a recomputation from those rows, and the collector's event-loop lag."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import fetch, quantile_cont

pytestmark = pytest.mark.slow


def test_each_repeat_runs_the_whole_level_and_its_rows_say_which(open_loop_run: dict[str, Any]) -> None:
    rows = fetch(
        open_loop_run["warehouse"],
        "select repeat_index, count(*) filter (where is_warmup), count(*) filter (where not is_warmup), "
        "min(start_offset_ns), max(start_offset_ns + e2e_ns) "
        "from raw.requests where experiment_name = 'repeated' group by all order by all",
    )
    assert [r[:3] for r in rows] == [(1, 1, 8), (2, 1, 8), (3, 1, 8)]
    # Back to back: a repeat starts after the one before it ended.
    assert all(rows[i + 1][3] >= rows[i][4] for i in range(2))
    for k in (1, 2, 3):
        assert f"| repeated | short | concurrency 2, repeat {k}/3 | 9/9 requests" in open_loop_run["stderr"]


def test_the_marts_pool_the_repeats_and_give_their_spread(open_loop_run: dict[str, Any]) -> None:
    warehouse = open_loop_run["warehouse"]
    by_repeat = {
        k: (latencies, start, end)
        for k, latencies, start, end in fetch(
            warehouse,
            "select repeat_index, list(e2e_ns / 1e9) filter (where status = 'success'), min(start_offset_ns), "
            "max(start_offset_ns + e2e_ns) from raw.requests where experiment_name = 'repeated' and not is_warmup "
            "group by all",
        )
    }
    ((count, p95, p95_min, p95_median, p95_max, duration, tpm, tpm_min, tpm_max),) = fetch(
        warehouse,
        "select repeat_count, latency_p95, latency_p95_repeat_min, latency_p95_repeat_median, latency_p95_repeat_max, "
        "duration_s, transactions_per_minute, transactions_per_minute_repeat_min, transactions_per_minute_repeat_max "
        "from marts.fct_concurrency_metrics where experiment_name = 'repeated'",
    )
    own = sorted(quantile_cont(latencies, 0.95) for latencies, _, _ in by_repeat.values())
    pooled = [v for latencies, _, _ in by_repeat.values() for v in latencies]
    assert count == 3
    assert p95 == pytest.approx(quantile_cont(pooled, 0.95), rel=1e-9)
    assert (p95_min, p95_median, p95_max) == pytest.approx(tuple(own), rel=1e-9)
    # The span adds each repeat's own, the pauses between them left out.
    assert duration == pytest.approx(sum((end - start) / 1e9 for _, start, end in by_repeat.values()), rel=1e-9)
    repeats = sorted(
        t
        for (t,) in fetch(
            warehouse,
            "select transactions_per_minute from intermediate.int_level_repeats_aggregated "
            "where experiment_name = 'repeated'",
        )
    )
    assert (tpm_min, tpm_max) == pytest.approx((repeats[0], repeats[-1]), rel=1e-9)
    assert tpm_min <= tpm <= tpm_max


def test_the_collectors_event_loop_lag_is_sampled_through_each_level(open_loop_run: dict[str, Any]) -> None:
    warehouse = open_loop_run["warehouse"]
    levels = fetch(
        warehouse,
        "select concurrency, target_rate_rps, level_start_offset_ns, level_end_offset_ns, event_loop_lag_p99, "
        "event_loop_lag_max from marts.fct_concurrency_metrics where experiment_name = 'rates' order by 2",
    )
    samples = fetch(
        warehouse,
        "select offset_ns, event_loop_lag_s, device, hostname from raw.telemetry_samples "
        "where source = 'client' and experiment_name = 'rates'",
    )
    assert {(device, bool(host)) for _, _, device, host in samples} == {("event_loop", True)}
    for _, _, start, end, p99, lag_max in levels:
        within = [lag for offset, lag, _, _ in samples if start <= offset <= end]
        assert len(within) >= (end - start) // 100_000_000 - 1  # one every 0.1 s of the level
        assert p99 == pytest.approx(quantile_cont(within, 0.99), rel=1e-9)
        assert lag_max == max(within)
