"""Tests of the simulator's continuous-batching engine, mostly in virtual time (no sleeping)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.sim.engine import (
    VOCABULARY,
    Engine,
    EngineConfig,
    RealtimeEngine,
    RequestRejected,
    draw_natural_length,
    simulate_closed_loop,
)
from collector.sim.settings import SimSettings
from collector.tokens import DEFAULT_COUNTER

# FMBench reference report: Llama-3.1-8B-Instruct, DJL lmi-dist, g5.4xlarge, 837-token prompts, 40 tokens.
FMBENCH_C1_MEAN_E2E_S = 1.68
FMBENCH_C2_P95_E2E_S = 2.14
PROMPT_TOKENS = 837
OUTPUT_TOKENS = 40


def p95(values: list[float]) -> float:
    """95th percentile with linear interpolation (numpy's default)."""
    return statistics.quantiles(values, n=100, method="inclusive")[94]


def steady_throughput(timings, concurrency: int, output_tokens: int) -> float:
    """Completion tokens per modeled second between the end of the first wave and the start of the drain."""
    ends = sorted(t.end_s for t in timings)
    n = len(ends)
    first, last = ends[concurrency - 1], ends[n - concurrency - 1]
    return (n - 2 * concurrency) * output_tokens / (last - first)


def test_roofline_costs_match_hand_computed_values_for_llama_8b_on_a10g():
    cfg = EngineConfig.from_settings(SimSettings(instance_type="g5.4xlarge", model="llama-3.1-8b"))
    # 2 (K,V) * 32 layers * 8 kv heads * 128 head_dim * 2 bytes
    assert cfg.kv_bytes_per_token == 131072
    # (24 GB * 0.9 - 8.03e9 * 2 bytes) / 131072 bytes per token
    assert cfg.kv_capacity_tokens == int((24e9 * 0.9 - 16.06e9) // 131072) == 42266
    # 2 * 8.03e9 * 837 / (125e12 * 0.25) + 0.020 request + 0.002 step
    assert cfg.prefill_duration_s([837]) == pytest.approx(0.43013 + 0.022, rel=1e-4)
    # (16.06e9 + 877 * 131072) / (600e9 * 0.91) + 0.002 step
    assert cfg.decode_duration_s(877) == pytest.approx((16.06e9 + 877 * 131072) / 546e9 + 0.002, rel=1e-9)


def test_efficiency_overrides_replace_profile_defaults():
    base = EngineConfig.from_settings(SimSettings())
    faster = EngineConfig.from_settings(SimSettings(prefill_efficiency=0.5, decode_efficiency=0.455, step_overhead_s=0))
    assert faster.prefill_flops_per_s == pytest.approx(2 * base.prefill_flops_per_s)
    assert faster.decode_bytes_per_s == pytest.approx(base.decode_bytes_per_s / 2)
    assert faster.step_overhead_s == 0


def test_calibration_concurrency_1_mean_e2e_matches_fmbench_report():
    timings = simulate_closed_loop(SimSettings(), 1, 10, PROMPT_TOKENS, OUTPUT_TOKENS)
    mean_e2e = statistics.mean(t.e2e_s for t in timings)
    assert mean_e2e == pytest.approx(FMBENCH_C1_MEAN_E2E_S, rel=0.10)
    assert all(t.completion_tokens == OUTPUT_TOKENS for t in timings)


def test_calibration_concurrency_2_p95_e2e_matches_fmbench_report():
    timings = simulate_closed_loop(SimSettings(), 2, 24, PROMPT_TOKENS, OUTPUT_TOKENS)
    assert len(timings) == 24
    assert p95([t.e2e_s for t in timings]) == pytest.approx(FMBENCH_C2_P95_E2E_S, rel=0.10)


def test_latency_and_throughput_grow_with_concurrency_until_kv_cache_saturates():
    sim = SimSettings()
    prompt, output = 512, 512
    bound = EngineConfig.from_settings(sim).kv_capacity_tokens // (prompt + output)
    assert bound == 41  # 42266 KV tokens / 1024 reserved per sequence
    levels = [1, 2, 4, 8, 16, 32, 64, 128]
    e2e, ttft, tput = {}, {}, {}
    for c in levels:
        timings = simulate_closed_loop(sim, c, max(4 * c, 8), prompt, output)
        e2e[c] = statistics.mean(t.e2e_s for t in timings)
        ttft[c] = statistics.mean(t.ttft_s for t in timings)
        tput[c] = steady_throughput(timings, c, output)
    for lo, hi in itertools.pairwise(levels):
        assert e2e[hi] > e2e[lo] * 0.999, f"latency fell from c={lo} to c={hi}"
        assert ttft[hi] > ttft[lo] * 0.999, f"TTFT fell from c={lo} to c={hi}"
        assert tput[hi] >= tput[lo] * 0.99, f"throughput fell from c={lo} to c={hi}"
        if hi <= bound:
            assert tput[hi] > tput[lo] * 1.10, f"throughput did not grow from c={lo} to c={hi}"
    above = [c for c in levels if c > bound]
    assert above == [64, 128]
    assert tput[128] / tput[64] - 1 < 0.05  # saturated: more clients only queue
    assert ttft[128] > 1.5 * ttft[64]  # ... and the queueing shows in TTFT


def test_running_batch_never_exceeds_kv_capacity_at_high_concurrency():
    cfg = EngineConfig.from_settings(SimSettings())
    engine = Engine(cfg)
    for _ in range(100):
        engine.submit(837, 40, True, 0.0)
    step = engine.next_step()
    assert step is not None
    assert step.kind == "prefill"
    assert len(engine.running) == 9  # prefill budget: 9 * 837 <= 8192 tokens
    while len(engine.running) < 48:
        engine.complete_step(step, 0.0)
        step = engine.next_step()
        assert engine.kv_reserved_tokens <= cfg.kv_capacity_tokens
    assert len(engine.running) == cfg.kv_capacity_tokens // 877 == 48
    assert len(engine.waiting) == 52


def test_mean_completion_length_follows_mean_output_tokens_when_max_tokens_is_large():
    timings = simulate_closed_loop(SimSettings(mean_output_tokens=40), 32, 1000, 16, 4000, ignore_eos=False)
    lengths = [t.completion_tokens for t in timings]
    assert statistics.mean(lengths) == pytest.approx(40, rel=0.15)
    assert min(lengths) >= 1
    assert len(set(lengths)) > 20  # a distribution, not a constant
    assert {t.finish_reason for t in timings} == {"stop"}


def test_max_tokens_caps_natural_length_with_finish_reason_length():
    timings = simulate_closed_loop(SimSettings(mean_output_tokens=40), 8, 200, 16, 10, ignore_eos=False)
    assert max(t.completion_tokens for t in timings) == 10
    for t in timings:
        assert t.finish_reason == ("length" if t.completion_tokens == 10 else "stop")
    assert sum(t.finish_reason == "length" for t in timings) > 100  # P(length >= 10) = 0.975**9 = 0.80


def test_ignore_eos_generates_exactly_max_tokens():
    timings = simulate_closed_loop(SimSettings(mean_output_tokens=2), 4, 50, 100, 37, ignore_eos=True)
    assert [t.completion_tokens for t in timings] == [37] * 50
    assert {t.finish_reason for t in timings} == {"length"}


def test_same_seed_gives_identical_runs_and_other_seed_differs():
    def run(seed: int):
        sim = SimSettings(seed=seed)
        return [
            (t.request_id, t.completion_tokens, t.e2e_s)
            for t in simulate_closed_loop(sim, 4, 40, 64, 500, ignore_eos=False)
        ]

    assert run(7) == run(7)
    assert [r[1] for r in run(7)] != [r[1] for r in run(8)]


def test_generated_words_are_seeded_and_count_as_one_token_each():
    def words(seed: int) -> list[str]:
        engine = Engine(EngineConfig.from_settings(SimSettings(seed=seed)))
        engine.submit(10, 30, True, 0.0)
        texts = []
        while (step := engine.next_step()) is not None:
            texts += [e.text for e in engine.complete_step(step, 0.0)]
        return texts

    assert words(3) == words(3)
    assert words(3) != words(4)
    assert all(DEFAULT_COUNTER.count(" " + w) == 1 for w in VOCABULARY)
    assert DEFAULT_COUNTER.count("".join(words(3))) == 30


def test_geometric_length_draw_has_requested_mean():
    import random

    rng = random.Random(1)
    draws = [draw_natural_length(rng, 12.5) for _ in range(20000)]
    assert statistics.mean(draws) == pytest.approx(12.5, rel=0.03)
    assert draw_natural_length(rng, 1.0) == 1


def test_cancel_frees_kv_reservation_and_lets_waiting_request_in():
    cfg = EngineConfig.from_settings(SimSettings())
    engine = Engine(cfg)
    big = cfg.max_model_len - 100
    first = engine.submit(100, big, True, 0.0)
    second = engine.submit(100, big, True, 0.0)
    step = engine.next_step()
    assert step is not None
    assert step.sequences == (first,)
    engine.complete_step(step, 0.0)
    assert engine.kv_reserved_tokens == first.reserved_tokens
    engine.cancel(first)
    assert engine.kv_reserved_tokens == 0
    step = engine.next_step()
    assert step is not None
    assert step.kind == "prefill"
    assert step.sequences == (second,)


def test_request_longer_than_usable_context_is_rejected():
    cfg = EngineConfig.from_settings(SimSettings())
    with pytest.raises(RequestRejected, match="maximum context length is 42266 tokens"):
        Engine(cfg).submit(40000, 3000, False, 0.0)


def _small_config(kv_tokens: int, max_seqs: int, batched: int) -> EngineConfig:
    return EngineConfig(
        flops_per_prompt_token=1.0,
        prefill_flops_per_s=1000.0,
        weight_bytes=10.0,
        kv_bytes_per_token=1.0,
        decode_bytes_per_s=1000.0,
        step_overhead_s=0.001,
        request_overhead_s=0.0,
        kv_capacity_tokens=kv_tokens,
        max_model_len=kv_tokens,
        max_num_seqs=max_seqs,
        max_num_batched_tokens=batched,
        mean_output_tokens=5.0,
        seed=0,
    )


@settings(max_examples=60, deadline=None)
@given(
    kv_tokens=st.integers(200, 2000),
    max_seqs=st.integers(1, 8),
    batched=st.integers(50, 400),
    requests=st.lists(
        st.tuples(st.integers(0, 150), st.integers(1, 50), st.booleans(), st.integers(0, 5)), min_size=1, max_size=30
    ),
)
def test_scheduler_respects_limits_and_finishes_every_request_in_fifo_order(kv_tokens, max_seqs, batched, requests):
    engine = Engine(_small_config(kv_tokens, max_seqs, batched))
    pending = list(requests)
    submitted = []
    now = 0.0
    while pending or not engine.is_idle:
        # Requests arrive after a random number of steps, like clients joining at step boundaries.
        while pending and pending[0][3] == 0:
            prompt, max_tokens, ignore_eos, _ = pending.pop(0)
            submitted.append(engine.submit(prompt, max_tokens, ignore_eos, now))
        pending = [(p, m, i, max(0, d - 1)) for p, m, i, d in pending]
        step = engine.next_step()
        if step is None:
            continue
        assert engine.kv_reserved_tokens <= kv_tokens
        assert len(engine.running) <= max_seqs
        if step.kind == "prefill" and len(step.sequences) > 1:
            assert sum(s.prompt_tokens for s in step.sequences) <= batched
        now += step.duration_s
        engine.complete_step(step, now)
    assert engine.kv_reserved_tokens == 0
    for seq in submitted:
        assert seq.generated == min(seq.max_tokens, seq.natural_tokens)
    first_tokens = [s.first_token_s for s in submitted]
    assert first_tokens == sorted(first_tokens)  # FIFO admission


def test_realtime_driver_keeps_absolute_schedule_without_drift():
    sim = SimSettings(speedup=20)
    cfg = EngineConfig.from_settings(sim)
    n_tokens = 200
    expected_s = (cfg.prefill_duration_s([64]) + sum(cfg.decode_duration_s(64 + i) for i in range(1, n_tokens))) / 20

    async def main() -> tuple[float, list[float]]:
        runtime = RealtimeEngine(cfg, speedup=20)
        await runtime.start()
        try:
            start = time.perf_counter()
            stream = runtime.submit(64, n_tokens, True)
            stamps = []
            while True:
                event = await stream.events.get()
                stamps.append(time.perf_counter() - start)
                if event.finish_reason is not None:
                    return stamps[-1], stamps
        finally:
            await runtime.stop()

    elapsed, stamps = asyncio.run(main())
    assert len(stamps) == n_tokens
    # Deadlines are absolute, so 200 sleeps' overshoot does not add up: the total stays within a step or two.
    assert expected_s * 0.999 <= elapsed <= expected_s + 0.010
    assert stamps[0] == pytest.approx(cfg.prefill_duration_s([64]) / 20, abs=0.005)
