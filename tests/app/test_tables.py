"""The figures, tables and sentences every output shares, on hand-made mart rows (no warehouse needed)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.outputs import figures, sentences, tables
from streamlit_app.ui import escape_dollars

# FMBench's reference row (llama3-1-8b-instruct on g5.4xlarge, en_500-1000, concurrency 1).
REFERENCE = {
    "experiment_name": "llama3-1-8b-instruct",
    "model_id": "meta-llama/Llama-3.1-8B-Instruct",
    "payload_file": "payload_en_500-1000.jsonl",
    "instance_type": "g5.4xlarge",
    "instance_count": 1,
    "concurrency": 1,
    "request_count": 35,
    "success_count": 35,
    "error_rate": 0.0,
    "prompt_token_count_mean": 837.4,
    "prompt_token_throughput": 504.3,
    "completion_token_count_mean": 40.2,
    "completion_token_throughput": 23.4,
    "transactions_per_minute": 35.3,
    "price_per_txn": 0.0007733333,
    "price_per_token": 8.817939946788295e-07,
    "cost_per_10k_txn": 7.733333,
    "is_p95_undersampled": False,
    "is_p99_undersampled": True,
    **{f"latency_{p}": v for p, v in (("p50", 1.6812), ("p95", 1.7049), ("p99", 1.7121))},
    **{f"ttft_{p}": None for p in ("p50", "p95", "p99")},
    **{f"tpot_{p}": None for p in ("p50", "p95", "p99")},
}
BUDGETS = {"latency_budget_s": 2.0, "cost_per_10k_txn_budget_usd": 20.0, "error_rate_budget": 0.0}


# ---- the precision rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.6612, "1.66"),
        (0.00074512, "0.000745"),
        (36.24, "36.2"),
        (877.4, "877"),
        (12345.6, "12,346"),
        (2.0, "2"),
        (1.6, "1.6"),
        (0, "0"),
        (None, "–"),
        (float("nan"), "–"),
        (-0.0000000001, "0"),  # below a billionth: 0, never a growing run of zeros
    ],
)
def test_a_measure_reads_with_three_significant_figures_and_all_its_whole_digits(value: float, text: str) -> None:
    assert figures.plain(value) == text


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_rounding_keeps_three_significant_figures_and_never_drops_a_whole_number_digit(value: float) -> None:
    shown = figures.rounded(value)
    assert shown is not None
    assert abs(shown - value) <= 0.5 * 10 ** (math.floor(math.log10(value)) - 2) * (1 + 1e-9)
    if value >= 1000:
        assert shown == round(value)


@pytest.mark.parametrize(
    ("value", "text"), [(13.333, "$13.33"), (4, "$4.00"), (0.000773333, "$0.000773"), (2.145, "$2.15"), (0, "$0.00")]
)
def test_money_reads_in_cents_from_a_dollar_and_three_significant_figures_below(value: float, text: str) -> None:
    assert figures.figure("cost_per_10k_txn").text(value) == text


def test_ttft_and_tpot_are_shown_in_milliseconds_and_error_rate_as_a_percentage() -> None:
    assert figures.header("ttft_p50") == "TTFT p50 (ms)"
    assert figures.figure("ttft_p50").with_unit(0.03512) == "35.1 ms"
    assert figures.figure("tpot_p95").value(0.0241) == 24.1
    assert figures.figure("error_rate").with_unit(0.125) == "12.5%"
    assert figures.header("price_per_token") == "Price per 1M tokens ($)"
    assert figures.figure("price_per_token").text(8.8179e-07) == "$0.882"


def test_a_display_frame_keeps_figures_numeric_so_concurrency_sorts_as_numbers() -> None:
    rows = pd.DataFrame({"experiment_name": ["a"] * 5, "concurrency": [1, 16, 2, 4, 8], "ttft_p50": [0.01] * 5})
    shown = figures.frame(rows, ["experiment_name", "concurrency", "ttft_p50"])
    assert list(shown.columns) == ["Experiment", "Concurrency", "TTFT p50 (ms)"]
    assert shown.sort_values("Concurrency")["Concurrency"].tolist() == [1, 2, 4, 8, 16]
    assert shown["TTFT p50 (ms)"].tolist() == [10.0] * 5


# ---- tables --------------------------------------------------------------------------------------------


def test_information_table_reads_the_reference_row_with_units_and_marks_an_undersampled_p99() -> None:
    shown = tables.information_table(REFERENCE)
    info = shown.frame.set_index("Information")["Value"]
    assert info["Requests"] == "35 (35 succeeded)"
    assert info["Mean prompt"] == "837 tokens"
    assert info["Prompt throughput"] == "504 tokens/s"
    assert info["Mean completion"] == "40.2 tokens"
    assert info["Transactions/min"] == "35.3"
    assert info["Price per transaction"] == "$0.000773"
    assert info["Price per 1M tokens"] == "$0.882"
    assert info["Cost per 10k transactions"] == "$7.73"
    assert info["Latency p50 / p95 / p99"] == "1.68 / 1.7 / 1.71† s"
    assert info["TTFT p50 / p95 / p99"] == "–"
    assert shown.notes == [sentences.UNDERSAMPLED_NOTE]


def _level(concurrency: int, success: int, errors: int = 0, **extra: object) -> dict:
    return {
        "run_id": "r",
        "experiment_name": "e",
        "payload_file": "p",
        "concurrency": concurrency,
        "request_count": success + errors,
        "success_count": success,
        "error_count": errors,
        "error_rate": errors / (success + errors),
        **{f"latency_{p}": 1.0 + i / 10 for i, p in enumerate(("p50", "p95", "p99"))},
        **{f"ttft_{p}": 0.05 for p in ("p50", "p95", "p99")},
        **{f"tpot_{p}": 0.02 for p in ("p50", "p95", "p99")},
        "transactions_per_minute": 30.0,
        "is_p95_undersampled": success < 20,
        "is_p99_undersampled": success < 100,
        **extra,
    }


def test_latency_table_counts_requests_and_marks_only_the_percentiles_from_too_few_successes() -> None:
    levels = pd.DataFrame([_level(1, 12), _level(2, 40, errors=2), _level(4, 200)])
    shown = tables.latency_table(levels)
    assert shown.frame["Requests"].tolist() == [12, 42, 200]
    assert shown.frame["TTFT p50 (ms)"].tolist() == [50.0] * 3
    text = tables.text(shown)
    assert text["Latency p95 (s)"].tolist() == ["1.1†", "1.1", "1.1"]
    assert text["Latency p99 (s)"].tolist() == ["1.2†", "1.2†", "1.2"]
    assert text["Latency p50 (s)"].tolist() == ["1", "1", "1"]
    assert shown.notes == [sentences.UNDERSAMPLED_NOTE, sentences.SURVIVORS_NOTE]


def test_failed_table_fails_missed_budgets_and_never_greens_a_latency_measured_on_survivors() -> None:
    failed = pd.DataFrame(
        [
            # every request succeeded; missed cost only: latency and errors pass
            {**_level(1, 20), "latency_p95": 1.2, "cost_per_10k_txn": 25.0, "misses_latency_budget": False,
             "misses_cost_budget": True, "misses_error_budget": False, "missed_budgets": "cost"},
            # 3 of 12 failed: the error rate fails and the survivors' p95 under budget is not shown as a pass
            {**_level(2, 9, errors=3), "latency_p95": 1.5, "cost_per_10k_txn": 9.0, "misses_latency_budget": False,
             "misses_cost_budget": False, "misses_error_budget": True, "missed_budgets": "error rate"},
            # unpriced: the cost is not judged
            {**_level(4, 20), "latency_p95": 2.5, "cost_per_10k_txn": None, "misses_latency_budget": True,
             "misses_cost_budget": None, "misses_error_budget": False, "missed_budgets": "latency"},
        ]
    )  # fmt: skip
    shown = tables.failed_table(failed)
    states = shown.states[["Error rate (%)", "Latency p95 (s)", "Cost per 10k transactions ($)"]]
    assert states.values.tolist() == [
        [tables.PASS, tables.PASS, tables.FAIL],
        [tables.FAIL, tables.CAUTION, tables.PASS],
        [tables.PASS, tables.FAIL, ""],
    ]
    assert sentences.SURVIVORS_NOTE in shown.notes


def test_level_table_states_follow_the_verdicts_with_not_judged_left_neutral() -> None:
    levels = pd.DataFrame(
        [
            _level(1, 30, meets_latency_budget=True, meets_cost_budget=None, meets_error_budget=True,
                   meets_all_budgets=True, latency_p95=1.0, cost_per_10k_txn=None),
            _level(2, 30, meets_latency_budget=False, meets_cost_budget=True, meets_error_budget=True,
                   meets_all_budgets=False, latency_p95=3.0, cost_per_10k_txn=4.0),
        ]
    )  # fmt: skip
    shown = tables.level_table(levels)
    assert shown.frame["Cost verdict"].tolist() == ["not judged", "pass"]
    assert shown.states["Latency verdict"].tolist() == [tables.PASS, tables.FAIL]
    assert shown.states["Cost verdict"].tolist() == ["", tables.PASS]
    assert shown.frame["Cost per 10k transactions ($)"].isna().tolist() == [True, False]


def test_errors_table_lists_each_type_with_its_share_and_message_most_frequent_first() -> None:
    errors = pd.DataFrame(
        [
            {"experiment_name": "e", "payload_file": "p", "concurrency": 2, "error_type": "http_error",
             "request_count": 1, "share_of_level": 1 / 12, "example_message": "HTTP 503: overloaded"},
            {"experiment_name": "e", "payload_file": "p", "concurrency": 2, "error_type": "timeout",
             "request_count": 11, "share_of_level": 11 / 12, "example_message": None},
        ]
    )  # fmt: skip
    text = tables.text(tables.errors_table(errors))
    assert text[["Failure", "Errors", "Error rate (%)", "Most frequent message"]].values.tolist() == [
        ["timed out", "11", "91.7", "–"],
        ["got an HTTP error", "1", "8.33", "HTTP 503: overloaded"],
    ]


def test_comparison_table_divides_each_series_by_the_first() -> None:
    a = {**REFERENCE, "series": "vllm"}
    b = {**REFERENCE, "series": "tgi", "transactions_per_minute": 44.125, "cost_per_10k_txn": None}
    shown = tables.comparison_table(pd.DataFrame([a, b]), "series").frame.set_index("Figure")
    assert shown.loc["Transactions/min"].tolist() == ["35.3", "44.1", "×1.25"]
    assert shown.loc["Cost per 10k transactions ($)"].tolist() == ["$7.73", "–", "–"]


def test_endpoint_table_names_each_measure_with_its_unit_and_drops_measures_never_sampled() -> None:
    metrics = pd.DataFrame(
        [
            {
                "experiment_name": "e",
                "concurrency": 2,
                "telemetry_host": "endpoint",
                "sample_count": 9,
                **dict(
                    zip(
                        [f"cpu_percent_{s}" for s in ("min", "p25", "p50", "p75", "max")],
                        (10, 20, 30.04, 40, 50),
                        strict=True,
                    )
                ),
                **{f"{f.column}_{s}": None for f in figures.TELEMETRY[1:] for s in ("min", "p25", "p50", "p75", "max")},
                "gpu_energy_per_output_token_j": None,
            }
        ]
    )
    text = tables.text(tables.endpoint_table(metrics))
    assert text[["Measure", "Median", "Samples"]].values.tolist() == [["Host CPU (%)", "30", "9"]]


# ---- sentences -----------------------------------------------------------------------------------------


def test_recommendation_sentence_reads_like_the_reference_with_the_precision_rule() -> None:
    rec = {**REFERENCE, "has_recommendation": True, "pricing_kind": "instance", "payload_file": "en_500-1000",
           "experiment_name": "vllm-g5", "concurrency": 2, "latency_p50": 2.0, "prompt_token_count_mean": 800.0,
           "completion_token_count_mean": 40.0, "transactions_per_minute": 60.0, **BUDGETS}  # fmt: skip
    assert sentences.recommendation(rec) == (
        "The best option for staying within a latency budget of 2 seconds (with a cost budget of $20 per 10k "
        "transactions and an error-rate budget of 0) on a g5.4xlarge for the en_500-1000 dataset with experiment "
        "vllm-g5 is a concurrency level of 2. A concurrency level of 2 achieves a median latency of 2 s, "
        "for an average prompt size of 800 tokens and completion size of 40 tokens with 60 transactions/minute."
    )
    none = {**rec, "has_recommendation": False, "pricing_kind": "unpriced", "instance_type": None}
    assert sentences.recommendation(none, preview=True) == (
        "Experiment vllm-g5 on an unpriced endpoint would find no concurrency level for the en_500-1000 dataset "
        "staying within a latency budget of 2 seconds (with an error-rate budget of 0; unpriced, so cost is not "
        "judged)."
    )


def test_best_price_performance_sentence_names_the_api_and_the_cost_in_cents() -> None:
    rec = {**REFERENCE, "instance_type": None, "model_id": "meta.llama3", "dataset_of_interest": "en_500-1000",
           "experiment_name": "bedrock", "cost_per_10k_txn": 2.145, "transactions_per_minute": 60.0,
           "latency_p95": 1.0}  # fmt: skip
    assert sentences.best_price_performance(rec) == (
        "The best price performance for dataset en_500-1000 is provided by experiment bedrock (meta.llama3) on the "
        "meta.llama3 API at a concurrency level of 1: $2.15 per 10k transactions at 60 transactions/minute, with a "
        "p95 latency of 1 s."
    )


def test_serving_names_instance_count_and_token_apis() -> None:
    assert sentences.serving({"instance_type": "g5.4xlarge", "instance_count": 2}) == "2 × g5.4xlarge"
    assert sentences.serving({"instance_type": "g5.4xlarge", "instance_count": 1}) == "g5.4xlarge"
    assert sentences.serving({"instance_type": None, "model_id": "gpt"}) == "gpt API"


def _errors(*rows: tuple[str, int, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"error_type": t, "request_count": n, "example_message": m} for t, n, m in rows],
        columns=["error_type", "request_count", "example_message"],
    )


def test_a_level_where_every_request_failed_says_what_they_failed_with() -> None:
    level = {"request_count": 12, "error_count": 12}
    errors = _errors(("timeout", 12, "no complete response within 1.5 s (TimeoutError)"))
    assert sentences.level_errors(level, errors) == (
        "All 12 requests failed: 12 timed out (no complete response within 1.5 s (TimeoutError)). No latency, "
        "throughput or price describes this level."
    )


def test_a_level_with_some_failures_lists_them_most_frequent_first_and_says_latency_is_the_survivors() -> None:
    level = {"request_count": 12, "error_count": 3}
    errors = _errors(("http_error", 1, "HTTP 503: overloaded"), ("timeout", 2, None))
    assert sentences.level_errors(level, errors) == (
        "3 of 12 requests failed: 2 timed out; 1 got an HTTP error (HTTP 503: overloaded). Latency figures "
        "describe the 9 that succeeded."
    )
    assert sentences.level_errors({"request_count": 12, "error_count": 0}, _errors()) is None


def test_unmeasured_levels_are_named_in_sweep_order_with_why() -> None:
    run = {"status": "interrupted", "planned_level_count": 8}
    unmeasured = pd.DataFrame(
        [{"experiment_name": "e", "payload_file": b, "concurrency": c, "unmeasured_position": i}
         for i, (c, b) in enumerate([(4, "a"), (4, "b"), (8, "a")], start=1)]
    )  # fmt: skip
    assert sentences.unmeasured(run, unmeasured) == (
        "3 of 8 planned levels were not measured: the run was interrupted: e c=4 on a, e c=4 on b, e c=8 on a."
    )
    assert sentences.unmeasured(run, unmeasured.iloc[0:0]) is None


RUN = {"dataset_of_interest": "big", **BUDGETS}


def _recs(*rows: tuple[bool, bool, bool]) -> pd.DataFrame:
    columns = ["is_dataset_of_interest", "has_recommendation", "is_best_price_performance"]
    return pd.DataFrame(list(rows), columns=columns)


@given(
    recs=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), max_size=4),
    failed=st.integers(0, 3),
    unmeasured=st.integers(0, 3),
)
def test_the_summary_never_says_no_experiment_met_every_budget_and_that_all_met_them(
    recs: list[tuple[bool, bool, bool]], failed: int, unmeasured: int
) -> None:
    # Marts invariants: a best row is a recommended dataset-of-interest row; without any failed level every
    # measured level passed, so every measured (experiment, bucket) has a recommendation.
    rows = [(doi, rec or failed == 0, best and doi and (rec or failed == 0)) for doi, rec, best in recs]
    frame = _recs(*rows)
    no_best, line = sentences.verdict(
        RUN, frame, pd.DataFrame({"concurrency": range(failed)}), pd.DataFrame({"concurrency": range(unmeasured)})
    )
    if no_best is not None and "No experiment met every budget" in no_best:
        assert not line.startswith("All")
    if unmeasured and line.startswith("All"):
        assert "measured levels" in line


def test_dollars_are_escaped_for_streamlit_markdown_outside_code() -> None:
    assert escape_dollars("$4.00 per 10k and `$20` budget, $5") == "\\$4.00 per 10k and `$20` budget, \\$5"
