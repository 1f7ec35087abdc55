"""The server's view in the marts, built by the real dbt on landed rows: a level whose engine counted more tokens
than the client recorded is flagged, one whose totals agree is not, and a run landed before raw schema v6 (no
server columns) still builds, its host telemetry intact and no server view."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from collector import dbt_runner
from collector.landing import compact_run
from collector.schema import TelemetrySample
from collector.warehouse import refresh, warehouse_path
from tests.dbt.builders import PRICING_DIR, Experiment, Instant, Req, RunSpec, land_run, ns, query

NEW, OLD = "20261203T090000Z-aaaaaa", "20261203T100000Z-bbbbbb"
V6_COLUMNS = [c for c in TelemetrySample.__dataclass_fields__ if c.startswith("server_")] + [
    "source",
    "experiment_name",
    "level_boundary",
]


def _spec(run_id: str) -> RunSpec:
    return RunSpec(
        run_id=run_id,
        run_name="server-view",
        experiments=[Experiment("e")],
        requests=[  # 100 prompt and 10 completion tokens each
            Req("e", "b", 1, 0.0, 1.0, is_warmup=True),
            *(Req("e", "b", 1, 1.0 + i, 1.0) for i in range(3)),  # window 1.0 .. 4.0 s
            Req("e", "b", 2, 4.0, 0.5, is_warmup=True),
            Req("e", "b", 2, 5.0, 1.0),  # window 5.0 .. 6.0 s
            Req("e", "b", 2, 5.0, 1.0, worker_index=1),
        ],
        instants=[Instant(0.5 + i) for i in range(6)],
        dataset_of_interest="b",
    )


def _server(offset_s: float, boundary: str | None = None, **values: float) -> TelemetrySample:
    return TelemetrySample(
        run_id=NEW,
        sampled_at="2026-12-03T09:00:00+00:00",
        offset_ns=ns(offset_s),
        hostname="testhost",
        device="server",
        gpu_index=None,
        gpu_name=None,
        cpu_percent=None,
        memory_used_bytes=None,
        memory_total_bytes=None,
        gpu_utilization_percent=None,
        gpu_memory_used_bytes=None,
        gpu_memory_total_bytes=None,
        gpu_power_w=None,
        gpu_energy_j=None,
        source="server:vllm",
        experiment_name="e",
        level_boundary=boundary,
        **values,  # type: ignore[arg-type]
    )


# Level c=1: the engine's counters go 1100 -> 1400 prompt tokens (the client's 300) and 510 -> 545 generated (the
# client's 30: 5 more). Level c=2: 1400 -> 1600 and 550 -> 570, the client's 200 and 20.
SERVER_ROWS = [
    _server(1.0, "measured_start", server_prompt_tokens_total=1100, server_generation_tokens_total=510),
    _server(1.5, server_requests_running=1, server_requests_waiting=0, server_kv_cache_usage=0.25),
    _server(2.5, server_requests_running=1, server_requests_waiting=1, server_kv_cache_usage=0.5),
    _server(3.5, server_requests_running=1, server_requests_waiting=2, server_kv_cache_usage=0.75),
    _server(4.0, "measured_end", server_prompt_tokens_total=1400, server_generation_tokens_total=545),
    _server(4.6, "measured_start", server_prompt_tokens_total=1400, server_generation_tokens_total=550),
    _server(6.1, "measured_end", server_prompt_tokens_total=1600, server_generation_tokens_total=570),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("server-view") / "results"
    new = land_run(results, _spec(NEW), compact=False)
    with (new / "telemetry_samples.jsonl").open("a") as samples:
        samples.writelines(json.dumps(asdict(row)) + "\n" for row in SERVER_ROWS)
    compact_run(new)
    old = land_run(results, _spec(OLD), compact=False)
    samples = old / "telemetry_samples.jsonl"  # as a v5 collector landed it: the columns did not exist
    lines = []
    for line in samples.read_text().splitlines():
        data = json.loads(line)
        for column in V6_COLUMNS:
            del data[column]
        data["schema_version"] = 5
        lines.append(json.dumps(data))
    samples.write_text("\n".join(lines) + "\n")
    compact_run(old)
    path = refresh(results, warehouse_path(results))
    dbt_runner.build(path, pricing_dir=PRICING_DIR)
    return path


def test_a_level_whose_engine_counted_more_tokens_is_flagged_and_one_that_agrees_is_not(built: Path) -> None:
    rows = query(
        built,
        "select concurrency, client_prompt_tokens, server_prompt_tokens, client_completion_tokens, "
        "server_generation_tokens, completion_tokens_difference, is_token_total_mismatch, gauge_sample_count, "
        "mean_requests_waiting, max_requests_waiting, mean_kv_cache_usage, max_kv_cache_usage "
        "from marts.fct_level_server_view where run_id = ? order by concurrency",
        [NEW],
    )
    assert rows == [
        {
            "concurrency": 1,
            "client_prompt_tokens": 300,
            "server_prompt_tokens": 300,
            "client_completion_tokens": 30,
            "server_generation_tokens": 35,
            "completion_tokens_difference": 5,
            "is_token_total_mismatch": True,
            "gauge_sample_count": 3,
            "mean_requests_waiting": 1.0,
            "max_requests_waiting": 2.0,
            "mean_kv_cache_usage": 0.5,
            "max_kv_cache_usage": 0.75,
        },
        {
            "concurrency": 2,
            "client_prompt_tokens": 200,
            "server_prompt_tokens": 200,
            "client_completion_tokens": 20,
            "server_generation_tokens": 20,
            "completion_tokens_difference": 0,
            "is_token_total_mismatch": False,
            "gauge_sample_count": 0,
            "mean_requests_waiting": None,
            "max_requests_waiting": None,
            "mean_kv_cache_usage": None,
            "max_kv_cache_usage": None,
        },
    ]


def test_a_run_landed_before_schema_v6_builds_with_its_host_telemetry_and_no_server_view(built: Path) -> None:
    assert query(built, "select count(*) as n from marts.fct_level_server_view where run_id = ?", [OLD]) == [{"n": 0}]
    (raw,) = query(
        built,
        "select count(*) as n, count(source) as with_source, max(schema_version) as version "
        "from raw.telemetry_samples where run_id = ?",
        [OLD],
    )
    assert raw == {"n": 6, "with_source": 0, "version": 5}
    # The host samples of both runs are the same telemetry; the engine's rows are not host samples.
    counts = query(
        built,
        "select run_id, count(*) as n from marts.fct_telemetry_samples group by run_id order by run_id",
    )
    assert counts == [{"run_id": NEW, "n": 6}, {"run_id": OLD, "n": 6}]
