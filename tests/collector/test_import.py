"""`collector import`: each tool's file (hand-written in its real format, tests/fixtures/imports/) lands as the rows
its tool recorded, hand-computed here, with what it did not record left null; bad input is one line and lands nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.cli import main
from collector.landing import run_dirs
from tests.conftest import REPO, config_dict, sim_experiment, write_config

FIXTURES = REPO / "tests" / "fixtures" / "imports"
VLLM = FIXTURES / "vllm_bench_serve_detailed.json"
VLLM_LEGACY = FIXTURES / "vllm_benchmark_serving_legacy.json"
GUIDELLM = FIXTURES / "guidellm_benchmarks.json"
AIPERF = FIXTURES / "aiperf" / "profile_export.jsonl"
FMBENCH = FIXTURES / "fmbench_per_inference_request_results.csv"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
T0 = "2026-01-01 00:00:00+00:00"  # the GuideLLM and AIPerf fixtures' first send, 1767225600 s
COLUMNS = (
    "experiment_name",
    "payload_file",
    "concurrency",
    "sequence_in_level",
    "is_warmup",
    "start_offset_ns",
    "e2e_ns",
    "first_content_ns",
    "last_content_ns",
    "prompt_tokens",
    "completion_tokens",
    "status",
    "http_status",
    "error_type",
    "error_message",
    "source_request_id",
)


class Imported:
    """What one `collector import` landed: its request rows (in send order) and its manifest."""

    def __init__(self, results: Path) -> None:
        (self.dir,) = run_dirs(results)
        con = duckdb.connect()
        try:
            rel = con.sql(
                "select * from read_parquet($p) order by cast(split_part(request_id, ':', 2) as integer)",
                params={"p": str(self.dir / "requests.parquet")},
            )
            self.rows = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
        finally:
            con.close()
        self.manifest = json.loads((self.dir / "run.json").read_text())

    def table(self, *columns: str) -> list[tuple[Any, ...]]:
        return [tuple(row[c] for c in columns) for row in self.rows]


def _config(tmp_path: Path) -> Path:
    """A config whose budgets and frozen prices the imports take (--config)."""
    return write_config(tmp_path / "budgets.yml", config_dict([sim_experiment()]))


def run_import(tmp_path: Path, tool: str, file: Path, *args: str) -> tuple[int, Path]:
    results = tmp_path / "results"
    rc = main(
        [
            "import",
            tool,
            str(file),
            "--results-dir",
            str(results),
            "--config",
            str(_config(tmp_path)),
            "--no-build",
            *args,
        ]
    )
    return rc, results


def imported(tmp_path: Path, tool: str, file: Path, *args: str) -> Imported:
    rc, results = run_import(tmp_path, tool, file, *args)
    assert rc == 0
    return Imported(results)


def test_vllm_detailed_result_lands_each_request_with_its_send_time_latency_ttft_and_tokens(tmp_path: Path) -> None:
    run = imported(tmp_path, "vllm", VLLM, "--instance-type", "g5.4xlarge", "--payload-file", "short")
    # Sent at perf_counter 1000.0, 1000.0, 1001.0 and 1001.5 s; the last failed (a timeout traceback, ttft and
    # latency left at vLLM's 0): its e2e, TTFT and completion tokens are null, its prompt tokens are kept.
    # TTFT + sum(itls) is the last chunk: 0.2 + 4 x 0.2 = 1.0 s, the request's latency.
    assert run.table(*COLUMNS) == [
        (
            "vllm",
            "short",
            2,
            0,
            False,
            0,
            1_000_000_000,
            200_000_000,
            1_000_000_000,
            100,
            5,
            "success",
            None,
            None,
            None,
            None,
        ),
        (
            "vllm",
            "short",
            2,
            1,
            False,
            0,
            1_500_000_000,
            300_000_000,
            1_500_000_000,
            120,
            5,
            "success",
            None,
            None,
            None,
            None,
        ),
        (
            "vllm",
            "short",
            2,
            2,
            False,
            1_000_000_000,
            1_250_000_000,
            250_000_000,
            1_250_000_000,
            110,
            5,
            "success",
            None,
            None,
            None,
            None,
        ),
        (
            "vllm",
            "short",
            2,
            3,
            False,
            1_500_000_000,
            None,
            None,
            None,
            90,
            None,
            "error",
            None,
            "timeout",
            "TimeoutError",
            None,
        ),
    ]
    row = run.rows[0]
    assert (row["source_tool"], row["endpoint_type"], row["api_style"], row["is_streaming"], row["model_id"]) == (
        "vllm",
        "imported",
        "chat",
        True,
        MODEL,
    )
    # perf_counter is no wall clock, and vLLM counts no chunks of ours or tokens on the client side.
    for column in ("started_at", "worker_index", "chunk_count", "client_prompt_tokens", "token_count_source"):
        assert {r[column] for r in run.rows} == {None}, column
    assert {r["source_level_duration_ns"] for r in run.rows} == {None}  # the rows give the span themselves


def test_vllm_result_without_send_times_or_latencies_carries_its_duration_and_leaves_e2e_null(tmp_path: Path) -> None:
    run = imported(tmp_path, "vllm", VLLM_LEGACY, "--unpriced")
    # benchmark_serving.py's file: TTFT to the first non-empty text, itls between text chunks, no latency (it ran to
    # [DONE]) and no send time. Last chunk: 0.1 + 3 x 0.1 = 0.4 s, 0.2 + 5 x 0.15 = 0.95 s.
    assert run.table(
        "start_offset_ns", "e2e_ns", "first_content_ns", "last_content_ns", "completion_tokens", "status"
    ) == [
        (None, None, 100_000_000, 400_000_000, 4, "success"),
        (None, None, 200_000_000, 950_000_000, 6, "success"),
        (None, None, None, None, None, "error"),
    ]
    assert {r["source_level_duration_ns"] for r in run.rows} == {3_000_000_000}  # vLLM's duration, 3.0 s
    assert (run.rows[2]["error_type"], run.rows[2]["error_message"]) == ("tool_error", "Bad Request")
    assert {r["concurrency"] for r in run.rows} == {1}  # max_concurrency 1 at request_rate inf
    assert run.manifest["config_json"]["import"]["levels"][0]["duration_s"] == 3.0


def test_guidellm_report_lands_each_concurrency_benchmark_as_a_level_and_skips_the_rate_one(tmp_path: Path) -> None:
    run = imported(tmp_path, "guidellm", GUIDELLM, "--instance-type", "g5.4xlarge")
    # Unix seconds from 1767225600: synchronous A 0-0.5, B 0.5-1.0; concurrent@2 W 1.5-1.875 (before its measured
    # window, which opens at 2.0: warm-up), C 2.0-2.75, D 2.0-3.0, E 2.75-2.875 (HTTP 500); F was cut off when the
    # benchmark ended (incomplete: left out); the constant@4.00 benchmark is an open-loop rate: skipped.
    assert run.table(
        "concurrency",
        "is_warmup",
        "start_offset_ns",
        "e2e_ns",
        "first_content_ns",
        "last_content_ns",
        "prompt_tokens",
        "completion_tokens",
        "status",
        "source_request_id",
    ) == [
        (1, False, 0, 500_000_000, 125_000_000, 500_000_000, 50, 5, "success", "a3f1c0de-0001-4000-8000-000000000001"),
        (
            1,
            False,
            500_000_000,
            500_000_000,
            125_000_000,
            500_000_000,
            60,
            4,
            "success",
            "a3f1c0de-0002-4000-8000-000000000002",
        ),
        (
            2,
            True,
            1_500_000_000,
            375_000_000,
            125_000_000,
            375_000_000,
            30,
            3,
            "success",
            "a3f1c0de-0003-4000-8000-000000000003",
        ),
        (
            2,
            False,
            2_000_000_000,
            750_000_000,
            250_000_000,
            750_000_000,
            50,
            4,
            "success",
            "a3f1c0de-0004-4000-8000-000000000004",
        ),
        (
            2,
            False,
            2_000_000_000,
            1_000_000_000,
            375_000_000,
            1_000_000_000,
            70,
            8,
            "success",
            "a3f1c0de-0005-4000-8000-000000000005",
        ),
        (2, False, 2_750_000_000, 125_000_000, None, None, 40, None, "error", "a3f1c0de-0006-4000-8000-000000000006"),
    ]
    assert str(run.rows[0]["started_at"]) == T0
    failed = run.rows[5]
    assert failed["error_type"] == "tool_error" and failed["error_message"].startswith(
        "HTTPStatusError: Server error '500"
    )
    imports = run.manifest["config_json"]["import"]
    assert imports["skipped"] == [
        "benchmark 2 (constant@4.00): an open-loop rate level; the marts key levels by concurrency, so it cannot be "
        "imported yet"
    ]
    assert imports["tool_facts"]["incomplete_requests_left_out"] == {"benchmark 1 (concurrent@2)": 1}
    assert [lv["source_level"] for lv in imports["levels"]] == ["benchmark 0: synchronous", "benchmark 1: concurrent@2"]
    assert run.manifest["config_json"]["experiments"] == [
        {"name": "guidellm", "model_id": MODEL, "payloads": ["imported"], "concurrency_levels": [1, 2]}
    ]
    assert run.manifest["started_at"].startswith("2026-01-01T00:00:00")  # the first send GuideLLM recorded


def test_aiperf_export_takes_its_concurrency_from_the_aggregate_beside_it_and_marks_its_warmup(tmp_path: Path) -> None:
    run = imported(tmp_path, "aiperf", AIPERF, "--instance-type", "g5.4xlarge")
    # request_start_ns from 1767225600 s; metrics in ms; the failed request's e2e is its send-to-error time (50 ms).
    assert run.table(
        "concurrency",
        "is_warmup",
        "start_offset_ns",
        "e2e_ns",
        "first_content_ns",
        "prompt_tokens",
        "completion_tokens",
        "status",
        "http_status",
        "error_type",
    ) == [
        (2, True, 0, 400_000_000, 150_000_000, 90, 4, "success", None, None),
        (2, False, 1_000_000_000, 800_000_000, 200_000_000, 100, 8, "success", None, None),
        (2, False, 1_000_000_000, 1_000_000_000, 300_000_000, 120, 10, "success", None, None),
        (2, False, 1_800_000_000, 600_000_000, 100_000_000, 80, 6, "success", None, None),
        (2, False, 2_000_000_000, 50_000_000, None, 90, None, "error", 500, "http_error"),
    ]
    assert run.rows[4]["error_message"].startswith('Internal Server Error: {"object":"error"')
    assert str(run.rows[1]["started_at"]) == "2026-01-01 00:00:01+00:00"
    assert (run.rows[0]["model_id"], run.rows[0]["api_style"], run.rows[0]["is_streaming"]) == (MODEL, "chat", True)
    assert {r["last_content_ns"] for r in run.rows} == {None}  # AIPerf keeps no time of its last token


def test_aiperf_export_alone_needs_the_concurrency_it_ran_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alone = tmp_path / "export" / "profile_export.jsonl"
    alone.parent.mkdir()
    shutil.copy(AIPERF, alone)
    rc, results = run_import(tmp_path, "aiperf", alone, "--unpriced", "--model-id", "my-model")
    assert rc == 2 and not run_dirs(results)
    assert "does not record the concurrency it ran at: pass --concurrency N" in capsys.readouterr().err
    run = imported(tmp_path, "aiperf", alone, "--unpriced", "--concurrency", "2", "--model-id", "my-model")
    assert {(r["concurrency"], r["model_id"], r["api_style"]) for r in run.rows} == {(2, "my-model", None)}


def test_fmbench_csv_lands_its_experiment_and_levels_without_send_times(tmp_path: Path) -> None:
    run = imported(tmp_path, "fmbench", FMBENCH, "--model-id", MODEL)
    # Streamed rows have time_to_last_token (their end-to-end time); the others only latency. The last row has no
    # completion: FMBench's failure, with no message.
    assert run.table(
        "experiment_name",
        "payload_file",
        "concurrency",
        "start_offset_ns",
        "e2e_ns",
        "first_content_ns",
        "last_content_ns",
        "prompt_tokens",
        "completion_tokens",
        "status",
    ) == [
        (
            "llama3-1-8b-g5.2xl-vllm",
            "payload_en_1-500.jsonl",
            1,
            None,
            1_200_000_000,
            200_000_000,
            1_200_000_000,
            48,
            8,
            "success",
        ),
        (
            "llama3-1-8b-g5.2xl-vllm",
            "payload_en_1-500.jsonl",
            1,
            None,
            800_000_000,
            100_000_000,
            800_000_000,
            50,
            6,
            "success",
        ),
        ("llama3-1-8b-g5.2xl-vllm", "payload_en_1-500.jsonl", 2, None, 1_500_000_000, None, None, 52, 7, "success"),
        ("llama3-1-8b-g5.2xl-vllm", "payload_en_1-500.jsonl", 2, None, 2_000_000_000, None, None, 49, None, "error"),
    ]
    assert {(r["instance_type"], r["instance_count"]) for r in run.rows} == {("g5.2xlarge", 1)}  # from its columns
    assert run.rows[0]["source_request_id"] == "0b1e6a40c8d14b5e9f3a2c7d8e9f0a1b"
    (priced,) = run.manifest["experiments_json"]
    assert (priced["instance_type"], priced["usd_per_hour"], priced["pricing_kind"]) == (
        "g5.2xlarge",
        1.212,
        "instance",
    )


def test_manifest_names_the_tool_and_file_records_the_price_applied_and_is_completed(tmp_path: Path) -> None:
    run = imported(
        tmp_path,
        "vllm",
        VLLM,
        "--instance-type",
        "g5.4xlarge",
        "--instance-count",
        "2",
        "--experiment-name",
        "vllm-h100",
        "--run-name",
        "peer-results",
    )
    m = run.manifest
    assert (m["status"], m["source_tool"], m["source_file"], m["run_name"]) == (
        "completed",
        "vllm",
        str(VLLM.resolve()),
        "peer-results",
    )
    (priced,) = m["experiments_json"]
    assert priced == {
        "experiment_name": "vllm-h100",
        "model_id": MODEL,
        "endpoint_type": "imported",
        "instance_type": "g5.4xlarge",
        "instance_count": 2,
        "pricing_kind": "instance",
        "price_source": "pricing",
        "usd_per_hour": 1.624,
        "usd_per_1m_input_tokens": None,
        "usd_per_1m_output_tokens": None,
        "price_read_on": "2026-11-26",
        "telemetry_host": None,
    }
    assert (m["latency_budget_s"], m["cost_per_10k_txn_budget_usd"], m["dataset_of_interest"]) == (2, 20, "short")
    level = m["config_json"]["import"]["levels"][0]
    assert level == {
        "experiment_name": "vllm-h100",
        "payload_file": "imported",
        "concurrency": 2,
        "source_level": "request_rate=inf, max_concurrency=2",
        "requests": 4,
        "duration_s": None,
    }
    assert m["config_json"]["import"]["file_sha256"] and {r["instance_count"] for r in run.rows} == {2}


def test_an_inline_hourly_price_needs_no_pricing_row(tmp_path: Path) -> None:
    run = imported(tmp_path, "vllm", VLLM, "--instance-type", "my-box", "--usd-per-hour", "3.5")
    (priced,) = run.manifest["experiments_json"]
    assert (priced["pricing_kind"], priced["price_source"], priced["usd_per_hour"]) == ("instance", "config", 3.5)


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "truncated.json"
    path.write_bytes(VLLM.read_bytes()[:700])
    return path


def _without(key: str) -> Any:
    def make(tmp_path: Path) -> Path:
        data = json.loads(VLLM.read_text())
        del data[key]
        path = tmp_path / f"without-{key}.json"
        path.write_text(json.dumps(data))
        return path

    return make


def _edited(source: Path, edit: Any, name: str) -> Any:
    def make(tmp_path: Path) -> Path:
        data = json.loads(source.read_text())
        edit(data)
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return make


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.json"
    path.write_text("\n")
    return path


def _fixture(path: Path) -> Any:
    return lambda tmp_path: path


def _csv_without_latency(tmp_path: Path) -> Path:
    path = tmp_path / "results.csv"
    path.write_text(FMBENCH.read_text().replace(",latency,", ",elapsed,", 1))
    return path


def _aiperf_truncated(tmp_path: Path) -> Path:
    path = tmp_path / "profile_export.jsonl"
    path.write_text(AIPERF.read_text()[:-200])
    return path


def _guidellm_old_shape(data: dict[str, Any]) -> None:
    bench = data["benchmarks"][0]
    bench["requests"]["successful"] = [
        {
            "type_": "generative_text_response",
            "request_id": "x",
            "start_time": 1.0,
            "end_time": 2.0,
            "first_token_time": 1.5,
        }
    ]


BAD_INPUT = [
    # (tool, file maker, option args, what the one line must say)
    ("vllm", _fixture(GUIDELLM), (), "looks like GuideLLM's benchmarks report JSON"),
    ("aiperf", _fixture(VLLM), (), "looks like vLLM's `vllm bench serve --save-result --save-detailed` JSON"),
    ("guidellm", _fixture(FMBENCH), (), "looks like FMBench's per-request results CSV"),
    ("vllm", _fixture(AIPERF), (), "looks like AIPerf's per-request export"),
    ("vllm", _truncated, (), "not JSON (truncated?)"),
    ("vllm", _empty, (), "empty file"),
    ("aiperf", _empty, ("--concurrency", "2"), "empty file"),
    (
        "aiperf",
        _aiperf_truncated,
        ("--concurrency", "2"),
        ":5: AIPerf's per-request export (profile_export.jsonl): not JSON",
    ),
    ("vllm", _without("completed"), (), "completed: missing (the tool always writes it)"),
    ("vllm", _without("ttfts"), (), "ttfts: missing (the tool always writes it)"),
    ("vllm", _without("request_rate"), (), "request_rate: missing (the tool always writes it)"),
    (
        "vllm",
        _edited(
            VLLM,
            lambda d: [
                d.pop(k)
                for k in (
                    "input_lens",
                    "output_lens",
                    "ttfts",
                    "itls",
                    "errors",
                    "start_times",
                    "latencies",
                    "generated_texts",
                )
            ],
            "summary.json",
        ),
        (),
        "no per-request lists (ttfts, itls, ...): vLLM writes them only with --save-detailed",
    ),
    (
        "vllm",
        _edited(VLLM, lambda d: d.update(request_rate=4.0), "rate.json"),
        (),
        "request_rate 4.0 req/s capped at max_concurrency 2: an open-loop rate level",
    ),
    (
        "vllm",
        _edited(VLLM, lambda d: d.update(completed=4), "count.json"),
        (),
        "requests succeeded (an empty error, with or without a first chunk) but completed says 4",
    ),
    ("vllm", _edited(VLLM, lambda d: d["itls"].pop(), "short.json"), (), "itls: 3 entries where ttfts has 4"),
    ("guidellm", _edited(GUIDELLM, _guidellm_old_shape, "old.json"), (), "a GuideLLM report from before 0.4"),
    (
        "guidellm",
        _edited(GUIDELLM, lambda d: d.update(benchmarks=d["benchmarks"][2:]), "rates.json"),
        (),
        "no benchmark with a concurrency to import: benchmark 0 (constant@4.00): an open-loop rate level",
    ),
    ("fmbench", _csv_without_latency, ("--model-id", MODEL), "no column latency"),
    ("vllm", _fixture(VLLM), ("--instance-type", "g5.4xlarg"), "--instance-type: unknown instance type 'g5.4xlarg'"),
    ("vllm", _fixture(VLLM), (), f"--model-id: no --instance-type and no token price for '{MODEL}'"),
    ("fmbench", _fixture(FMBENCH), (), "--model-id: "),
    ("vllm", _fixture(VLLM), ("--concurrency", "4", "--unpriced"), "--concurrency: only for aiperf"),
    ("vllm", _fixture(VLLM), ("--experiment-name", "a/b", "--unpriced"), "--experiment-name: 'a/b' may only hold"),
]


@pytest.mark.parametrize(("tool", "make", "extra", "says"), BAD_INPUT, ids=[c[3][:40] for c in BAD_INPUT])
def test_bad_input_is_one_line_naming_the_file_or_option_and_lands_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tool: str, make: Any, extra: tuple[str, ...], says: str
) -> None:
    file = make(tmp_path)
    rc, results = run_import(tmp_path, tool, file, *extra)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert says in err, err
    if not says.startswith("--"):
        assert str(file) in err
    assert not run_dirs(results)
