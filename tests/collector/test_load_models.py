"""Load models: the config's `load` section, an open-loop level's schedule, a sweep's ladder and the saturation
rule the collector and the marts share."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import pytest
import yaml

from collector.config import load_config
from collector.errors import ConfigError
from collector.load_models import (
    SATURATION_GROWTH,
    SATURATION_MIN_REQUESTS,
    is_saturated,
    ladder,
    schedule_seed,
    send_offsets_s,
)
from collector.runner import sweep_plan
from tests.conftest import REPO, config_dict, sim_experiment, write_config


def _load(tmp_path: Path, load: dict | None, **experiment) -> Path:
    exp = sim_experiment(**experiment)
    if load is not None:
        exp["load"] = load
    return write_config(tmp_path / "load.yml", config_dict([exp]))


def test_closed_is_the_default_and_a_rate_experiment_needs_no_concurrency_levels(tmp_path: Path) -> None:
    assert load_config(_load(tmp_path, None)).experiments[0].load.model == "closed"
    path = _load(tmp_path, {"model": "rate", "rates_per_s": [2, 0.5]}, concurrency_levels=[])
    (exp,) = load_config(path).experiments
    assert exp.load.model == "rate" and exp.load.arrival == "poisson" and exp.load.max_in_flight == 1024
    # The plan: one level per rate (outer) and bucket (inner), its cap as its concurrency, warm-up included.
    plan = sweep_plan(load_config(path))
    assert [(lv.bucket, lv.concurrency, lv.rate_per_s, lv.requests) for lv in plan] == [
        (bucket, 1024, rate, exp.warmup_requests_per_level + exp.requests_per_level)
        for rate in (2.0, 0.5)
        for bucket in exp.payloads
    ]
    assert [lv.label for lv in plan][:1] == ["rate 2/s"]


def test_a_sweep_plans_its_closed_levels_then_placeholders_for_its_rates(tmp_path: Path) -> None:
    path = _load(tmp_path, {"model": "sweep", "rate_count": 3}, concurrency_levels=[1, 4])
    plan = sweep_plan(load_config(path))
    buckets = load_config(path).experiments[0].payloads
    assert [(lv.concurrency, lv.rate_per_s) for lv in plan] == [(c, None) for c in (1, 4) for _ in buckets] + [
        (1024, 0.0) for _ in range(3) for _ in buckets
    ]
    assert plan[-1].label == "rate (sweep)"


def test_repeats_run_each_level_back_to_back_and_draw_their_own_schedules(tmp_path: Path) -> None:
    path = _load(tmp_path, {"model": "rate", "rates_per_s": [2]}, concurrency_levels=[], repeats_per_level=3)
    plan = sweep_plan(load_config(path))
    buckets = load_config(path).experiments[0].payloads
    assert [(lv.bucket, lv.repeat) for lv in plan] == [(b, r) for b in buckets for r in (1, 2, 3)]
    assert [lv.label for lv in plan[:2]] == ["rate 2/s, repeat 1/3", "rate 2/s, repeat 2/3"]
    # The first repeat keeps the seed a level had before repeats; each later one draws anew.
    assert schedule_seed(0, "e", "b", 2.0) == schedule_seed(0, "e", "b", 2.0, 1) == "0:e:b:2.0"
    draws = [send_offsets_s(20, 2.0, "poisson", 1.0, schedule_seed(0, "e", "b", 2.0, r)) for r in (1, 2, 3)]
    assert len({tuple(d) for d in draws}) == 3


@pytest.mark.parametrize("repeats", [0, 101, "twice"])
def test_a_bad_repeat_count_is_one_line_naming_the_field(tmp_path: Path, repeats: object) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_load(tmp_path, None, repeats_per_level=repeats))
    message = str(info.value)
    assert "\n" not in message and "experiments[0].repeats_per_level:" in message, message


@pytest.mark.parametrize(
    ("load", "experiment", "named"),
    [
        ({"model": "closed"}, {"concurrency_levels": []}, "experiments[0]: concurrency_levels: needed with load model"),
        ({"model": "sweep"}, {"concurrency_levels": []}, "concurrency_levels: needed with load model sweep"),
        ({"model": "rate", "rates_per_s": [1, 1]}, {}, "experiments[0].load: rates_per_s has duplicates"),
        ({"model": "rate", "rates_per_s": [0]}, {}, "experiments[0].load.rates_per_s[0]: Input should be greater"),
        (
            {"model": "rate", "rates_per_s": [1], "burstiness": 0.5},
            {},
            "burstiness applies to arrival: gamma only (arrival is poisson)",
        ),
        ({"model": "poisson"}, {}, "experiments[0].load"),
        (
            {"model": "rate", "rates_per_s": [1], "max_inflight": 3},
            {},
            "experiments[0].load.max_inflight: unknown key (did you mean 'max_in_flight'?)",
        ),
    ],
)
def test_a_bad_load_is_one_line_naming_the_field(tmp_path: Path, load: dict, experiment: dict, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_load(tmp_path, load, **experiment))
    message = str(info.value)
    assert "\n" not in message and named in message, message


def test_constant_arrivals_are_evenly_spaced_and_stop_at_the_level_duration() -> None:
    assert send_offsets_s(5, 4.0, "constant", 1.0, "s") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert send_offsets_s(100, 4.0, "constant", 1.0, "s", within_s=0.6) == [0.0, 0.25, 0.5]


@pytest.mark.parametrize(("arrival", "shape", "cv2"), [("poisson", 1.0, 1.0), ("gamma", 0.25, 4.0), ("gamma", 4, 0.25)])
def test_random_arrivals_have_the_rate_and_the_burstiness_asked(arrival: str, shape: float, cv2: float) -> None:
    offsets = send_offsets_s(40_000, 50.0, arrival, shape, "seed")  # type: ignore[arg-type]
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert len(gaps) / offsets[-1] == pytest.approx(50.0, rel=0.03)
    # Squared coefficient of variation of the gaps: 1 for Poisson, 1 / shape for gamma (vLLM's burstiness).
    assert (statistics.pstdev(gaps) / statistics.fmean(gaps)) ** 2 == pytest.approx(cv2, rel=0.1)
    # Seeded by a string: the same level draws the same schedule, another level another one.
    assert send_offsets_s(50, 50.0, arrival, shape, "seed") == offsets[:50]  # type: ignore[arg-type]
    assert send_offsets_s(50, 50.0, arrival, shape, "other") != offsets[:50]  # type: ignore[arg-type]


def test_a_sweeps_ladder_climbs_evenly_from_the_floor_to_the_ceiling() -> None:
    assert ladder(2.0, 10.0, 4) == [4.0, 6.0, 8.0, 10.0]
    assert ladder(7.31, 24.09, 3) == [12.9, 18.5, 24.1]  # 3 significant figures
    assert ladder(5.0, 5.0, 3) == [5.0]


def test_the_saturation_rule_cuts_thirds_as_sql_ntile_and_needs_six_successes() -> None:
    # Seven successes in send order: thirds of 3, 2, 2 (ntile gives the remainder to the first groups).
    flat = [(i, 0.1) for i in range(7)]
    assert is_saturated(flat) is False
    climbing = [(0, 0.1), (1, 0.1), (2, 0.9), (3, 0.15), (4, 0.15), (5, 0.2), (6, 0.2)]
    assert is_saturated(climbing) is True  # medians 0.1 and 0.2: exactly 2x
    assert is_saturated(climbing[:5]) is None
    # Order is by send, not by list position.
    assert is_saturated(list(reversed(climbing))) is True


def test_the_collector_and_the_marts_share_the_saturation_settings() -> None:
    dbt_vars = yaml.safe_load((REPO / "models_dbt" / "dbt_project.yml").read_text())["vars"]
    assert dbt_vars["saturation_latency_growth"] == SATURATION_GROWTH
    assert dbt_vars["saturation_min_requests"] == SATURATION_MIN_REQUESTS
