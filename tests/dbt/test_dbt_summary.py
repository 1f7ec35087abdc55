"""The terminal summary is rendered from the marts: best row table, failed experiments, costs, sentences."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import UserError
from collector.outputs.summary import summary_text
from tests.dbt.builders import RUN_A


def test_summary_shows_the_best_row_as_an_information_value_table(built: Path) -> None:
    text = summary_text(built, RUN_A)
    assert "is provided by experiment bedrock-llama" in text
    lines = text.splitlines()
    table = {line.split(" | ")[0].strip(): line.split(" | ")[1] for line in lines if line.count(" | ") == 1}
    assert table["Experiment"] == "bedrock-llama"
    assert table["Transactions/min"] == "60"
    assert table["Price per transaction"] == "$0.000214"  # 900 x $0.22/1M + 75 x $0.22/1M = 0.00021449999...
    assert table["Price per 1M tokens"] == "$0.22"
    assert table["Latency p50 / p95 / p99"] == "1 / 1† / 1† s"  # 20 requests: too few for a p99


def test_summary_lists_failed_experiments_with_the_budgets_they_miss(built: Path) -> None:
    text = summary_text(built, RUN_A)
    assert "3 levels missed at least one configured budget" in text
    failed = [line for line in text.splitlines() if line.endswith(("latency", "error rate"))]
    assert [f.split(" | ")[0].strip() for f in failed] == ["tgi-g5", "vllm-g5", "vllm-g5"]
    assert "The best option for staying within a latency budget of 2 seconds" in text
    assert "The total is $" in text


def test_summary_of_an_unknown_run_is_a_one_line_error(built: Path) -> None:
    with pytest.raises(UserError, match="not in"):
        summary_text(built, "no-such-run")
