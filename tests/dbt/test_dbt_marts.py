"""The marts of the shared scenario (tests/dbt/conftest.py) against hand-computed figures and a Python
recomputation from the raw rows (numpy percentiles, monotonic spans, prices from pricing/)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.outputs import sentences
from tests.dbt.builders import GIB, LARGE, PRICING_DIR, RUN_A, RUN_B, SMALL, query

approx = pytest.approx


def level(warehouse: Path, experiment: str, payload: str, concurrency: int, run_id: str = RUN_A) -> dict[str, Any]:
    rows = query(
        warehouse,
        "select * from marts.fct_concurrency_metrics "
        "where run_id = ? and experiment_name = ? and payload_file = ? and concurrency = ?",
        [run_id, experiment, payload, concurrency],
    )
    assert len(rows) == 1
    return rows[0]


def test_level_excludes_warmup_and_takes_span_from_monotonic_offsets(built: Path) -> None:
    # vllm-g5 c1 en_1-500: the 5 s warm-up is out; 3 x 0.5 s back to back from 5.0 s = a 1.5 s span.
    m = level(built, "vllm-g5", SMALL, 1)
    assert m["request_count"] == 3
    assert m["latency_p99"] == approx(0.5)
    assert m["duration_s"] == approx(1.5)
    assert m["transactions_per_minute"] == approx(3 * 60 / 1.5)


def test_level_percentiles_throughputs_and_instance_price_by_hand(built: Path) -> None:
    # vllm-g5 c1 en_500-1000: latencies 1.0, 1.5, 1.0, 1.25, 1.25 s back to back from 6.5 s to 12.5 s.
    m = level(built, "vllm-g5", LARGE, 1)
    assert (m["request_count"], m["error_count"], m["error_rate"]) == (5, 0, 0.0)
    # sorted 1.0, 1.0, 1.25, 1.25, 1.5: p50 = 1.25; p95 = 1.25 + 0.8 x 0.25 = 1.45; p99 = 1.25 + 0.96 x 0.25
    assert m["latency_p50"] == approx(1.25)
    assert m["latency_p95"] == approx(1.45)
    assert m["latency_p99"] == approx(1.49)
    assert m["ttft_p50"] == approx(0.25)
    assert m["duration_s"] == approx(6.0)
    assert m["transactions_per_minute"] == approx(50.0)
    assert m["prompt_token_count_mean"] == approx(850.0)  # (800 + 900 + 850 + 820 + 880) / 5
    assert m["completion_token_count_mean"] == approx(40.0)  # (40 + 40 + 30 + 50 + 40) / 5
    assert m["prompt_token_throughput"] == approx(4250 / 6)
    assert m["completion_token_throughput"] == approx(200 / 6)
    # pricing/ says $1.624/h (the manifest's $1.50 is ignored by default)
    assert m["price_source"] == "current"
    assert m["price_per_txn"] == approx(1.624 / 60 / 50)
    assert m["price_per_token"] == approx(1.624 / 60 / 50 / 890)
    assert m["cost_per_10k_txn"] == approx(10_000 * 1.624 / 60 / 50)
    assert m["meets_all_budgets"] is True


def test_latency_budget_has_no_latitude_either_way(built: Path) -> None:
    at_budget = level(built, "vllm-g5", LARGE, 2)  # p95 of 1.5, 2, 2, 2 = 2.0 = the budget
    over_budget = level(built, "vllm-g5", LARGE, 4)  # p95 of 2.5, 2.5, 3, 3 = 3.0
    assert at_budget["latency_p95"] == approx(2.0)
    assert at_budget["meets_latency_budget"] is True
    assert over_budget["meets_latency_budget"] is False
    assert over_budget["meets_cost_budget"] is True


def test_one_error_in_three_misses_a_zero_error_budget_unrounded(built: Path) -> None:
    m = level(built, "vllm-g5", SMALL, 2)
    assert (m["request_count"], m["error_count"]) == (3, 1)
    assert m["error_rate"] == approx(1 / 3)
    assert m["duration_s"] == approx(1.1)  # 13.0 s to 14.1 s
    assert m["transactions_per_minute"] == approx(2 * 60 / 1.1)
    assert (m["meets_latency_budget"], m["meets_cost_budget"], m["meets_error_budget"]) == (True, True, False)


def test_level_without_success_has_no_price_and_fails_every_budget(built: Path) -> None:
    m = level(built, "tgi-g5", LARGE, 2)
    assert (m["request_count"], m["error_count"]) == (2, 2)
    assert m["price_per_txn"] is None and m["cost_per_10k_txn"] is None and m["latency_p95"] is None
    assert not any(m[k] for k in ("meets_latency_budget", "meets_cost_budget", "meets_error_budget"))
    failed = query(built, "select missed_budgets from marts.fct_failed_experiments where experiment_name = 'tgi-g5'")
    assert failed == [{"missed_budgets": "latency, cost, error rate"}]


def test_token_priced_api_charges_mean_tokens_at_current_prices(built: Path) -> None:
    m = level(built, "bedrock-llama", LARGE, 1)
    assert m["pricing_kind"] == "token" and m["instance_type"] is None
    # (1000 + 800) / 2 = 900 prompt, (100 + 50) / 2 = 75 completion tokens at $0.22 per 1M each
    assert m["price_per_txn"] == approx(900 * 0.22e-6 + 75 * 0.22e-6)
    assert m["price_per_token"] == approx(0.22e-6)
    assert m["cost_per_10k_txn"] == approx(2.145)


def test_instance_type_missing_from_pricing_keeps_its_recorded_price(built: Path) -> None:
    m = level(built, "custom-box", LARGE, 1, run_id=RUN_B)
    assert m["price_source"] == "recorded"
    assert m["price_per_txn"] == approx(2.0 / 60 / 60)


def test_two_stacks_on_one_instance_type_get_separate_recommendations(built: Path) -> None:
    rows = query(
        built,
        "select experiment_name, concurrency, has_recommendation from marts.fct_recommendations "
        "where run_id = ? and payload_file = ? and instance_type = 'g5.4xlarge' order by experiment_name",
        [RUN_A, LARGE],
    )
    assert rows == [
        {"experiment_name": "tgi-g5", "concurrency": 1, "has_recommendation": True},
        {"experiment_name": "vllm-g5", "concurrency": 2, "has_recommendation": True},
    ]


def test_best_price_performance_is_the_cheapest_recommended_dataset_of_interest_row(built: Path) -> None:
    best = query(
        built,
        "select * from marts.fct_recommendations where is_best_price_performance order by run_id",
    )
    assert [(b["run_id"], b["experiment_name"]) for b in best] == [(RUN_A, "bedrock-llama"), (RUN_B, "custom-box")]
    assert sentences.best_price_performance(best[0]) == (
        "The best price performance for dataset en_500-1000 is provided by experiment bedrock-llama "
        "(meta.llama3-1-8b-instruct-v1:0) on the meta.llama3-1-8b-instruct-v1:0 API at a concurrency level of 1: "
        "$2.15 per 10k transactions at 60 transactions/minute, with a p95 latency of 1 s."
    )


def test_recommendation_sentence_reads_like_the_reference(built: Path) -> None:
    (row,) = query(
        built,
        "select * from marts.fct_recommendations where run_id = ? and experiment_name = 'vllm-g5' and payload_file = ?",
        [RUN_A, LARGE],
    )
    # 65.5/minute: the three requests that ended by 17.6 s (the first end after the last start, 16.1 s) ran
    # with 2 in flight: 2 x 3 x 60 / (1.5 + 2 + 2) s; the span's 4 in 4 s (60) counts the half second the
    # last request ran alone.
    assert sentences.recommendation(row) == (
        "The best option for staying within a latency budget of 2 seconds (with a cost budget of $20 per 10k "
        "transactions and an error-rate budget of 0) on a g5.4xlarge for the en_500-1000 dataset with experiment "
        "vllm-g5 is a concurrency level of 2. A concurrency level of 2 achieves a median latency of 2 s, "
        "for an average prompt size of 800 tokens and completion size of 40 tokens with 65.5 transactions/minute."
    )


def test_experiment_cost_covers_first_start_to_last_end_with_warmup(built: Path) -> None:
    costs = {
        r["experiment_name"]: r
        for r in query(built, "select * from marts.fct_experiment_costs where run_id = ?", [RUN_A])
    }
    assert costs["vllm-g5"]["duration_s"] == approx(22.0)  # warm-up at 0 s to the c4 level's end at 22 s
    assert costs["vllm-g5"]["cost_usd"] == approx(1.624 * 1 * 22.0 / 3600)
    assert costs["tgi-g5"]["duration_s"] == approx(4.5)
    assert costs["tgi-g5"]["cost_usd"] == approx(1.624 * 4.5 / 3600)
    assert costs["bedrock-llama"]["cost_usd"] == approx((1800 + 150) * 0.22e-6)


def test_request_cost_attribution_sums_to_level_price_times_successes(built: Path) -> None:
    rows = query(
        built,
        "select r.experiment_name, r.payload_file, r.concurrency, sum(r.cost_usd) as cost, "
        "any_value(m.price_per_txn) as price, count(*) filter (where r.is_success) as successes "
        "from marts.fct_requests as r join marts.fct_concurrency_metrics as m using (run_id, experiment_name, "
        "payload_file, concurrency) where r.run_id = ? and m.success_count > 0 group by all",
        [RUN_A],
    )
    assert len(rows) == 7
    for r in rows:
        if r["experiment_name"] == "bedrock-llama":
            assert r["cost"] == approx((1800 + 150) * 0.22e-6)  # exact tokens, which the mean price reproduces
        assert r["cost"] == approx(r["price"] * r["successes"])


def test_endpoint_metrics_summarise_the_concurrency_window(built: Path) -> None:
    (m,) = query(
        built,
        "select * from marts.fct_endpoint_metrics where run_id = ? and experiment_name = 'vllm-g5' and concurrency = 1",
        [RUN_A],
    )
    # Window 5.0 s (first measured start, en_1-500) to 12.5 s (last end, en_500-1000): instants 5..12.
    assert m["window_duration_s"] == approx(7.5)
    assert m["sample_count"] == 8
    cpu = [m[f"cpu_percent_{s}"] for s in ("min", "p25", "p50", "p75", "max")]
    assert cpu == approx([5, 6.75, 8.5, 10.25, 12])
    assert m["host_memory_used_gib_p50"] == approx(8.0)
    assert m["gpu_utilization_percent_p50"] == approx(60.0)  # mean of 50 and 70
    assert m["gpu_memory_used_gib_max"] == approx(40.0)  # 20 + 20 GiB
    assert m["gpu_memory_total_gib_max"] == approx(48.0)
    assert m["gpu_power_w_p50"] == approx(300.0)
    # Energy counters rise 110 and 200 J/s: 7.5 s x 310 J/s (not the 300 W power), over 3 x 20 + 200 tokens.
    assert m["gpu_energy_method"] == "energy_counter"
    assert m["gpu_energy_j"] == approx(7.5 * 310)
    assert m["gpu_energy_per_output_token_j"] == approx(7.5 * 310 / 260)


def test_endpoint_energy_falls_back_to_power_and_is_null_without_samples(built: Path) -> None:
    rows = {
        (r["experiment_name"], r["concurrency"]): r
        for r in query(built, "select * from marts.fct_endpoint_metrics where run_id = ?", [RUN_A])
    }
    tgi = rows[("tgi-g5", 1)]
    assert tgi["gpu_energy_method"] == "power_trapezoid"
    assert tgi["gpu_energy_j"] == approx(300 * 4.0)
    assert tgi["gpu_energy_per_output_token_j"] == approx(1200 / 160)
    api = rows[("bedrock-llama", 1)]
    assert api["sample_count"] == 0
    assert api["gpu_energy_j"] is None and api["gpu_energy_per_output_token_j"] is None


def test_dim_runs_lists_each_run_with_its_budgets(built: Path) -> None:
    runs = query(built, "select run_id, status, budget_source, latency_budget_s, request_count from marts.dim_runs")
    assert sorted((r["run_id"], r["status"], r["budget_source"]) for r in runs) == [
        (RUN_A, "completed", "manifest"),
        (RUN_B, "interrupted", "manifest"),
    ]


# -- recomputation in Python from the raw rows -----------------------------------------------------------


def _current_prices() -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    with (PRICING_DIR / "instance_prices.csv").open() as fh:
        inst = {r["instance_type"]: float(r["usd_per_hour"]) for r in csv.DictReader(fh)}
    with (PRICING_DIR / "token_prices.csv").open() as fh:
        tok = {
            r["model_id"]: (float(r["usd_per_1m_input_tokens"]), float(r["usd_per_1m_output_tokens"]))
            for r in csv.DictReader(fh)
        }
    return inst, tok


def test_every_level_matches_a_numpy_recomputation_from_raw_rows(built: Path) -> None:
    raw = query(built, "select * from raw.requests where not is_warmup")
    levels: dict[tuple[str, str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in raw:
        levels[(r["run_id"], r["experiment_name"], r["payload_file"], r["concurrency"])].append(r)
    marts = {
        (m["run_id"], m["experiment_name"], m["payload_file"], m["concurrency"]): m
        for m in query(built, "select * from marts.fct_concurrency_metrics")
    }
    assert set(marts) == set(levels)
    inst_prices, tok_prices = _current_prices()
    recorded = {
        (r["run_id"], r["experiment_name"]): r for r in query(built, "select * from marts.fct_experiment_costs")
    }
    for key, reqs in levels.items():
        m = marts[key]
        ok = [r for r in reqs if r["status"] == "success"]
        start = min(r["start_offset_ns"] for r in reqs)
        end = max(r["start_offset_ns"] + r["e2e_ns"] for r in reqs)
        span_s = (end - start) / 1e9
        assert m["request_count"] == len(reqs)
        assert m["error_rate"] == approx((len(reqs) - len(ok)) / len(reqs))
        assert m["duration_s"] == approx(span_s)
        # Steady state (closed loop): the requests that ended by the first end after the last start ran with
        # `concurrency` in flight; Little's law over them when they hold one per slot, else the span.
        last_start = max(r["start_offset_ns"] for r in reqs)
        ramp_down = min(e for r in reqs if (e := r["start_offset_ns"] + r["e2e_ns"]) > last_start)
        steady = [r for r in reqs if r["start_offset_ns"] + r["e2e_ns"] <= ramp_down]
        concurrency = key[3]
        if len(steady) >= concurrency:
            slot_s = sum(r["e2e_ns"] for r in steady) / 1e9
            successes = [r for r in steady if r["status"] == "success"]
            tpm = concurrency * len(successes) * 60 / slot_s
            prompt_rate = concurrency * sum(r["prompt_tokens"] for r in successes) / slot_s
        else:
            tpm = len(ok) * 60 / span_s
            prompt_rate = sum(r["prompt_tokens"] for r in ok) / span_s
        assert m["transactions_per_minute"] == approx(tpm)
        if not ok:
            assert m["price_per_txn"] is None
            continue
        lat = np.array([r["e2e_ns"] / 1e9 for r in ok])
        assert [m["latency_p50"], m["latency_p95"], m["latency_p99"]] == approx(np.percentile(lat, [50, 95, 99]))
        ttft = np.array([r["first_content_ns"] / 1e9 for r in ok])
        assert [m["ttft_p50"], m["ttft_p95"], m["ttft_p99"]] == approx(np.percentile(ttft, [50, 95, 99]))
        tpot = np.array([(r["e2e_ns"] - r["first_content_ns"]) / 1e9 / (r["completion_tokens"] - 1) for r in ok])
        assert [m["tpot_p50"], m["tpot_p95"], m["tpot_p99"]] == approx(np.percentile(tpot, [50, 95, 99]))
        p_mean = np.mean([r["prompt_tokens"] for r in ok])
        c_mean = np.mean([r["completion_tokens"] for r in ok])
        assert m["prompt_token_throughput"] == approx(prompt_rate)
        first = reqs[0]
        if first["instance_type"] in inst_prices:
            price = inst_prices[first["instance_type"]] * first["instance_count"] / 60 / tpm
        elif first["instance_type"] is None:
            p_in, p_out = tok_prices[first["model_id"]]
            price = p_mean * p_in / 1e6 + c_mean * p_out / 1e6
        else:  # not in pricing/: the recorded price
            price = recorded[(key[0], key[1])]["usd_per_hour"] * first["instance_count"] / 60 / tpm
        assert m["price_per_txn"] == approx(price)
        assert m["price_per_token"] == approx(price / (p_mean + c_mean))
        assert m["cost_per_10k_txn"] == approx(10_000 * price)


def test_gib_columns_use_binary_gigabytes(built: Path) -> None:
    (row,) = query(
        built,
        "select max(memory_used_bytes) as b from raw.telemetry_samples where run_id = ? and device = 'host'",
        [RUN_A],
    )
    (m,) = query(
        built,
        "select host_memory_used_gib_max from marts.fct_endpoint_metrics "
        "where run_id = ? and experiment_name = 'vllm-g5' and concurrency = 1",
        [RUN_A],
    )
    assert m["host_memory_used_gib_max"] == approx(row["b"] / GIB) == approx(8.0)
