"""End to end, open loop: rate levels and a rate sweep through the real CLI against the simulator, then the raw
rows and the marts' schedule, validity and throughput checked against a recomputation from those rows."""

from __future__ import annotations

from typing import Any

import pytest

from collector.load_models import ladder
from tests.conftest import fetch, quantile_cont

pytestmark = pytest.mark.slow


def test_every_open_loop_request_records_its_intended_and_actual_send(open_loop_run: dict[str, Any]) -> None:
    rows = fetch(
        open_loop_run["warehouse"],
        "select target_rate_rps, is_warmup, count(*), count(intended_offset_ns), "
        "bool_and(start_offset_ns >= intended_offset_ns), any_value(load_model), any_value(concurrency) "
        "from raw.requests where experiment_name = 'rates' group by all order by all",
    )
    # Warm-up requests are sent closed-loop before the schedule: no intended time.
    assert rows == [
        (rate, warmup, 1 if warmup else 30, 0 if warmup else 30, None if warmup else True, "rate", 2)
        for rate in (10.0, 400.0)
        for warmup in (False, True)
    ]
    # Constant arrivals: intended sends exactly 100 ms apart.
    (gaps,) = fetch(
        open_loop_run["warehouse"],
        "select list(distinct gap) from (select intended_offset_ns - lag(intended_offset_ns) over "
        "(order by sequence_in_level) as gap from raw.requests where target_rate_rps = 10 and not is_warmup) "
        "where gap is not null",
    )
    assert [round(g / 1e6, 3) for g in gaps[0]] == [100.0]


def test_the_marts_judge_each_level_by_its_own_send_lag(open_loop_run: dict[str, Any]) -> None:
    lags = fetch(
        open_loop_run["warehouse"],
        "select target_rate_rps, list((start_offset_ns - intended_offset_ns) / 1e9) from raw.requests "
        "where experiment_name = 'rates' and not is_warmup group by all",
    )
    marts = {
        r[0]: r[1:]
        for r in fetch(
            open_loop_run["warehouse"],
            "select target_rate_rps, send_lag_p99, is_schedule_kept, offered_request_rate, meets_all_budgets "
            "from marts.fct_concurrency_metrics where experiment_name = 'rates'",
        )
    }
    for rate, values in lags:
        p99, kept, offered, meets = marts[rate]
        assert p99 == pytest.approx(quantile_cont(values, 0.99), rel=1e-9)
        assert kept == (p99 <= 0.01) and offered == pytest.approx(rate, rel=1e-9)
        assert not meets or kept
    # 400/s through 2 slots of replies taking tens of ms: the sends fell far behind, so the level is invalid.
    assert marts[400.0][0] > 0.1 and marts[400.0][1] is False and marts[400.0][3] is False


def test_a_rate_level_that_kept_up_reports_the_rate_it_sustained(open_loop_run: dict[str, Any]) -> None:
    (level,) = fetch(
        open_loop_run["warehouse"],
        "select throughput_window, transactions_per_minute / 60, is_saturated from marts.fct_concurrency_metrics "
        "where target_rate_rps = 10",
    )
    ends = sorted(
        e
        for (e,) in fetch(
            open_loop_run["warehouse"],
            "select start_offset_ns + e2e_ns from raw.requests where target_rate_rps = 10 and not is_warmup "
            "and status = 'success'",
        )
    )
    # The schedule (2.9 s) shifted to the first reply's end holds the later replies that ended within it.
    within = [e for e in ends[1:] if e <= ends[0] + 2_900_000_000]
    assert level[0] == "scheduled_interval" and level[2] is False
    assert level[1] == pytest.approx(len(within) / 2.9, rel=1e-9)
    assert level[1] == pytest.approx(10, rel=0.1)


def test_a_sweeps_rates_climb_from_its_closed_levels_floor_to_their_ceiling(open_loop_run: dict[str, Any]) -> None:
    measured = fetch(
        open_loop_run["warehouse"],
        "select concurrency, count(*) filter (where status = 'success') "
        "/ ((max(start_offset_ns + e2e_ns) - min(start_offset_ns)) / 1e9) from raw.requests "
        "where experiment_name = 'sweep' and load_model = 'closed' and not is_warmup group by all",
    )
    rates = [
        r
        for (r,) in fetch(
            open_loop_run["warehouse"],
            "select distinct target_rate_rps from raw.requests where "
            "experiment_name = 'sweep' and target_rate_rps is not null order by 1",
        )
    ]
    per_s = [r for _, r in measured]
    expected = ladder(min(per_s), max(per_s), 2)
    # The ladder stops at the first saturated rate: the rates run are the ladder's first ones.
    assert rates == expected[: len(rates)] and rates
    saturated = fetch(
        open_loop_run["warehouse"],
        "select target_rate_rps, is_saturated from marts.fct_concurrency_metrics where experiment_name = 'sweep' "
        "and target_rate_rps is not null order by 1",
    )
    assert all(not s for _, s in saturated[:-1])
    if len(rates) < len(expected):
        assert saturated[-1][1] is True
