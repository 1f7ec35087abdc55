"""The open-loop levels in the app's Sweep page and the report: the rate chart, the levels' rates, schedule and
saturation columns, and the sentence setting apart a level whose client fell behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.app_helpers import charts_of, mart, texts

pytestmark = pytest.mark.slow


def test_the_sweep_page_draws_open_loop_levels_by_offered_rate(
    app_on: Callable[..., AppTest], open_loop_run: dict[str, Any]
) -> None:
    levels = mart(
        open_loop_run["warehouse"],
        "select * from marts.fct_concurrency_metrics where experiment_name = 'rates' order by target_rate_rps",
    )
    at = app_on(open_loop_run["warehouse"])
    at.run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="sweep_experiments").set_value(["rates"]).run()
    charts = {c["title"]: c for c in charts_of(at) if isinstance(c.get("title"), str)}
    rate = charts["Offered rate vs served rate and latency (open loop)"]
    points = next(f for f in rate["datasets"].values() if "served_rps" in f.columns).sort_values("target_rate_rps")
    assert points["served_rps"].round(9).tolist() == (levels["transactions_per_minute"] / 60).round(9).tolist()
    kept = "kept up" if levels["is_schedule_kept"].iloc[0] else "client fell behind"
    assert points["state"].tolist() == [kept, "client fell behind"]
    # No closed-loop level among the shown: the concurrency charts say where the levels are.
    assert "Only open-loop (rate) levels: see the rate chart" in texts(at)
    assert "rates on short at a request rate of 400 per second (open loop) is invalid" in texts(at)
    table = next(e.value for e in at.dataframe if "Schedule" in e.value.columns)
    assert table["Target rate (req/s)"].tolist() == [10.0, 400.0]
    assert table["Schedule"].tolist()[1] == "LATE" and table["All budgets"].tolist()[1] == "FAIL"


def test_the_run_report_carries_the_rate_chart_and_the_invalid_level(open_loop_run: dict[str, Any]) -> None:
    (report,) = (open_loop_run["results"] / "reports").glob("*/report.md")
    text = report.read_text()
    assert "(rate_curve.png)" in text and (report.parent / "rate_curve.png").stat().st_size > 0
    assert "rates on short at a request rate of 400 per second (open loop) is invalid" in text


def test_the_sweep_page_shows_a_repeated_levels_spread(
    app_on: Callable[..., AppTest], open_loop_run: dict[str, Any]
) -> None:
    (level,) = mart(
        open_loop_run["warehouse"],
        "select * from marts.fct_concurrency_metrics where experiment_name = 'repeated'",
    ).to_dict("records")
    at = app_on(open_loop_run["warehouse"])
    at.run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    at.multiselect(key="sweep_experiments").set_value(["repeated"]).run()
    throughput = next(c for c in charts_of(at) if c["title"].startswith("Concurrency vs throughput"))
    assert throughput["spec"]["title"]["subtitle"] == ["Bars: lowest to highest over each level's 3 repeats."]
    bars = next(f for f in throughput["datasets"].values() if "spread_text" in f.columns)
    assert bars["transactions_per_minute_repeat_min"].tolist() == [level["transactions_per_minute_repeat_min"]]
    assert bars["transactions_per_minute_repeat_max"].tolist() == [level["transactions_per_minute_repeat_max"]]
    table = next(e.value for e in at.dataframe if "Repeats" in e.value.columns)
    assert table["Repeats"].tolist() == [3]
