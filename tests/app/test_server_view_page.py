"""The Sweep page shows the engine's own view next to latency, per level, and flags token totals that disagree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from collector.outputs import figures, sentences, tables
from tests.app.app_helpers import mart, texts

pytestmark = pytest.mark.slow


def test_sweep_shows_queue_depth_kv_cache_and_latency_gap_per_level(
    app_on: Callable[..., AppTest], e2e_run: dict[str, Any]
) -> None:
    at = app_on(e2e_run["warehouse"])
    at.run()
    at.switch_page("views/sweep.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Server's view" in texts(at)
    frames = [e.value for e in at.dataframe if tables.TOKEN_TOTALS in e.value.columns]
    assert len(frames) == 1
    shown = frames[0]
    view = mart(
        e2e_run["warehouse"],
        "select * from marts.fct_level_server_view where payload_file = 'en_500-1000' "
        "order by experiment_name, payload_file, concurrency",
    )
    assert len(shown) == len(view) == 4
    assert list(shown[tables.TOKEN_TOTALS]) == ["match"] * 4
    gap = figures.figure("e2e_gap_s")
    assert list(shown[gap.header]) == [gap.value(v) for v in view["e2e_gap_s"]]
    for column in ("mean_requests_waiting", "mean_kv_cache_usage"):
        assert figures.header(column) in shown.columns
    assert not at.warning


def test_a_level_whose_totals_disagree_is_failed_in_the_table_and_said_in_a_sentence() -> None:
    view = pd.DataFrame(
        [
            {"experiment_name": "e", "payload_file": "b", "concurrency": 1, "is_token_total_matching": True,
             "is_token_total_mismatch": False, "prompt_tokens_difference": 0, "completion_tokens_difference": 0},
            {"experiment_name": "e", "payload_file": "b", "concurrency": 4, "is_token_total_matching": False,
             "is_token_total_mismatch": True, "prompt_tokens_difference": 0, "completion_tokens_difference": 12},
            {"experiment_name": "e", "payload_file": "b", "concurrency": 8, "is_token_total_matching": None,
             "is_token_total_mismatch": False, "prompt_tokens_difference": None, "completion_tokens_difference": None},
        ]
    )  # fmt: skip
    for column in tables.SERVER_VIEW_FIGURES:
        view[column] = 0.5
    table = tables.server_view_table(view)
    assert list(table.frame[tables.TOKEN_TOTALS]) == ["match", "differ: prompt +0, output +12", "not compared"]
    assert list(table.states[tables.TOKEN_TOTALS]) == ["", tables.FAIL, ""]
    assert sentences.token_total_mismatches(view) == [
        "e c=4 on b: the server counted 12 output tokens more than the client recorded over the measured window "
        "(a request the client gave up on, a failed request, or a miscount)."
    ]
