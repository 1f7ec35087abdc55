"""The shared table definitions and the app command, on hand-made mart rows (no warehouse needed; the charts are
in test_charts.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from collector.cli import app as app_cli
from collector.cli import options
from collector.outputs import tables
from streamlit_app.ui import escape_dollars

# FMBench's reference row (llama3-1-8b-instruct on g5.4xlarge, en_500-1000, concurrency 1).
REFERENCE = {
    "experiment_name": "llama3-1-8b-instruct",
    "model_id": "meta-llama/Llama-3.1-8B-Instruct",
    "payload_file": "payload_en_500-1000.jsonl",
    "instance_type": "g5.4xlarge",
    "instance_count": 1,
    "concurrency": 1,
    "error_rate": 0.0,
    "prompt_token_count_mean": 837.4,
    "prompt_token_throughput": 504.3,
    "completion_token_count_mean": 40.2,
    "completion_token_throughput": 23.4,
    "transactions_per_minute": 35.3,
    "price_per_txn": 0.0007733333,
    "price_per_token": 8.817939946788295e-07,
    "cost_per_10k_txn": 7.733333,
    **{f"latency_{p}": 1.68 for p in ("p50", "p95", "p99")},
    **{f"ttft_{p}": None for p in ("p50", "p95", "p99")},
    **{f"tpot_{p}": None for p in ("p50", "p95", "p99")},
}


def test_information_table_prints_the_reference_reports_figures() -> None:
    info = tables.information_table(REFERENCE).set_index("Information")["Value"]
    assert info["prompt_token_count_mean"] == "837"
    assert info["prompt_token_throughput"] == "504"
    assert info["completion_token_count_mean"] == "40"
    assert info["transactions_per_minute"] == "35"
    assert info["price_per_txn"] == "0.000773"
    assert info["price_per_token"] == "0.00000088"
    assert info["latency p50, p95, p99"] == "1.68, 1.68, 1.68"
    assert info["TTFT p50, p95, p99"] == "–, –, –"


def test_criteria_sentence_reads_like_the_reference() -> None:
    budgets = {"latency_budget_s": 2.0, "cost_per_10k_txn_budget_usd": 20.0, "error_rate_budget": 0.0}
    assert tables.criteria_sentence(budgets) == (
        "`Latency` (p95) ≤ `2s`, `cost per 10k transactions`: `$20`, `error rate`: `0`"
    )


def test_failed_table_flags_only_the_missed_budgets() -> None:
    failed = pd.DataFrame(
        [
            {
                "experiment_name": "e",
                "payload_file": "p",
                "concurrency": 2,
                "error_rate": 0.0,
                "latency_p95": 2.14,
                "cost_per_10k_txn": 4.92,
                "missed_budgets": "latency",
                "misses_error_budget": False,
                "misses_latency_budget": True,
                "misses_cost_budget": False,
            }
        ]
    )
    shown, flags = tables.failed_table(failed)
    assert shown.iloc[0][["error_rate_text", "latency_p95_text", "price_per_10k_txn_text"]].tolist() == [
        "0.00",
        "2.14",
        "4.92",
    ]
    assert flags.iloc[0][["error_rate_text", "latency_p95_text", "price_per_10k_txn_text"]].tolist() == [
        False,
        True,
        False,
    ]


def test_serving_names_instance_count_and_token_apis() -> None:
    assert tables.serving({"instance_type": "g5.4xlarge", "instance_count": 2}) == "2 × g5.4xlarge"
    assert tables.serving({"instance_type": "g5.4xlarge", "instance_count": 1}) == "g5.4xlarge"
    assert tables.serving({"instance_type": None, "model_id": "gpt"}) == "gpt API"


def test_dollars_are_escaped_for_streamlit_markdown_outside_code() -> None:
    assert escape_dollars("$4.00 per 10k and `$20` budget, $5") == "\\$4.00 per 10k and `$20` budget, \\$5"


def test_app_command_passes_the_warehouse_after_the_double_dash(tmp_path: Path) -> None:
    # the command `collector app` serves (tests/test_signals.py runs the real server and stops it)
    parser = argparse.ArgumentParser()
    app_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["app", "--results-dir", str(tmp_path), "--port", "8765"])
    cmd = app_cli.command(options.warehouse(args), args.port, args.address)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("streamlit_app/app.py")
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"  # this machine only, no external IP lookup
    assert cmd[cmd.index("--") + 1 :] == ["--warehouse", str((tmp_path / "tokenbench.duckdb").resolve())]


@pytest.mark.parametrize(
    ("simulated", "experiments", "label"),
    [(2, 2, "simulated"), (1, 2, "partly simulated"), (0, 2, ""), (None, None, "")],
)
def test_a_run_sent_to_the_simulator_is_labelled_so_in_the_title(
    simulated: int | None, experiments: int | None, label: str
) -> None:
    run = {"simulated_experiment_count": simulated, "experiment_count": experiments}
    assert tables.simulated(run) == label
    suffix = f" ({label})" if label else ""
    assert tables.title(["m1", "m2"], run) == f"Results for performance benchmarking m1, m2{suffix}"
