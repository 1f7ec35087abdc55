"""The server's own view: each engine's /metrics page read into the same columns, the simulator's counters held to
the usage it reported, and how `server_metrics` behaves when a page is missing or is no engine's."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from collector.config import load_config
from collector.errors import ConfigError, EndpointError
from collector.server_metrics import ENGINES, ServerScraper, detect, extract, fetch, parse
from collector.sim.settings import SimSettings
from tests.collector.test_sim_server import SERVED, ServerThread
from tests.conftest import config_dict, run_cli, run_dirs, sim_experiment, write_config
from tests.servers import misbehaving_server

FIXTURES = Path(__file__).parents[1] / "fixtures" / "server_metrics"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"

# Each page's columns by hand from the fixture file (sums over label sets; the served model's where it is named).
EXPECTED: dict[str, tuple[str, str | None, dict[str, float]]] = {
    "vllm": (
        "vllm",
        LLAMA,  # other/model's 1000 prompt tokens and 5 running requests are left out
        {
            "server_requests_running": 3,
            "server_requests_waiting": 2,
            "server_kv_cache_usage": 0.4375,
            "server_prompt_tokens_total": 12345,
            "server_generation_tokens_total": 6789,
            "server_ttft_sum_s": 8.5,
            "server_ttft_count": 40,
            "server_e2e_sum_s": 61.25,
            "server_e2e_count": 40,
            "server_queue_time_sum_s": 2.0,
            "server_queue_time_count": 40,
        },
    ),
    "vllm_old": (
        "vllm",
        None,
        {
            "server_requests_running": 1,
            "server_requests_waiting": 0,
            "server_kv_cache_usage": 0.125,  # from gpu_cache_usage_perc, the name before 0.10
            "server_prompt_tokens_total": 100,
            "server_generation_tokens_total": 40,
        },
    ),
    "sglang": (
        "sglang",
        LLAMA,
        {
            "server_requests_running": 24,
            "server_requests_waiting": 7,
            "server_kv_cache_usage": 0.28,
            "server_prompt_tokens_total": 8128902,
            "server_generation_tokens_total": 7557572,
            "server_ttft_sum_s": 2351897.9474117756,
            "server_ttft_count": 541,
            "server_e2e_sum_s": 3116093.850019932,
            "server_e2e_count": 541,
            "server_queue_time_sum_s": 125,
            "server_queue_time_count": 541,
        },
    ),
    "tgi": (
        "tgi",
        LLAMA,  # TGI labels no model: everything on the page counts
        {
            "server_requests_running": 4,
            "server_requests_waiting": 3,
            "server_prompt_tokens_total": 5000,
            "server_generation_tokens_total": 400,
            "server_e2e_sum_s": 15.5,
            "server_e2e_count": 10,
            "server_queue_time_sum_s": 0.75,
            "server_queue_time_count": 10,
        },
    ),
    "llamacpp": (
        "llamacpp",
        None,
        {
            "server_requests_running": 2,
            "server_requests_waiting": 1,
            "server_kv_cache_usage": 0.0625,
            "server_prompt_tokens_total": 6886,
            "server_generation_tokens_total": 3469,
        },
    ),
    "triton": (
        "triton",
        "ensemble",  # the request counters of the ensemble only, not its tensorrt_llm step's again
        {
            "server_requests_running": 6,
            "server_requests_waiting": 3,  # TRT-LLM's waiting requests before Triton's pending count
            "server_kv_cache_usage": 0.25,
            "server_prompt_tokens_total": 16000,
            "server_generation_tokens_total": 800,
            "server_e2e_sum_s": 30.0,  # 30,000,000 us
            "server_e2e_count": 20,
            "server_queue_time_sum_s": 0.5,
            "server_queue_time_count": 20,
        },
    ),
}


@pytest.mark.parametrize("page", sorted(EXPECTED))
def test_each_engines_page_maps_to_the_same_columns(page: str) -> None:
    engine_name, served, expected = EXPECTED[page]
    samples = parse((FIXTURES / f"{page}.txt").read_text())
    engine = detect(samples)
    assert engine is not None and engine.name == engine_name
    assert extract(engine, samples, served) == pytest.approx(expected)


def test_every_engine_maps_the_token_counters_and_queue_depth() -> None:
    for engine in ENGINES:
        wanted = {"server_requests_running", "server_requests_waiting", "server_prompt_tokens_total"}
        assert wanted <= set(engine.columns), engine.name


def test_parser_reads_escaped_labels_exponents_and_timestamps_and_skips_odd_lines() -> None:
    text = "\n".join(
        [
            "# HELP x A help line with {braces} 1",
            'm{a="quo\\"te",b="back\\\\slash",c="new\\nline"} 1.5e3',
            "plain 7 1700000000000",
            "inf_value +Inf",
            "not a sample line",
            'broken{a="unterminated} 3',
            "",
        ]
    )
    got = [(s.name, s.labels, s.value) for s in parse(text)]
    assert got == [
        ("m", {"a": 'quo"te', "b": "back\\slash", "c": "new\nline"}, 1500.0),
        ("plain", {}, 7.0),
        ("inf_value", {}, float("inf")),
    ]


def test_a_page_of_no_known_engine_is_not_detected() -> None:
    assert detect(parse("python_gc_objects_collected_total 3\nprocess_cpu_seconds_total 1.5\n")) is None


def _columns(url: str) -> dict[str, float]:
    samples = parse(fetch(url, {}))
    engine = detect(samples)
    assert engine is not None and engine.name == "vllm"
    return extract(engine, samples, SERVED)


def test_the_simulators_counters_count_exactly_the_usage_it_reported() -> None:
    with ServerThread(SimSettings(speedup=20, seed=0)) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        before = _columns(server.url + "/metrics")
        prompt = completion = 0
        for i in range(3):  # streamed chat with usage, then whole completions, the model ending some itself
            body: dict[str, Any] = {
                "model": SERVED,
                "messages": [{"role": "user", "content": f"question number {i} about batching"}],
                "max_tokens": 30,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            with http.stream("POST", "/v1/chat/completions", json=body) as response:
                lines = [line for line in response.iter_lines() if line.startswith("data: {")]
            usage = httpx.Response(200, content=lines[-1].removeprefix("data: ")).json()["usage"]
            prompt, completion = prompt + usage["prompt_tokens"], completion + usage["completion_tokens"]
            whole = http.post("/v1/completions", json={"model": SERVED, "prompt": f"text {i}", "max_tokens": 25}).json()
            prompt += whole["usage"]["prompt_tokens"]
            completion += whole["usage"]["completion_tokens"]
        after = _columns(server.url + "/metrics")
    assert after["server_prompt_tokens_total"] - before["server_prompt_tokens_total"] == prompt
    assert after["server_generation_tokens_total"] - before["server_generation_tokens_total"] == completion
    for histogram in ("ttft", "e2e", "queue_time"):
        assert after[f"server_{histogram}_count"] - before[f"server_{histogram}_count"] == 6, histogram
    # every request waited less than it took, and took longer than its first token
    e2e = after["server_e2e_sum_s"] - before["server_e2e_sum_s"]
    assert after["server_queue_time_sum_s"] - before["server_queue_time_sum_s"] < after["server_ttft_sum_s"] <= e2e
    assert (after["server_requests_running"], after["server_requests_waiting"], after["server_kv_cache_usage"]) == (
        0,
        0,
        0,
    )


def _probe(setting: str, base_url: str, notes: list[str]) -> ServerScraper | None:
    return ServerScraper.probe(
        setting, base_url, "experiments[0].server_metrics", {}, "r", "exp", None, 0, lambda row: None, notes.append
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_auto_without_an_answering_metrics_page_is_a_note_and_no_scraper() -> None:
    notes: list[str] = []
    base = f"http://127.0.0.1:{_closed_port()}/v1"
    assert _probe("auto", base, notes) is None
    assert len(notes) == 1 and notes[0].startswith(f"experiment exp: no server metrics at {base[:-3]}/metrics (")


def test_auto_on_a_page_that_is_no_engines_metrics_is_a_note() -> None:
    notes: list[str] = []
    with misbehaving_server() as base_url:  # answers every GET with {"status": "ok"}
        assert _probe("auto", base_url + "/v1", notes) is None
    assert notes == [
        f"experiment exp: no server metrics at {base_url}/metrics (no metrics of vllm, sglang, tgi, llamacpp, "
        "triton); the server's view is skipped"
    ]


def test_an_explicit_url_that_fails_is_one_line_naming_the_field() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/metrics"
    with pytest.raises(EndpointError) as info:
        _probe(url, "http://unused/v1", [])
    message = str(info.value)
    assert message.startswith(f"experiments[0].server_metrics: {url} gave no engine metrics: ")
    assert "\n" not in message


def test_off_scrapes_nothing_and_says_nothing() -> None:
    notes: list[str] = []
    assert _probe("off", "http://127.0.0.1:1/v1", notes) is None
    assert notes == []


def test_a_server_metrics_setting_that_is_no_url_is_named(tmp_path: Path) -> None:
    cfg = config_dict([sim_experiment(server_metrics="localhost:8000/metrics")])
    path = write_config(tmp_path / "bad.yml", cfg)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "experiments[0].server_metrics: " in str(info.value) and "must be auto, off or an http(s) URL" in str(
        info.value
    )


def test_a_run_against_an_endpoint_without_metrics_lands_no_server_rows_and_completes(tmp_path: Path) -> None:
    with misbehaving_server() as base_url:
        exp = sim_experiment(
            endpoint={"type": "openai", "base_url": base_url + "/v1", "served_model_name": "ok"},
            concurrency_levels=[2],
            requests_per_level=4,
        )
        cfg = write_config(tmp_path / "c.yml", config_dict([exp]))
        results = tmp_path / "results"
        proc = run_cli("run", "--config", str(cfg), "--results-dir", str(results), "--no-build")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"experiment sim: no server metrics at {base_url}/metrics (" in proc.stderr
    run = run_dirs(results)[0]
    con = duckdb.connect()
    ((server_rows, host_rows),) = con.execute(
        f"select count(*) filter (where source like 'server:%'), count(*) filter (where source = 'host') "
        f"from read_parquet('{run}/telemetry_samples.parquet')"
    ).fetchall()
    assert server_rows == 0 and host_rows >= 1
