"""The Requests page's figures on the end-to-end warehouse (AppTest): the histograms in the figures' units over
the successful requests only, the table in the same units, and what a page says when a chart has nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from streamlit.testing.v1 import AppTest

from collector.outputs import figures
from tests.app.app_helpers import charts_of, mart, texts, warehouse_copy


def _requests_page(at: AppTest) -> AppTest:
    at.run()
    at.switch_page("views/requests.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _histograms(at: AppTest) -> dict[str, pd.DataFrame]:
    """Each histogram's bars, by chart title."""
    out = {}
    for chart in charts_of(at):
        (bars,) = [f for f in chart["datasets"].values() if "bin_start" in f.columns]
        out[chart["title"]] = bars
    return out


def test_requests_histograms_and_table_show_ttft_in_ms_up_to_the_slowest_request(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any]
) -> None:
    ok = mart(e2e_run["warehouse"], "select * from marts.fct_requests where status = 'success' and not is_warmup")
    at = _requests_page(app_on(e2e_run["warehouse"]))
    bars = _histograms(at)
    assert list(bars) == ["Latency", "TTFT", "TPOT"]
    for title, column in (("Latency", "e2e_latency_s"), ("TTFT", "ttft_s"), ("TPOT", "tpot_s")):
        scale = figures.figure(column).scale
        # The bars run from the fastest successful request to the slowest, in the figure's unit.
        assert abs(bars[title]["bin_start"].min() - ok[column].min() * scale) < 1e-9 * scale, title
        assert abs(bars[title]["bin_end"].max() - ok[column].max() * scale) < 1e-9 * scale, title
        assert bars[title]["request_count"].sum() == ok[column].notna().sum(), title
    table = next(e.value for e in at.dataframe if "request_id" in e.value.columns)
    mart_ttft = ok.set_index("request_id")["ttft_s"]
    shown = table.set_index("request_id")["ttft_s"].dropna()
    assert len(shown) > 0
    assert shown.tolist() == [figures.figure("ttft_s").value(mart_ttft[r]) for r in shown.index]


def test_failed_requests_are_left_out_of_the_histograms_and_counted_in_a_caption(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], tmp_path: Path
) -> None:
    # The slowest requests time out: their end-to-end time is how long they took to fail, not a latency.
    warehouse = warehouse_copy(
        e2e_run["warehouse"],
        tmp_path,
        "update marts.fct_requests set status = 'error', is_success = false, error_type = 'timeout', "
        "e2e_latency_s = 30 where concurrency = 4 and not is_warmup",
    )
    failed = mart(warehouse, "select count(*) as n from marts.fct_requests where status = 'error' and not is_warmup")
    slowest_ok = mart(
        warehouse, "select max(e2e_latency_s) as s from marts.fct_requests where status = 'success' and not is_warmup"
    )
    at = _requests_page(app_on(warehouse))
    latency = _histograms(at)["Latency"]
    assert abs(latency["bin_end"].max() - slowest_ok["s"].iloc[0]) < 1e-9  # no bar reaches the 30 s failures
    assert f"{int(failed['n'].iloc[0]):,} failed request(s) left out" in texts(at)


def test_a_run_that_was_not_streamed_says_why_it_has_no_ttft_or_tpot(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any], tmp_path: Path
) -> None:
    warehouse = warehouse_copy(
        e2e_run["warehouse"], tmp_path, "update marts.fct_requests set ttft_s = null, tpot_s = null"
    )
    at = _requests_page(app_on(warehouse))
    assert list(_histograms(at)) == ["Latency"]
    infos = [str(e.value) for e in at.info]
    assert sum("the responses were not streamed" in i for i in infos) == 2  # the TTFT and the TPOT column
