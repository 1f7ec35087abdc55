"""No raw row can fail `dbt build`: insane values are quarantined with a reason and left out of every metric.

Two results folders are built with the real landing code and the real `dbt build`: a clean one (runs A and B
of the shared scenario, plus a live and a lost run) and the same with poison added to it (request rows with
negative, absent or oversized values, as an old collector or a hostile server could land them, and manifests
with prices that are not prices). Every mart of the poisoned build must equal the clean build's.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.landing import RunLanding
from tests.dbt.builders import (
    LARGE,
    RUN_A,
    RUN_B,
    SMALL,
    RunSpec,
    build_warehouse,
    copy_pricing,
    manifest,
    query,
    request_rows,
    run_a,
    run_b,
    telemetry_rows,
)

pytestmark = pytest.mark.slow

RUN_LIVE = "20261126T140000Z-cccccc"
RUN_GONE = "20261126T150000Z-dddddd"
FLAGGED_NOTE = "usage.completion_tokens -3 is negative: the client's count (40) is used"

# Poison request rows, each a copy of a sane measured row of run A (vllm-g5, en_500-1000, concurrency 1) with
# one value broken, and the reason fct_quarantined_rows must give for it.
POISON: dict[str, tuple[dict[str, Any], str]] = {
    "negative-tokens": ({"completion_tokens": -40}, "completion_tokens -40 outside [0, 100000000]"),
    "null-concurrency": ({"concurrency": None}, "concurrency missing"),
    "concurrency-3e9": ({"concurrency": 3_000_000_000}, "concurrency missing"),
    "prompt-tokens-3e9": ({"prompt_tokens": 3_000_000_000}, "prompt_tokens missing"),
    "completion-tokens-1e30": ({"completion_tokens": 1e30}, "completion_tokens missing"),
    "negative-latency": ({"e2e_ns": -1_000_000_000}, "e2e_ns -1000000000 outside [0, 10000000000000000]"),
    "ttft-after-end": ({"first_content_ns": 9_000_000_000}, "first_content_ns 9000000000 outside [0, e2e_ns]"),
}

MARTS = [
    "fct_concurrency_metrics",
    "fct_recommendations",
    "fct_failed_experiments",
    "fct_experiment_costs",
    "fct_endpoint_metrics",
    "fct_telemetry_samples",
    "fct_requests",
]


def _run_b(*, poisoned: bool) -> RunSpec:
    """Run B, whose custom-box (an instance type pricing/ lacks) and vllm-g5 recorded no usable price."""
    spec = run_b()
    vllm, custom = spec.experiments
    # Poisoned: a negative price where the recorded price applies, text where pricing/ wins anyway.
    vllm.usd_per_hour = "1.6 USD" if poisoned else None  # type: ignore[assignment]
    custom.usd_per_hour = -2.0 if poisoned else None
    return spec


def _live_and_gone() -> list[RunSpec]:
    live = replace(run_b(), run_id=RUN_LIVE, run_name="live", status="running")
    gone = replace(run_b(), run_id=RUN_GONE, run_name="gone", status="lost")
    return [live, gone]


def _land(results: Path, spec: RunSpec, *, poison: bool = False) -> None:
    """Land a run as the collector does (JSONL, not compacted, as after a kill), with the poison rows if asked."""
    landing = RunLanding(results, spec.run_id)
    recorded = manifest(spec)
    if spec.status == "running":  # alive: a heartbeat a little ahead of the clock
        recorded = replace(recorded, heartbeat_at=(datetime.now(UTC) + timedelta(minutes=10)).isoformat())
    landing.write_manifest(recorded)
    for row in request_rows(spec):
        data = asdict(row)
        if spec.run_id == RUN_A and data["request_id"] == f"{RUN_A}:5":
            data["data_issue"] = FLAGGED_NOTE  # a sane row the collector flagged: counted, and listed
        landing.append("requests", data)
    for sample in telemetry_rows(spec):
        landing.append("telemetry_samples", sample)
    if poison:
        for data in _poison_rows():
            landing.append("requests", data)
        landing.append("telemetry_samples", _poison_telemetry())
    landing.close()


def _poison_rows() -> list[dict[str, Any]]:
    template = next(
        asdict(r)
        for r in request_rows(run_a())
        if r.experiment_name == "vllm-g5" and r.payload_file == LARGE and r.concurrency == 1
    )
    return [{**template, **values, "request_id": f"{RUN_A}:poison-{name}"} for name, (values, _) in POISON.items()]


def _poison_telemetry() -> dict[str, Any]:
    """A second reading of GPU 0 at 10 s with a negative power draw."""
    sample = next(s for s in telemetry_rows(run_a()) if s.device == "gpu0" and s.offset_ns == 10_000_000_000)
    return {**asdict(sample), "gpu_power_w": -100.0}


def _build(results: Path, *, poisoned: bool) -> Path:
    _land(results, run_a(), poison=poisoned)
    _land(results, _run_b(poisoned=poisoned))
    for spec in _live_and_gone():
        _land(results, spec)
    return build_warehouse(results)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("clean"), poisoned=False)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The clean folder plus every poison: the build must pass (build_warehouse raises on a failed build)."""
    return _build(tmp_path_factory.mktemp("poisoned"), poisoned=True)


def _rows(warehouse: Path, relation: str, exclude: str = "") -> list[dict[str, Any]]:
    cols = f"* exclude ({exclude})" if exclude else "*"
    return query(warehouse, f"select {cols} from {relation} order by all")


def _quarantine(warehouse: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows = query(warehouse, "select * from marts.fct_quarantined_rows")
    return {(r["source_table"], r["record_key"]): r for r in rows}


@pytest.mark.parametrize("mart", MARTS)
def test_poisoned_folder_builds_and_good_rows_metrics_equal_a_build_without_the_poison(
    clean: Path, poisoned: Path, mart: str
) -> None:
    expected = _rows(clean, f"marts.{mart}")
    assert expected, f"marts.{mart} is empty: the comparison would prove nothing"
    assert _rows(poisoned, f"marts.{mart}") == [
        {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in row.items()} for row in expected
    ]


def test_runs_keep_their_figures_and_count_the_rows_left_out(clean: Path, poisoned: Path) -> None:
    # The live run's heartbeat is set when it lands, so it differs between the two folders.
    different = "excluded_request_count, heartbeat_at"
    assert _rows(poisoned, "marts.dim_runs", different) == _rows(clean, "marts.dim_runs", different)
    counts = {
        r["run_id"]: (r["excluded_request_count"], r["flagged_request_count"])
        for r in query(poisoned, "select * from marts.dim_runs")
    }
    assert counts[RUN_A] == (len(POISON), 1)
    assert counts[RUN_B] == (0, 0)


def test_each_poisoned_request_is_quarantined_with_its_reason(poisoned: Path) -> None:
    quarantine = _quarantine(poisoned)
    for name, (_, reason) in POISON.items():
        row = quarantine[("requests", f"{RUN_A}:poison-{name}")]
        assert row["disposition"] == "excluded"
        assert row["run_id"] == RUN_A
        assert reason in row["reason"], name
    (sample,) = [r for (table, _), r in quarantine.items() if table == "telemetry_samples"]
    assert sample["record_key"] == "gpu0 at 10000000000 ns"
    assert sample["reason"].startswith("gpu_power_w -100.0 below 0")


def test_insane_manifest_prices_are_set_aside_and_listed(poisoned: Path) -> None:
    quarantine = _quarantine(poisoned)
    custom = quarantine[("run_experiments", "custom-box")]
    assert (custom["run_id"], custom["disposition"]) == (RUN_B, "flagged")
    assert custom["reason"].startswith("usd_per_hour -2.0 is not a finite price >= 0")
    vllm = quarantine[("run_experiments", "vllm-g5")]
    assert (vllm["run_id"], vllm["disposition"]) == (RUN_B, "flagged")
    assert vllm["reason"].startswith("usd_per_hour '1.6 USD' is not a number")
    (cost,) = query(
        poisoned,
        "select price_source, usd_per_hour, cost_usd from marts.fct_experiment_costs "
        "where run_id = ? and experiment_name = 'custom-box'",
        [RUN_B],
    )
    assert cost == {"price_source": "none", "usd_per_hour": None, "cost_usd": None}


def test_a_request_the_collector_flagged_counts_and_is_listed(clean: Path) -> None:
    (row,) = query(clean, "select * from marts.fct_quarantined_rows")
    assert row == {
        "source_table": "requests",
        "run_id": RUN_A,
        "record_key": f"{RUN_A}:5",
        "disposition": "flagged",
        "reason": FLAGGED_NOTE,
        "data_issue": FLAGGED_NOTE,
    }
    (request,) = query(
        clean, "select data_issue, is_success from marts.fct_requests where request_id = ?", [f"{RUN_A}:5"]
    )
    assert request == {"data_issue": FLAGGED_NOTE, "is_success": True}


def test_run_status_is_judged_when_dim_runs_is_read_not_when_built(clean: Path, tmp_path: Path) -> None:
    statuses = {r["run_id"]: (r["status"], r["recorded_status"]) for r in query(clean, "select * from marts.dim_runs")}
    assert statuses[RUN_LIVE] == ("running", "running")
    assert statuses[RUN_GONE] == ("lost", "lost")  # recorded by the collector: the process was gone
    # Time passes after the build: the live run's heartbeat, as built, is now an hour older.
    aged = tmp_path / "aged.duckdb"
    shutil.copy(clean, aged)
    con = duckdb.connect(str(aged))
    try:
        con.execute(
            "update intermediate.int_runs_summarised set heartbeat_at = heartbeat_at - interval 1 hour "
            "where run_id = ?",
            [RUN_LIVE],
        )
    finally:
        con.close()
    (live,) = query(aged, "select status, recorded_status from marts.dim_runs where run_id = ?", [RUN_LIVE])
    assert live == {"status": "lost", "recorded_status": "running"}


def test_build_works_under_a_folder_with_a_quote_spaces_and_braces(tmp_path: Path) -> None:
    base = tmp_path / "it's a {dir}"
    pricing = copy_pricing(base / "pricing")
    prices = (pricing / "instance_prices.csv").read_text()
    (pricing / "instance_prices.csv").write_text(
        prices.replace("\ng5.4xlarge,us-east-1,1.624,", "\ng5.4xlarge,us-east-1,9.5,")
    )
    warehouse = build_warehouse(base / "results", [run_a()], pricing_dir=pricing)
    assert warehouse.parent == base / "results"
    rows = query(
        warehouse,
        "select distinct usd_per_hour from marts.fct_concurrency_metrics where experiment_name = 'vllm-g5'",
    )
    assert rows == [{"usd_per_hour": 9.5}]  # the price file in that folder was read
    assert {r["payload_file"] for r in query(warehouse, "select payload_file from marts.fct_requests")} == {
        SMALL,
        LARGE,
    }
